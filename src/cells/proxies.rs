//! `archsearch cells proxies`: every class of cells of a table scored at initialisation by every
//! training-free proxy (src/proxies), the proxies judged against the table's trained accuracy
//! by rank correlation (Abdelfattah et al. 2021; Mellor et al. 2021), and search on each proxy
//! alone, random and evolutionary, judged by the true accuracy of what it finds and the seconds
//! its scoring took (docs/algorithms.md §8).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind};

use super::build::{representatives, training_seed};
use super::cell::Cell;
use super::config::*;
use super::isomorphism::functional;
use super::network::{CellNet, CellNetShape};
use super::proxy_search::{evolution, random_search, EvolutionSettings, Found};
use super::table::Table;
use crate::data::{self, Source};
use crate::proxies::combined::combined;
use crate::proxies::correlation::{kendall, spearman};
use crate::proxies::{score, Batch, Scores, PROXIES};
use crate::stats::mean_sd;

/// The flags of `archsearch cells proxies`, as plain settings.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// None: the bundled table.
    pub table: Option<PathBuf>,
    pub batch: usize,
    pub seeds: usize,
    pub limit: Option<usize>,
    pub out: Option<PathBuf>,
    pub force: bool,
    /// Finish the run in this folder (its settings come from its proxies.json).
    pub resume: Option<PathBuf>,
    pub quiet: bool,
}

/// The command name the run marker records.
pub const COMMAND: &str = "cells proxies";

/// The settings a run keeps beside its scores, so `--resume` goes on with the same ones.
pub const STATE_FILE: &str = "proxies.json";
/// Every scored class's raw scores, a row appended and flushed as each is scored.
pub const SCORES_FILE: &str = "scores.csv";

/// What `--resume` needs to score the rest exactly as the first run would have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    table: Option<PathBuf>,
    batch: usize,
    seeds: usize,
    limit: Option<usize>,
}

/// The columns of scores.csv: `RawRow`'s fields.
const RAW_HEADER: [&str; 7] = [
    "cell",
    "synflow",
    "snip",
    "grad_norm",
    "naswot",
    "jacob_cov",
    "seconds",
];

/// One class's proxies as scored, before `combined` (which needs every class).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RawRow {
    cell: String,
    synflow: f64,
    snip: f64,
    grad_norm: f64,
    naswot: f64,
    jacob_cov: f64,
    seconds: f64,
}

/// One class's scores, as proxies.csv holds them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoredCell {
    pub cell: String,
    pub synflow: f64,
    pub snip: f64,
    pub grad_norm: f64,
    pub naswot: f64,
    pub jacob_cov: f64,
    pub combined: f64,
    /// The table's test accuracy after the full budget (mean over seeds).
    pub test_accuracy: f64,
    /// The table's dev accuracy after the shortest budget (mean over seeds): the cheapest
    /// trained proxy.
    pub dev_accuracy_shortest: f64,
    /// Seconds all five proxies took on this network.
    pub seconds: f64,
}

impl ScoredCell {
    /// The score of `proxy` (any other name: the dev accuracy after the shortest budget).
    pub fn get(&self, proxy: &str) -> f64 {
        match proxy {
            "synflow" => self.synflow,
            "snip" => self.snip,
            "grad_norm" => self.grad_norm,
            "naswot" => self.naswot,
            "jacob_cov" => self.jacob_cov,
            "combined" => self.combined,
            _ => self.dev_accuracy_shortest,
        }
    }
}

/// How well one proxy ranks the cells.
#[derive(Clone, Debug, Serialize)]
pub struct Correlation {
    pub proxy: String,
    pub spearman: f64,
    pub kendall: f64,
    pub spearman_top10: f64,
    pub kendall_top10: f64,
    /// Cells whose score came out NaN or infinite (ranked last).
    pub failed: usize,
}

/// One proxy-guided search setting over many seeds.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    pub proxy: String,
    pub method: String,
    /// Cells sampled (random search) or evolution steps.
    pub size: usize,
    pub test_mean: f64,
    pub test_sd: f64,
    /// Mean distinct cells scored, and the seconds that scoring took.
    pub scored_mean: f64,
    pub seconds_mean: f64,
    pub seeds: usize,
}

/// Runs the command; returns the exit code.
pub fn command(options: &ProxyOptions) -> Result<i32> {
    let stop = crate::outdir::Stop::on_signals()?;
    let state = match &options.resume {
        Some(dir) => read_state(dir)?,
        None => State {
            table: options.table.clone(),
            batch: options.batch,
            seeds: options.seeds,
            limit: options.limit,
        },
    };
    if state.batch < 2 {
        crate::usage_bail!(
            "--batch {} is too small: the correlation proxies need at least 2 examples",
            state.batch
        );
    }
    let table = super::run::load_table(state.table.as_deref())?;
    let shape = shape_of(&table);
    let source = crate::data::images::source_for(&table.meta.dataset, None).map_err(|e| {
        crate::error::UsageError::new(format!(
            "the table was built on {}, which cells proxies cannot load by itself ({e})",
            table.meta.dataset
        ))
    })?;
    let dir = match &options.resume {
        Some(dir) => {
            crate::outdir::ensure_marker(dir, COMMAND)?;
            dir.clone()
        }
        None => {
            let dir = crate::outdir::prepare(options.out.as_deref(), options.force, COMMAND)?;
            crate::outdir::write_json_atomically(
                &dir.join(STATE_FILE),
                &serde_json::to_value(&state)?,
            )?;
            dir
        }
    };
    let started = Instant::now();
    let (batch, classes) = batch_of(&source, state.batch)?;
    let image = batch.input_shape();
    let mut cells = representatives();
    if let Some(limit) = state.limit {
        cells.truncate(limit);
    }
    let csv_path = dir.join("proxies.csv");
    // Scores already on disk (a resumed run) are kept; each class is scored from its own seed,
    // so the rest come out as they would have in one go.
    let scores_path = dir.join(SCORES_FILE);
    let done = read_raw(&scores_path)?;
    rewrite_raw(&scores_path, &done)?;
    let mut by_cell: HashMap<String, RawRow> =
        done.into_iter().map(|r| (r.cell.clone(), r)).collect();
    let mut scores_file = std::fs::OpenOptions::new()
        .append(true)
        .open(&scores_path)
        .with_context(|| format!("cannot open {}", scores_path.display()))?;
    let mut progress = crate::output::progress::Progress::counting(
        cells.len(),
        by_cell.len().min(cells.len()),
        options.quiet,
        "cells",
    );
    for (i, cell) in cells.iter().enumerate() {
        if stop.requested() {
            break;
        }
        let name = cell.to_string();
        if by_cell.contains_key(&name) {
            continue;
        }
        let seed = training_seed(BUILD_SEED, cell, 0);
        let build = |p: &nn::Path| CellNet::new(p, cell, shape, image[0], classes);
        let t = Instant::now();
        let s = score(&build, seed, &batch);
        let row = RawRow {
            cell: name.clone(),
            synflow: s.synflow,
            snip: s.snip,
            grad_norm: s.grad_norm,
            naswot: s.naswot,
            jacob_cov: s.jacob_cov,
            seconds: t.elapsed().as_secs_f64(),
        };
        append_raw(&mut scores_file, &row)?;
        by_cell.insert(name, row);
        progress.update(i + 1, "");
    }
    progress.finish();
    // In the table's order: every class scored so far.
    let raw: Vec<(Cell, Scores, f64)> = cells
        .iter()
        .filter_map(|cell| {
            by_cell.get(&cell.to_string()).map(|r| {
                let scores = Scores {
                    synflow: r.synflow,
                    snip: r.snip,
                    grad_norm: r.grad_norm,
                    naswot: r.naswot,
                    jacob_cov: r.jacob_cov,
                };
                (*cell, scores, r.seconds)
            })
        })
        .collect();
    let combined = combined(
        &raw.iter().map(|r| r.1.naswot).collect::<Vec<_>>(),
        &raw.iter().map(|r| r.1.synflow).collect::<Vec<_>>(),
    );
    let first = table.meta.budgets[0];
    let scored: Vec<ScoredCell> = raw
        .iter()
        .zip(combined)
        .map(|((cell, s, seconds), c)| ScoredCell {
            cell: cell.to_string(),
            synflow: s.synflow,
            snip: s.snip,
            grad_norm: s.grad_norm,
            naswot: s.naswot,
            jacob_cov: s.jacob_cov,
            combined: c,
            test_accuracy: table.mean_test(cell),
            dev_accuracy_shortest: (0..table.meta.seeds)
                .map(|k| table.query(cell, first, k).dev)
                .sum::<f64>()
                / table.meta.seeds as f64,
            seconds: *seconds,
        })
        .collect();
    write_csv(&csv_path, &scored)?;
    if stop.requested() {
        println!(
            "stopped after {} of {} cells; their scores are in {}; finish with `archsearch cells proxies --resume {}`",
            scored.len(),
            cells.len(),
            csv_path.display(),
            dir.display()
        );
        return Ok(130);
    }
    let shortest = format!("dev_{first}_epoch");
    let mut names: Vec<String> = PROXIES.iter().map(|s| s.to_string()).collect();
    names.push(shortest.clone());
    let correlations: Vec<Correlation> = names.iter().map(|p| correlation(&scored, p)).collect();
    super::proxy_plot::scatter(&scored, &correlations, &dir.join("proxies.png"))?;
    let searches = proxy_searches(&scored, &table, state.seeds, &names)?;
    let (best_cell, best_test) = table.best();
    let seconds_per_cell =
        scored.iter().map(|s| s.seconds).sum::<f64>() / scored.len().max(1) as f64;
    let summary = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "table": state.table.as_ref().map_or("bundled (tables/cells-digits.csv.gz)".to_string(), |p| p.display().to_string()),
        "table_meta": table.meta,
        "batch": state.batch,
        "cells_scored": scored.len(),
        "seconds_scoring_all": scored.iter().map(|s| s.seconds).sum::<f64>(),
        "seconds_per_cell": seconds_per_cell,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "correlations": correlations,
        "table_best": {"cell": best_cell.to_string(), "test_accuracy": best_test},
        "searches": searches,
    });
    crate::outdir::write_json_atomically(&dir.join("summary.json"), &summary)?;
    println!(
        "{:<12} {:>8} {:>8} {:>10} {:>10} {:>7}",
        "proxy", "rho", "tau", "rho top10", "tau top10", "failed"
    );
    for c in &correlations {
        println!(
            "{:<12} {:>8.3} {:>8.3} {:>10.3} {:>10.3} {:>7}",
            c.proxy, c.spearman, c.kendall, c.spearman_top10, c.kendall_top10, c.failed
        );
    }
    println!(
        "{} cells scored in {:.1} s ({:.1} ms each); table optimum {:.2} %",
        scored.len(),
        scored.iter().map(|s| s.seconds).sum::<f64>(),
        1000.0 * seconds_per_cell,
        100.0 * best_test
    );
    println!("wrote {}", dir.display());
    Ok(0)
}

/// The settings of the run in `dir`, for `--resume`.
fn read_state(dir: &Path) -> Result<State> {
    crate::outdir::check_resume_command(dir, COMMAND)?;
    let path = dir.join(STATE_FILE);
    if !path.is_file() {
        crate::usage_bail!(
            "{} holds no cells proxies run to resume (no {STATE_FILE}); start one with `archsearch cells proxies --out DIR`",
            dir.display()
        );
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not the state of a cells proxies run", path.display()))
}

/// The rows of scores.csv (none when it does not exist); a row torn by a kill is dropped.
fn read_raw(path: &Path) -> Result<Vec<RawRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(reader.deserialize().map_while(|r| r.ok()).collect())
}

/// Writes scores.csv anew with `rows` (a header and the complete rows; a torn one is gone).
fn rewrite_raw(path: &Path, rows: &[RawRow]) -> Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    csv.write_record(RAW_HEADER)?;
    for row in rows {
        csv.serialize(row)?;
    }
    let bytes = csv.into_inner().context("cannot format scores.csv")?;
    crate::outdir::write_atomically(path, &bytes)
}

/// Appends one class's scores and flushes them to disk.
fn append_raw(file: &mut std::fs::File, row: &RawRow) -> Result<()> {
    use std::io::Write;
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    csv.serialize(row)?;
    let bytes = csv
        .into_inner()
        .context("cannot format a row of scores.csv")?;
    file.write_all(&bytes)
        .context("cannot append to scores.csv")?;
    file.sync_data().context("cannot flush scores.csv")?;
    Ok(())
}

/// The skeleton the table was built with (its protocol's `shape`), else the defaults.
fn shape_of(table: &Table) -> CellNetShape {
    table
        .meta
        .protocol
        .get("shape")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or(CellNetShape {
            channels: BUILD_CHANNELS,
            cells_per_stage: BUILD_CELLS_PER_STAGE,
        })
}

/// The first `n` training examples after a seeded shuffle, the one batch every proxy sees,
/// and the number of classes.
fn batch_of(source: &Source, n: usize) -> Result<(Batch, i64)> {
    let splits = data::load(source, &crate::config::DataSettings::default())?;
    let Some(image) = splits.image else {
        crate::usage_bail!("cells proxies scores conv networks; the table's dataset has no images");
    };
    let train = splits.train.shuffled(PROXY_BATCH_SEED);
    let n = n.min(train.len());
    let part = train.slice(0..n);
    let (x, y) = part.tensors(Device::Cpu);
    let x = x
        .view([
            n as i64,
            image.channels as i64,
            image.height as i64,
            image.width as i64,
        ])
        .to_kind(Kind::Float);
    Ok((Batch { x, y }, splits.train.n_classes as i64))
}

fn write_csv(path: &Path, rows: &[ScoredCell]) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    for row in rows {
        csv.serialize(row)?;
    }
    let bytes = csv.into_inner().context("cannot format proxies.csv")?;
    crate::outdir::write_atomically(path, &bytes)
}

/// Rank correlation of `proxy` with the test accuracy, over every scored class and over the
/// top 10 % by test accuracy.
fn correlation(scored: &[ScoredCell], proxy: &str) -> Correlation {
    let scores: Vec<f64> = scored.iter().map(|s| s.get(proxy)).collect();
    let tests: Vec<f64> = scored.iter().map(|s| s.test_accuracy).collect();
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| tests[b].total_cmp(&tests[a]));
    order.truncate((scored.len() / 10).max(2).min(scored.len()));
    let top_scores: Vec<f64> = order.iter().map(|&i| scores[i]).collect();
    let top_tests: Vec<f64> = order.iter().map(|&i| tests[i]).collect();
    Correlation {
        proxy: proxy.to_string(),
        spearman: spearman(&scores, &tests),
        kendall: kendall(&scores, &tests),
        spearman_top10: spearman(&top_scores, &top_tests),
        kendall_top10: kendall(&top_scores, &top_tests),
        failed: scores.iter().filter(|s| !s.is_finite()).count(),
    }
}

/// Random search at each size and the evolutionary search (cold and warmed up), per proxy, over
/// `seeds` seeds: the true test accuracy of what each finds and the seconds of its scoring.
fn proxy_searches(
    scored: &[ScoredCell],
    table: &Table,
    seeds: usize,
    names: &[String],
) -> Result<Vec<SearchResult>> {
    let by_form: HashMap<String, &ScoredCell> = scored
        .iter()
        .map(|s| Ok((functional(&Cell::parse(&s.cell)?), s)))
        .collect::<Result<_>>()?;
    // Every cell of the space whose class was scored: searches draw from these.
    let pool: Vec<Cell> = Cell::all()
        .filter(|c| by_form.contains_key(&functional(c)))
        .collect();
    let lookup = |c: &Cell| by_form.get(&functional(c)).copied();
    let mut results = Vec::new();
    for proxy in names {
        let score = |c: &Cell| lookup(c).map_or(f64::NAN, |s| s.get(proxy));
        let mut run = |method: &str, size: usize, search: &dyn Fn(&mut Pcg64) -> Found| {
            let mut tests = Vec::new();
            let mut counts = Vec::new();
            let mut seconds = Vec::new();
            for seed in 0..seeds {
                let mut rng =
                    Pcg64::seed_from_u64(crate::seeds::splitmix64(PROXY_SEARCH_SEED ^ seed as u64));
                let found = search(&mut rng);
                tests.push(table.mean_test(&found.cell));
                counts.push(found.scored.len() as f64);
                seconds.push(
                    found
                        .scored
                        .iter()
                        .filter_map(lookup)
                        .map(|s| s.seconds)
                        .sum::<f64>(),
                );
            }
            let (test_mean, test_sd) = mean_sd(&tests);
            results.push(SearchResult {
                proxy: proxy.clone(),
                method: method.to_string(),
                size,
                test_mean,
                test_sd,
                scored_mean: counts.iter().sum::<f64>() / seeds.max(1) as f64,
                seconds_mean: seconds.iter().sum::<f64>() / seeds.max(1) as f64,
                seeds,
            });
        };
        for n in PROXY_RANDOM_SIZES {
            run("random", n, &|rng| random_search(&pool, &score, n, rng));
        }
        for warm_up in [0, PROXY_WARM_UP] {
            let settings = EvolutionSettings {
                pool: PROXY_POOL,
                tournament: PROXY_TOURNAMENT,
                steps: PROXY_EVOLUTION_STEPS,
                random_child: PROXY_RANDOM_CHILD,
                warm_up,
            };
            let method = if warm_up > 0 {
                "evolution-warm"
            } else {
                "evolution"
            };
            run(method, PROXY_EVOLUTION_STEPS, &|rng| {
                evolution(&pool, &score, settings, rng)
            });
        }
    }
    Ok(results)
}

/// Scores every class of the toy-sized networks twice in two orders (for the tests).
#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::ModuleT;
    use tch::Tensor;

    fn tiny_batch() -> Batch {
        tch::manual_seed(0);
        Batch {
            x: Tensor::rand([8, 1, 8, 8], (Kind::Float, Device::Cpu)),
            y: Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 7]),
        }
    }

    fn scores_of(cell: &Cell, batch: &Batch) -> Scores {
        let shape = CellNetShape {
            channels: 4,
            cells_per_stage: 1,
        };
        let build = |p: &nn::Path| CellNet::new(p, cell, shape, 1, 10);
        score(&build, training_seed(0, cell, 0), batch)
    }

    #[test]
    fn scores_do_not_depend_on_the_order_of_scoring() {
        let batch = tiny_batch();
        let a = Cell::parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|").unwrap();
        let b = Cell::parse("|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|none~2|").unwrap();
        let (a1, b1) = (scores_of(&a, &batch), scores_of(&b, &batch));
        let (b2, a2) = (scores_of(&b, &batch), scores_of(&a, &batch));
        assert_eq!(a1, a2);
        assert_eq!(b1, b2);
        assert_ne!(a1, b1);
        for name in ["synflow", "snip", "grad_norm", "naswot", "jacob_cov"] {
            assert!(a1.get(name).unwrap().is_finite(), "{name}");
        }
    }

    #[test]
    fn scoring_changes_no_weight_of_the_network_being_trained() {
        // Train a network; build the same one again, score the same cell in between, train it:
        // both trainings end with identical weights.
        let batch = tiny_batch();
        let cell = Cell::parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|").unwrap();
        let shape = CellNetShape {
            channels: 4,
            cells_per_stage: 1,
        };
        let train = |score_between: bool| -> Vec<f32> {
            tch::manual_seed(5);
            let vs = nn::VarStore::new(Device::Cpu);
            let net = CellNet::new(&vs.root(), &cell, shape, 1, 10);
            if score_between {
                let _ = scores_of(&cell, &batch);
            }
            let mut opt = nn::OptimizerConfig::build(nn::Sgd::default(), &vs, 0.1).unwrap();
            for _ in 0..3 {
                let loss = net
                    .forward_t(&batch.x, true)
                    .cross_entropy_for_logits(&batch.y);
                opt.backward_step(&loss);
            }
            let mut names: Vec<_> = vs.variables().into_iter().collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            names
                .iter()
                .flat_map(|(_, t)| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap())
                .collect()
        };
        assert_eq!(train(false), train(true));
    }
}
