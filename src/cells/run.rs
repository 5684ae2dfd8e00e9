//! `archsearch cells search`: optimisers on the cell table in simulated time, as NAS-Bench-201
//! (Dong & Yang 2020) compares them. Every (optimiser, seed) search asks its strategy for one
//! configuration at a time, pays the tabulated training seconds of each query, and stops when
//! the next query would take it past the budget. Searches run side by side on the machine's
//! cores; their rows reach rollouts.csv in a fixed order (optimiser by optimiser, seed by seed),
//! so a run is the same however it was scheduled, and `--resume` redoes only the searches the
//! checkpoint does not hold.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use super::config::{SEARCH_MAX_QUERIES, SEARCH_THREADS, SEARCH_TRAININGS};
use super::evaluator::{Answer, TableEvaluator};
use super::strategies::Optimiser;
use super::table::{Table, TableMeta};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::outdir::{write_json_atomically, Stop};
use crate::strategy::{Proposal, Strategy};

/// The command's name in the run folder's marker.
pub const COMMAND: &str = "cells search";

/// What the command line asked for, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpec {
    pub archsearch_version: String,
    /// The table file (None: the bundled table).
    pub table: Option<PathBuf>,
    pub optimisers: Vec<Optimiser>,
    pub seed: u64,
    pub seeds: usize,
    /// Simulated seconds each search may spend.
    pub budget_seconds: f64,
    /// How the budget was set, in words.
    pub budget_rule: String,
}

/// The flags of `cells search`, before checking.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    pub strategy: String,
    pub seeds: u64,
    pub seed: u64,
    pub budget: Option<f64>,
    pub table: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub resume: Option<PathBuf>,
    pub quiet: bool,
}

/// One row of rollouts.csv: one query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub strategy: String,
    pub seed: u64,
    /// 1-based query of the search.
    pub query: usize,
    pub cell: String,
    /// Epochs the query trained.
    pub budget: usize,
    pub dev: f64,
    /// Simulated seconds of the search so far, this query included.
    pub seconds: f64,
    /// The table's best test accuracy minus the incumbent's, after this query.
    pub regret: f64,
    /// The incumbent's mean full-budget test accuracy.
    pub incumbent_test: f64,
}

/// How one search ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub strategy: String,
    pub seed: u64,
    pub queries: usize,
    pub simulated_seconds: f64,
    pub final_regret: f64,
    pub final_test: f64,
    pub incumbent: String,
    /// Real seconds spent in the strategy's ask and tell, summed over the queries.
    pub suggest_seconds: f64,
    /// Real seconds of the whole search.
    pub wall_seconds: f64,
}

/// What checkpoint.json keeps: the searches done, in order, and how much of rollouts.csv is
/// theirs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub spec: SearchSpec,
    pub table_meta: TableMeta,
    pub csv_bytes: u64,
    pub outcomes: Vec<Outcome>,
}

/// Asks `strategy` for one proposal at a time and has `query` answer it, until `query` says
/// the budget is spent (None) or `max_queries` were made; returns what `query` returned for
/// each and the real seconds spent in ask and tell. Space-agnostic: the space lives in
/// `query`.
pub fn until_spent<T>(
    strategy: &mut dyn Strategy,
    rng: &mut Pcg64,
    max_queries: usize,
    mut query: impl FnMut(&Proposal) -> Result<Option<(f64, T)>>,
) -> Result<(Vec<T>, f64)> {
    let mut out = Vec::new();
    let mut suggest = 0.0;
    while out.len() < max_queries {
        let started = Instant::now();
        let Some(proposal) = strategy.ask(1, rng)?.pop() else {
            anyhow::bail!("{} proposed nothing", strategy.name());
        };
        suggest += started.elapsed().as_secs_f64();
        let Some((fitness, record)) = query(&proposal)? else {
            break;
        };
        let started = Instant::now();
        strategy.tell(&[(proposal, fitness)])?;
        suggest += started.elapsed().as_secs_f64();
        out.push(record);
    }
    Ok((out, suggest))
}

/// One search of `optimiser` with seed `seed` on `table`, `budget` simulated seconds.
pub fn search(
    table: &Table,
    optimiser: Optimiser,
    seed: u64,
    budget: f64,
) -> Result<(Outcome, Vec<Row>)> {
    let started = Instant::now();
    let mut rng = crate::seeds::stream(seed, Some(optimiser.index()));
    let mut strategy = optimiser.build(&table.meta, &mut rng)?;
    let mut evaluator = TableEvaluator::new(table, seed);
    let (answers, suggest): (Vec<Answer>, f64) =
        until_spent(strategy.as_mut(), &mut rng, SEARCH_MAX_QUERIES, |p| {
            if evaluator.seconds() + evaluator.cost(p)? > budget {
                return Ok(None);
            }
            let answer = evaluator.query(p)?;
            Ok(Some((answer.dev, answer)))
        })?;
    let name = optimiser.name().to_string();
    let rows: Vec<Row> = answers
        .iter()
        .enumerate()
        .map(|(i, a)| Row {
            strategy: name.clone(),
            seed,
            query: i + 1,
            cell: a.cell.to_string(),
            budget: a.epochs,
            dev: a.dev,
            seconds: a.seconds,
            regret: a.regret,
            incumbent_test: a.incumbent_test,
        })
        .collect();
    let Some(last) = answers.last() else {
        anyhow::bail!("search {name} seed {seed} made no query within the budget");
    };
    Ok((
        Outcome {
            strategy: name,
            seed,
            queries: answers.len(),
            simulated_seconds: last.seconds,
            final_regret: last.regret,
            final_test: last.incumbent_test,
            incumbent: last.incumbent.to_string(),
            suggest_seconds: suggest,
            wall_seconds: started.elapsed().as_secs_f64(),
        },
        rows,
    ))
}

/// Seconds of one full-budget training of each class, the mean over its seeds.
pub fn full_training_seconds(table: &Table) -> Vec<f64> {
    table
        .entries
        .iter()
        .map(|e| {
            e.runs
                .iter()
                .map(|r| r.seconds.iter().sum::<f64>())
                .sum::<f64>()
                / e.runs.len() as f64
        })
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The table a run searches: the file of `--table`. (The bundled table becomes the default
/// here once it ships.)
pub fn load_table(path: Option<&Path>) -> Result<Table> {
    match path {
        Some(path) => {
            if !path.is_file() {
                crate::usage_bail!(
                    "--table {} is not a file; give a table written by `archsearch cells build` (NAME.csv.gz, with NAME.json beside it)",
                    path.display()
                );
            }
            Table::read(path)
                .map_err(|e| UsageError::new(format!("--table {}: {e:#}", path.display())).into())
        }
        None => Table::bundled(),
    }
}

/// Checks the flags of a new run against its table, writing nothing.
pub fn spec_of(options: &SearchOptions, table: &Table) -> Result<SearchSpec> {
    let optimisers = match super::strategies::OPTIMISERS
        .iter()
        .chain([&Optimiser::All])
        .find(|o| o.name() == options.strategy)
    {
        Some(o) => o.expand(),
        None => crate::usage_bail!(
            "--strategy {} is not an optimiser; use random, evolution, reinforce, bo, hyperband, dehb or all",
            options.strategy
        ),
    };
    if options.seeds == 0 || options.seeds > crate::config::CELLS_SEEDS_MAX {
        crate::usage_bail!(
            "--seeds {} is out of range; give 1..={}",
            options.seeds,
            crate::config::CELLS_SEEDS_MAX
        );
    }
    let full = full_training_seconds(table);
    let slowest = full.iter().copied().fold(0.0, f64::max);
    if full.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        crate::usage_bail!(
            "the table records a training of no (or no finite) time, so simulated time cannot stop a search; rebuild it with `archsearch cells build`"
        );
    }
    let (budget, rule) = match options.budget {
        Some(b) => (b, "--budget".to_string()),
        None => {
            let m = median(&full);
            (
                SEARCH_TRAININGS * m,
                format!("{SEARCH_TRAININGS} x the median full training ({m:.3} s)"),
            )
        }
    };
    if !budget.is_finite() || budget <= 0.0 {
        crate::usage_bail!("--budget {budget} must be a positive number of simulated seconds");
    }
    if budget < slowest {
        crate::usage_bail!(
            "--budget {budget} s is less than one full training of the table's slowest cell ({slowest:.3} s): every search must afford at least one query; give at least that"
        );
    }
    Ok(SearchSpec {
        archsearch_version: env!("CARGO_PKG_VERSION").into(),
        // Absolute, so that --resume finds it from any working folder.
        table: options
            .table
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
        optimisers,
        seed: options.seed,
        seeds: options.seeds as usize,
        budget_seconds: budget,
        budget_rule: rule,
    })
}

fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

fn csv_path(dir: &Path) -> PathBuf {
    dir.join("rollouts.csv")
}

/// The header line of rollouts.csv.
fn csv_header() -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record([
        "strategy",
        "seed",
        "query",
        "cell",
        "budget",
        "dev",
        "seconds",
        "regret",
        "incumbent_test",
    ])?;
    w.into_inner().context("cannot assemble the CSV header")
}

fn csv_rows(rows: &[Row]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().context("cannot assemble rollouts.csv rows")
}

/// Runs the command; returns the exit code.
pub fn run(options: &SearchOptions) -> Result<i32> {
    let stop = Stop::on_signals()?;
    let (dir, table, mut checkpoint) = match &options.resume {
        Some(dir) => {
            crate::outdir::check_resume_command(dir, COMMAND)?;
            let path = checkpoint_path(dir);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                UsageError::new(format!(
                    "--resume {}: cannot read {} ({e}); resume a folder written by `archsearch cells search`",
                    dir.display(),
                    path.display()
                ))
            })?;
            let checkpoint: Checkpoint = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a cells search checkpoint", path.display()))?;
            let table = load_table(checkpoint.spec.table.as_deref())?;
            if table.meta != checkpoint.table_meta {
                crate::usage_bail!(
                    "the table {} is not the one this run started on (its description differs); restore it or start a new run",
                    checkpoint.spec.table.as_deref().map_or("(bundled)".into(), |p| p.display().to_string())
                );
            }
            // Rows past the checkpoint belong to searches it does not hold: they are redone.
            let csv = csv_path(dir);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&csv)
                .with_context(|| format!("cannot open {}", csv.display()))?;
            file.set_len(checkpoint.csv_bytes)
                .with_context(|| format!("cannot truncate {}", csv.display()))?;
            crate::outdir::ensure_marker(dir, COMMAND)?;
            (dir.clone(), table, checkpoint)
        }
        None => {
            let table = load_table(options.table.as_deref())?;
            let spec = spec_of(options, &table)?;
            let dir = crate::outdir::prepare(options.out.as_deref(), options.force, COMMAND)?;
            let header = csv_header()?;
            crate::outdir::write_atomically(&csv_path(&dir), &header)?;
            let checkpoint = Checkpoint {
                spec,
                table_meta: table.meta.clone(),
                csv_bytes: header.len() as u64,
                outcomes: Vec::new(),
            };
            write_json_atomically(&checkpoint_path(&dir), &checkpoint)?;
            (dir, table, checkpoint)
        }
    };
    let spec = checkpoint.spec.clone();
    let jobs: Vec<(Optimiser, u64)> = spec
        .optimisers
        .iter()
        .flat_map(|&o| (0..spec.seeds).map(move |s| (o, crate::seeds::search_seed(spec.seed, s))))
        .collect();
    let started = Instant::now();
    let first = checkpoint.outcomes.len();
    let mut progress = super::progress::Progress::new(jobs.len(), first, options.quiet);
    // The tiny controller of REINFORCE runs fastest on one thread per search.
    tch::set_num_threads(1);
    let error = {
        let next = AtomicUsize::new(first);
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, Result<(Outcome, Vec<Row>)>)>();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, SEARCH_THREADS.max(1));
        std::thread::scope(|scope| -> Option<anyhow::Error> {
            for _ in 0..threads {
                let sender = sender.clone();
                let (next, jobs, table, stop, spec) = (&next, &jobs, &table, &stop, &spec);
                scope.spawn(move || loop {
                    if stop.requested() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(optimiser, seed)) = jobs.get(i) else {
                        break;
                    };
                    let result = search(table, optimiser, seed, spec.budget_seconds);
                    if sender.send((i, result)).is_err() {
                        break;
                    }
                });
            }
            drop(sender);
            let mut waiting: BTreeMap<usize, (Outcome, Vec<Row>)> = BTreeMap::new();
            let mut error = None;
            let mut last_save = Instant::now();
            let mut csv = match std::fs::OpenOptions::new()
                .append(true)
                .open(csv_path(&dir))
            {
                Ok(f) => f,
                Err(e) => {
                    stop.request();
                    return Some(anyhow::Error::new(e).context("cannot open rollouts.csv"));
                }
            };
            for (i, result) in receiver {
                match result {
                    Ok(done) => {
                        waiting.insert(i, done);
                    }
                    Err(e) => {
                        stop.request();
                        error.get_or_insert(e.context(format!(
                            "search {} seed {}",
                            jobs[i].0.name(),
                            jobs[i].1
                        )));
                    }
                }
                while let Some((outcome, rows)) = waiting.remove(&checkpoint.outcomes.len()) {
                    let appended = csv_rows(&rows).and_then(|bytes| {
                        csv.write_all(&bytes).context("cannot write rollouts.csv")?;
                        Ok(bytes.len() as u64)
                    });
                    match appended {
                        Ok(n) => checkpoint.csv_bytes += n,
                        Err(e) => {
                            stop.request();
                            error.get_or_insert(e);
                            break;
                        }
                    }
                    checkpoint.outcomes.push(outcome);
                    progress.update(checkpoint.outcomes.len(), &checkpoint.outcomes);
                }
                if last_save.elapsed().as_secs_f64() > 1.0 {
                    if let Err(e) = save(&dir, &mut csv, &checkpoint) {
                        stop.request();
                        error.get_or_insert(e);
                    }
                    last_save = Instant::now();
                }
            }
            if let Err(e) = save(&dir, &mut csv, &checkpoint) {
                error.get_or_insert(e);
            }
            error
        })
    };
    progress.finish();
    if let Some(e) = error {
        return Err(e);
    }
    let interrupted = checkpoint.outcomes.len() < jobs.len();
    if !interrupted {
        write_deepcave_runs(&dir, &table)?;
    }
    let summary = super::report::write(
        &dir,
        &table,
        &checkpoint,
        started.elapsed().as_secs_f64(),
        interrupted,
    )?;
    if !options.quiet {
        super::report::print(&summary, &dir);
    }
    if interrupted {
        crate::errln!(
            "interrupted after {} of {} searches: continue with `archsearch cells search --resume {}`",
            checkpoint.outcomes.len(),
            jobs.len(),
            dir.display()
        );
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(0)
}

/// Every search of the finished run as a DeepCAVE run folder, `deepcave/STRATEGY-seedN/`, read
/// back from rollouts.csv (so a resumed run writes the same folders).
fn write_deepcave_runs(dir: &Path, table: &Table) -> Result<()> {
    let path = csv_path(dir);
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut trials = Vec::new();
    let mut clock = (String::new(), 0u64, 0.0);
    for row in reader.deserialize::<Row>() {
        let row = row.with_context(|| format!("in {}", path.display()))?;
        let cell = super::cell::Cell::parse(&row.cell)?;
        if (clock.0.as_str(), clock.1) != (row.strategy.as_str(), row.seed) {
            clock = (row.strategy.clone(), row.seed, 0.0);
        }
        let evaluator = super::evaluator::TableEvaluator::new(table, row.seed);
        trials.push(super::deepcave::CellTrial {
            strategy: row.strategy.clone(),
            search_seed: row.seed,
            cell,
            epochs: row.budget,
            training_seed: evaluator.training_seed(&cell),
            dev: row.dev,
            cost: row.seconds - clock.2,
            clock: row.seconds,
        });
        clock.2 = row.seconds;
    }
    super::deepcave::write_deepcave(&dir.join(crate::outdir::DEEPCAVE_DIR), table, &trials)?;
    Ok(())
}

/// Makes the rows written so far durable, then records them in checkpoint.json.
fn save(dir: &Path, csv: &mut std::fs::File, checkpoint: &Checkpoint) -> Result<()> {
    csv.flush().context("cannot write rollouts.csv")?;
    csv.sync_data().context("cannot write rollouts.csv")?;
    write_json_atomically(&checkpoint_path(dir), checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::strategies::toy::conv_table;
    use crate::cells::strategies::OPTIMISERS;

    #[test]
    fn every_optimiser_finds_the_optimum_of_a_toy_table() {
        let table = conv_table();
        // 400 full trainings of 12 simulated seconds each.
        let budget = 400.0 * 12.0;
        for optimiser in OPTIMISERS {
            for seed in 0..2 {
                let (outcome, rows) = search(&table, optimiser, seed, budget).unwrap();
                assert!(
                    outcome.final_regret.abs() < 1e-12,
                    "{} seed {seed}: regret {} after {} queries (incumbent {})",
                    optimiser.name(),
                    outcome.final_regret,
                    outcome.queries,
                    outcome.incumbent
                );
                assert!(outcome.simulated_seconds <= budget);
                // Regret never rises and the simulated time ascends.
                assert!(rows.windows(2).all(|w| w[1].regret <= w[0].regret + 1e-12
                    || optimiser == Optimiser::Hyperband
                    || optimiser == Optimiser::Dehb));
                assert!(rows.windows(2).all(|w| w[1].seconds > w[0].seconds));
            }
        }
    }

    #[test]
    fn a_search_stops_before_the_query_that_would_pass_the_budget() {
        let table = conv_table();
        // 12 s per full training: 100 s buys 8 of them.
        let (outcome, rows) = search(&table, Optimiser::Random, 1, 100.0).unwrap();
        assert_eq!(outcome.queries, 8);
        assert_eq!(rows.last().unwrap().seconds, 96.0);
    }
}
