//! `archsearch cells build`: tabulates the cell space as NAS-Bench-201 (Dong & Yang 2020) did,
//! at laptop scale. One cell per class of isomorphic cells is trained `seeds` times with a fixed
//! protocol; after every epoch its train, dev and test accuracy and the epoch's seconds are
//! recorded (docs/algorithms.md §7).
//!
//! A cell's seeds train side by side as one stacked network (src/cells/stack.rs), which costs
//! less than half as much per seed as training them one by one. Cells run `workers` at a time on
//! threads, one libtorch thread each. Every finished cell's rows are appended to `rows.csv` at
//! once, so a kill loses at most the cells under way, and `--resume` trains only the cells
//! missing. Each training's seed depends on the cell and the seed index alone, each seed's
//! network is built alone under one lock with libtorch's generator seeded, and a cell is always
//! trained with all its seeds in one stack, so the table is the same whatever the workers and
//! however often it was resumed.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Device;

use super::cell::Cell;
use super::config::*;
use super::isomorphism::functional;
use super::network::{copy_into_stack, flops, CellNet, CellNetShape};
use super::stack::fit_stack;
use super::table::{read_rows, Row, Table, TableMeta};
use crate::config::{Optimizer, TrainerSettings, EVAL_BATCH_SIZE};
use crate::data::{self, Source};
use crate::nn::tensors::TrainData;
use crate::nn::train::{evaluate, fit_observed, Ending};
use crate::seeds::splitmix64;

/// Everything that decides a table's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildSettings {
    pub dataset: String,
    pub source: Source,
    pub shape: CellNetShape,
    pub epochs: usize,
    pub budgets: Vec<usize>,
    pub seeds: usize,
    pub seed: u64,
    pub trainer: TrainerSettings,
    /// Train only the first `limit` classes (a partial table, for trying the build out).
    pub limit: Option<usize>,
}

impl BuildSettings {
    /// The defaults of `config.rs` on `dataset` read from `source`.
    pub fn new(dataset: &str, source: Source) -> BuildSettings {
        BuildSettings {
            dataset: dataset.to_string(),
            source,
            shape: CellNetShape {
                channels: BUILD_CHANNELS,
                cells_per_stage: BUILD_CELLS_PER_STAGE,
            },
            epochs: BUILD_EPOCHS,
            budgets: budgets_up_to(BUILD_EPOCHS),
            seeds: BUILD_SEEDS,
            seed: BUILD_SEED,
            trainer: trainer(BUILD_EPOCHS),
            limit: None,
        }
    }

    /// The same with `epochs` epochs (budgets cut to match).
    pub fn with_epochs(mut self, epochs: usize) -> BuildSettings {
        self.epochs = epochs;
        self.budgets = budgets_up_to(epochs);
        self.trainer = trainer(epochs);
        self
    }
}

/// NAS-Bench-201's training protocol with this build's sizes.
pub(crate) fn trainer(epochs: usize) -> TrainerSettings {
    TrainerSettings {
        optimizer: Optimizer::Sgd,
        lr: BUILD_LR,
        lr_min: BUILD_LR_MIN,
        momentum: BUILD_MOMENTUM,
        nesterov: true,
        weight_decay: BUILD_WEIGHT_DECAY,
        epochs,
        batch_size: BUILD_BATCH_SIZE,
        grad_clip: 0.0,
        patience: 0,
        keep_best: false,
        ties_to_later: false,
        eval_batch_size: EVAL_BATCH_SIZE,
    }
}

/// The configured budgets below `epochs`, then `epochs`.
fn budgets_up_to(epochs: usize) -> Vec<usize> {
    let mut budgets: Vec<usize> = BUILD_BUDGETS
        .iter()
        .copied()
        .filter(|&b| b < epochs)
        .collect();
    budgets.push(epochs);
    budgets
}

/// One cell of every class of isomorphic cells, the first in index order.
pub fn representatives() -> Vec<Cell> {
    let mut seen = HashSet::new();
    Cell::all().filter(|c| seen.insert(functional(c))).collect()
}

/// The seed of training `s` of `cell`.
pub fn training_seed(base: u64, cell: &Cell, s: usize) -> u64 {
    splitmix64(base ^ splitmix64((cell.index() * BUILD_SEEDS.max(16) + s) as u64))
}

/// What a build session did.
#[derive(Clone, Debug, Serialize)]
pub struct BuildOutcome {
    /// Trainings in the whole build, and those done (over every session).
    pub trainings: usize,
    pub done: usize,
    /// Whether every training is done and the table written.
    pub complete: bool,
    /// Only some classes were trained (`--limit`): the table does not cover the space.
    pub partial: bool,
    /// Wall seconds over every session.
    pub wall_seconds: f64,
}

/// The state kept beside the rows, so a resumed build goes on with the same settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BuildState {
    settings: BuildSettings,
    command: String,
    /// Wall seconds of the sessions before this one.
    wall_seconds: f64,
}

const STATE_FILE: &str = "build.json";

/// libtorch draws initial weights from one process-wide generator: building under this lock
/// with the generator freshly seeded keeps every training's start independent of the others.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds (or, with `resume`, finishes) the table in `dir`.
pub fn build(
    settings: &BuildSettings,
    dir: &Path,
    resume: bool,
    workers: usize,
    device: Device,
    stop: &AtomicBool,
    quiet: bool,
) -> Result<BuildOutcome> {
    let state_path = dir.join(STATE_FILE);
    let rows_path = dir.join(BUILD_ROWS_FILE);
    let (state, kept) = if resume {
        let text = std::fs::read_to_string(&state_path)
            .with_context(|| format!("cannot read {}", state_path.display()))?;
        let state: BuildState = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a build's state", state_path.display()))?;
        let kept = complete_rows(&rows_path, state.settings.epochs, state.settings.seeds)?;
        (state, kept)
    } else {
        let state = BuildState {
            settings: settings.clone(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            wall_seconds: 0.0,
        };
        crate::outdir::write_json_atomically(&state_path, &state)?;
        (state, Vec::new())
    };
    let settings = &state.settings;
    let splits = data::load(&settings.source, &data_settings())?;
    let Some(image) = splits.image else {
        crate::usage_bail!(
            "cells build trains conv networks; give an image dataset with --dataset"
        );
    };
    let classes = splits.train.n_classes as i64;
    rewrite_rows(&rows_path, &kept)?;
    let mut cells = representatives();
    if let Some(limit) = settings.limit {
        cells.truncate(limit);
    }
    // Cell by cell, each with all its seeds at once (`train_cell`); `kept` holds whole cells.
    let done_cells: HashSet<&str> = kept.iter().map(|r| r.cell.as_str()).collect();
    let jobs: Vec<Cell> = cells
        .iter()
        .filter(|c| !done_cells.contains(c.to_string().as_str()))
        .copied()
        .collect();
    let seeds: Vec<usize> = (0..settings.seeds).collect();
    let trainings = cells.len() * settings.seeds;
    let mut done = trainings - jobs.len() * settings.seeds;
    crate::output::progress::say(
        quiet,
        &format!(
            "cells build: {} classes of isomorphic cells x {} seeds x {} epochs on {}; {} trainings to go, a cell's seeds side by side, {} cells at a time",
            cells.len(),
            settings.seeds,
            settings.epochs,
            settings.dataset,
            trainings - done,
            workers
        ),
    );
    let started = Instant::now();
    let mut progress =
        crate::output::progress::Progress::counting(trainings, done, quiet, "trainings");
    let mut rows_file = std::fs::OpenOptions::new()
        .append(true)
        .open(&rows_path)
        .with_context(|| format!("cannot open {}", rows_path.display()))?;
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<Option<Vec<Row>>>>();
    let side = image.height as i64;
    let in_channels = image.channels as i64;
    let mut error = None;
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let tx = tx.clone();
            let (jobs, next, failed, splits, seeds) = (&jobs, &next, &failed, &splits, &seeds);
            scope.spawn(move || {
                let data = TrainData::new(splits, device);
                loop {
                    let j = next.fetch_add(1, Ordering::SeqCst);
                    if j >= jobs.len()
                        || stop.load(Ordering::Relaxed)
                        || failed.load(Ordering::Relaxed)
                    {
                        break;
                    }
                    let result = train_cell(
                        &jobs[j],
                        seeds,
                        settings,
                        &data,
                        (in_channels, side, classes),
                        stop,
                    );
                    if tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Ok(Some(rows)) => {
                    if let Err(e) = append_rows(&mut rows_file, &rows) {
                        failed.store(true, Ordering::Relaxed);
                        error = Some(e);
                        continue;
                    }
                    done += rows.len() / settings.epochs.max(1);
                    let message = format!("last {}", rows[0].cell);
                    progress.update(done, &message);
                }
                Ok(None) => {} // interrupted: the training is dropped and redone on resume
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    error.get_or_insert(e);
                }
            }
        }
    });
    progress.finish();
    let wall_seconds = state.wall_seconds + started.elapsed().as_secs_f64();
    crate::outdir::write_json_atomically(
        &state_path,
        &BuildState {
            wall_seconds,
            ..state.clone()
        },
    )?;
    if let Some(e) = error {
        return Err(e);
    }
    let complete = done == trainings && !stop.load(Ordering::Relaxed);
    if complete {
        let rows = complete_rows(&rows_path, settings.epochs, settings.seeds)?;
        write_table(dir, settings, &state.command, wall_seconds, rows)?;
    }
    Ok(BuildOutcome {
        trainings,
        done,
        complete,
        partial: settings.limit.is_some(),
        wall_seconds,
    })
}

fn data_settings() -> crate::config::DataSettings {
    crate::config::DataSettings::default()
}

/// The image size and classes a network is built for: input channels, side, classes.
type ImageShape = (i64, i64, i64);

/// Trains `cell` with the seed indices `seeds`, side by side in one stacked network when there
/// are several (src/cells/stack.rs); their rows, or `None` when a stop cut them short. Each
/// seed's network is built alone, under `BUILD_LOCK` with libtorch's generator seeded with the
/// training's seed, so each training starts from the same weights however it is run.
fn train_cell(
    cell: &Cell,
    seeds: &[usize],
    settings: &BuildSettings,
    data: &TrainData,
    image: ImageShape,
    stop: &AtomicBool,
) -> Result<Option<Vec<Row>>> {
    let singles: Vec<(nn::VarStore, CellNet)> = {
        let _lock = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        seeds
            .iter()
            .map(|&s| {
                tch::manual_seed(training_seed(settings.seed, cell, s) as i64);
                let vs = nn::VarStore::new(data.device);
                let net = CellNet::new(&vs.root(), cell, settings.shape, image.0, image.2);
                (vs, net)
            })
            .collect()
    };
    match (seeds, singles.as_slice()) {
        ([s], [(vs, net)]) => train_one(cell, *s, vs, net, settings, data, image, stop),
        _ => train_stack(cell, seeds, &singles, settings, data, image, stop),
    }
}

/// The row of a diverged epoch and of every later one: the network predicts nothing useful.
fn diverged_row(cell: &str, s: usize, epoch: usize, seconds: f64, params: u64, flops: u64) -> Row {
    Row {
        cell: cell.to_string(),
        seed: s,
        epoch,
        train_accuracy: 0.0,
        dev_accuracy: 0.0,
        test_accuracy: 0.0,
        seconds,
        params,
        flops,
    }
}

fn count_params(vs: &nn::VarStore) -> u64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum()
}

/// Trains `cell` with the seed indices `seeds` as one stacked network, copy `g` starting from
/// the weights of `singles[g]`, the network of seed `seeds[g]`.
#[allow(clippy::too_many_arguments)]
fn train_stack(
    cell: &Cell,
    seeds: &[usize],
    singles: &[(nn::VarStore, CellNet)],
    settings: &BuildSettings,
    data: &TrainData,
    (in_channels, side, classes): ImageShape,
    stop: &AtomicBool,
) -> Result<Option<Vec<Row>>> {
    let training_seeds: Vec<u64> = seeds
        .iter()
        .map(|&s| training_seed(settings.seed, cell, s))
        .collect();
    let vs = nn::VarStore::new(data.device);
    let net = {
        // its own initial draws are overwritten, but must not shift another worker's
        let _lock = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        CellNet::stacked(
            &vs.root(),
            cell,
            settings.shape,
            in_channels,
            classes,
            seeds.len() as i64,
        )
    };
    copy_into_stack(&vs, &singles.iter().map(|(v, _)| v).collect::<Vec<_>>())?;
    let params = count_params(&singles[0].0);
    let flops = flops(cell, settings.shape, in_channels, side, classes);
    let Some(outcomes) = fit_stack(&vs, &net, data, &settings.trainer, &training_seeds, stop)?
    else {
        return Ok(None);
    };
    let name = cell.to_string();
    let mut rows = Vec::with_capacity(settings.epochs * seeds.len());
    for (&s, outcome) in seeds.iter().zip(outcomes) {
        for (e, epoch) in outcome.epochs.iter().enumerate() {
            rows.push(Row {
                cell: name.clone(),
                seed: s,
                epoch: e + 1,
                train_accuracy: epoch.train_accuracy,
                dev_accuracy: epoch.dev_accuracy,
                test_accuracy: epoch.test_accuracy,
                seconds: epoch.seconds,
                params,
                flops,
            });
        }
        if let Some(seconds) = outcome.diverged {
            for e in outcome.epochs.len()..settings.epochs {
                rows.push(diverged_row(&name, s, e + 1, seconds, params, flops));
            }
        }
    }
    Ok(Some(rows))
}

/// Trains `net` (variables `vs`), the network of `cell` with seed index `s`, alone; its rows,
/// or `None` when a stop cut it short.
#[allow(clippy::too_many_arguments)]
fn train_one(
    cell: &Cell,
    s: usize,
    vs: &nn::VarStore,
    net: &CellNet,
    settings: &BuildSettings,
    data: &TrainData,
    (in_channels, side, classes): ImageShape,
    stop: &AtomicBool,
) -> Result<Option<Vec<Row>>> {
    let seed = training_seed(settings.seed, cell, s);
    let params = count_params(vs);
    let flops = flops(cell, settings.shape, in_channels, side, classes);
    let mut rows = Vec::with_capacity(settings.epochs);
    let name = cell.to_string();
    let eval_batch = settings.trainer.eval_batch_size;
    let outcome = fit_observed(vs, net, data, &settings.trainer, seed, stop, &mut |stats| {
        let test = evaluate(net, &data.test, eval_batch).1;
        rows.push(Row {
            cell: name.clone(),
            seed: s,
            epoch: rows.len() + 1,
            train_accuracy: stats.train_accuracy,
            dev_accuracy: stats.dev_accuracy,
            test_accuracy: test,
            seconds: stats.seconds,
            params,
            flops,
        });
    })?;
    match outcome.ending {
        Ending::Interrupted => return Ok(None),
        Ending::Diverged => {
            let seconds = outcome.epochs.last().map_or(0.0, |e| e.seconds);
            while rows.len() < settings.epochs {
                let epoch = rows.len() + 1;
                rows.push(diverged_row(&name, s, epoch, seconds, params, flops));
            }
        }
        Ending::Completed | Ending::EarlyStopped => {}
    }
    Ok(Some(rows))
}

/// Appends one training's rows and flushes them to disk.
fn append_rows(file: &mut std::fs::File, rows: &[Row]) -> Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for row in rows {
        csv.serialize(row)?;
    }
    let bytes = csv.into_inner().context("cannot format the rows")?;
    file.write_all(&bytes)
        .context("cannot append to rows.csv")?;
    file.sync_data().context("cannot flush rows.csv")?;
    Ok(())
}

/// The rows of `path` that belong to complete cells (every epoch of every seed present); a line
/// cut by a kill and the cells it belonged to are dropped. A cell's seeds are trained and
/// written together, so a cell is redone whole, and its rows are the same however often the
/// build was stopped.
fn complete_rows(path: &Path, epochs: usize, seeds: usize) -> Result<Vec<Row>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let rows = read_rows(&text[..end]).with_context(|| format!("in {}", path.display()))?;
    let mut counts: HashMap<(String, usize), usize> = HashMap::new();
    for r in &rows {
        *counts.entry((r.cell.clone(), r.seed)).or_default() += 1;
    }
    let whole = |cell: &str| {
        (0..seeds).all(|s| counts.get(&(cell.to_string(), s)).copied() == Some(epochs))
    };
    Ok(rows
        .into_iter()
        .filter(|r| r.seed < seeds && whole(&r.cell))
        .collect())
}

/// Writes `rows` (with a header) as the whole of `path`, atomically.
fn rewrite_rows(path: &Path, rows: &[Row]) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        csv.write_record([
            "cell",
            "seed",
            "epoch",
            "train_accuracy",
            "dev_accuracy",
            "test_accuracy",
            "seconds",
            "params",
            "flops",
        ])?;
    }
    for row in rows {
        csv.serialize(row)?;
    }
    let bytes = csv.into_inner().context("cannot format the rows")?;
    crate::outdir::write_atomically(path, &bytes)
}

/// Writes the finished table as `table.csv.gz` and `table.json` in `dir`.
fn write_table(
    dir: &Path,
    settings: &BuildSettings,
    command: &str,
    wall_seconds: f64,
    rows: Vec<Row>,
) -> Result<PathBuf> {
    let meta = TableMeta {
        dataset: settings.dataset.clone(),
        epochs: settings.epochs,
        seeds: settings.seeds,
        budgets: settings.budgets.clone(),
        protocol: serde_json::json!({
            "skeleton": "NAS-Bench-201's: 3x3 conv stem, three stages of N cells joined by residual reduction blocks, batch norm, ReLU, global average pooling, linear",
            "shape": settings.shape,
            "trainer": settings.trainer,
            "classes_trained": settings.limit.map_or("every class of isomorphic cells".to_string(), |l| format!("the first {l} classes")),
            "seconds": "per epoch: training and the dev evaluation, test evaluation excluded; with several seeds a cell's seeds train side by side as one stacked network, and each seed is given the stack's seconds divided by the number of seeds",
        }),
        command: command.to_string(),
        machine: machine(),
        built: chrono::Local::now().format("%Y-%m-%d").to_string(),
        wall_seconds,
    };
    let path = dir.join(TABLE_FILE);
    if settings.limit.is_some() {
        // A partial table: the rows as they are, without the whole-space check of `Table`.
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in &rows {
            csv.serialize(row)?;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&csv.into_inner().context("cannot format the rows")?)?;
        crate::outdir::write_atomically(&path, &gz.finish()?)?;
        crate::outdir::write_json_atomically(&super::table::meta_path(&path), &meta)?;
    } else {
        Table::from_rows(meta, rows)?.write(&path)?;
    }
    Ok(path)
}

/// This machine in a line: CPU model and logical cores (from /proc/cpuinfo where there is one).
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} logical cores, {}", std::env::consts::OS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_end_at_the_epochs() {
        assert_eq!(budgets_up_to(4), vec![1, 2, 4]);
        assert_eq!(budgets_up_to(6), vec![1, 2, 4, 6]);
        assert_eq!(budgets_up_to(3), vec![1, 2, 3]);
        assert_eq!(budgets_up_to(1), vec![1]);
    }

    #[test]
    fn one_representative_per_class() {
        let reps = representatives();
        assert_eq!(reps.len(), super::super::isomorphism::functional_count());
        let forms: HashSet<String> = reps.iter().map(functional).collect();
        assert_eq!(forms.len(), reps.len());
    }

    #[test]
    fn a_cells_stacked_seeds_give_the_rows_of_its_single_trainings() {
        use crate::cells::stack::tests::{settings, singles, toy_cell, toy_data, SHAPE};
        let data = toy_data();
        let build = BuildSettings {
            shape: SHAPE,
            trainer: settings(2),
            limit: Some(1),
            ..BuildSettings::new("toy", Source::Moons).with_epochs(2)
        };
        let cell = toy_cell();
        let nets = singles(&cell, 2);
        let image = (1, 8, 4);
        let stop = AtomicBool::new(false);
        // the stack only reads the singles' weights; then each single trains alone
        let stacked = train_stack(&cell, &[0, 1], &nets, &build, &data, image, &stop)
            .unwrap()
            .unwrap();
        let mut alone = Vec::new();
        for (s, (vs, net)) in nets.iter().enumerate() {
            alone.extend(
                train_one(&cell, s, vs, net, &build, &data, image, &stop)
                    .unwrap()
                    .unwrap(),
            );
        }
        assert_eq!(stacked.len(), 2 * 2);
        assert_eq!(stacked.len(), alone.len());
        for (a, b) in stacked.iter().zip(&alone) {
            assert_eq!(
                (&a.cell, a.seed, a.epoch, a.params, a.flops),
                (&b.cell, b.seed, b.epoch, b.params, b.flops)
            );
            // within two examples (see stack.rs's `assert_follows` for why)
            assert!((a.train_accuracy - b.train_accuracy).abs() <= 2.0 / 200.0 + 1e-12);
            assert!((a.dev_accuracy - b.dev_accuracy).abs() <= 2.0 / 90.0 + 1e-12);
            assert!((a.test_accuracy - b.test_accuracy).abs() <= 2.0 / 90.0 + 1e-12);
            assert!(a.seconds > 0.0);
        }
    }

    /// A row of `cell`'s training `seed` at `epoch`, every figure a placeholder.
    fn row(cell: &str, seed: usize, epoch: usize) -> Row {
        Row {
            cell: cell.into(),
            seed,
            epoch,
            train_accuracy: 0.5,
            dev_accuracy: 0.5,
            test_accuracy: 0.5,
            seconds: 1.0,
            params: 1,
            flops: 1,
        }
    }

    /// A rows.csv holding its header only, opened for appending.
    fn empty_rows_file(path: &Path) -> std::fs::File {
        rewrite_rows(path, &[]).unwrap();
        std::fs::OpenOptions::new().append(true).open(path).unwrap()
    }

    #[test]
    fn a_cell_missing_a_seed_is_dropped_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let a = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
        let b = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|";
        let whole = vec![row(a, 0, 1), row(a, 1, 1)];
        let mut file = empty_rows_file(&path);
        append_rows(&mut file, &whole).unwrap();
        // b's seed 1 cut off by a kill
        append_rows(&mut file, &[row(b, 0, 1)]).unwrap();
        assert_eq!(complete_rows(&path, 1, 2).unwrap(), whole);
        assert_eq!(
            complete_rows(&path, 1, 1).unwrap(),
            vec![row(a, 0, 1), row(b, 0, 1)]
        );
    }

    #[test]
    fn a_cut_line_and_incomplete_trainings_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let a = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
        let b = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|";
        let mut file = empty_rows_file(&path);
        append_rows(&mut file, &[row(a, 0, 1), row(a, 0, 2)]).unwrap();
        append_rows(&mut file, &[row(b, 0, 1)]).unwrap();
        file.write_all(b"|skip_connect~0|+|none~0|none~1|+|no")
            .unwrap();
        let kept = complete_rows(&path, 2, 1).unwrap();
        assert_eq!(kept, vec![row(a, 0, 1), row(a, 0, 2)]);
    }
}

/// The flags of `archsearch cells build`, as plain settings.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub epochs: usize,
    pub seeds: usize,
    pub limit: Option<usize>,
    pub workers: usize,
    pub device: String,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub resume: Option<PathBuf>,
    pub quiet: bool,
}

/// The command name the run marker records.
pub const COMMAND: &str = "cells build";

/// Runs `archsearch cells build`; returns the exit code (130 when stopped by a signal).
pub fn command(options: &BuildOptions) -> Result<i32> {
    let stop = crate::outdir::Stop::on_signals()?;
    let device = crate::outdir::parse_device(&options.device)?;
    let settings = BuildSettings {
        limit: options.limit,
        seeds: options.seeds,
        ..BuildSettings::new(
            &options.dataset,
            crate::data::images::source_for(&options.dataset, options.data_dir.as_deref())?,
        )
        .with_epochs(options.epochs)
    };
    let dir = match &options.resume {
        Some(dir) => {
            crate::outdir::check_resume_command(dir, COMMAND)?;
            if !dir.join(STATE_FILE).is_file() {
                crate::usage_bail!(
                    "{} holds no table build to resume (no {STATE_FILE}); start one with `archsearch cells build --out DIR`",
                    dir.display()
                );
            }
            crate::outdir::ensure_marker(dir, COMMAND)?;
            dir.clone()
        }
        None => {
            // Check the data before any folder is made.
            let splits = data::load(&settings.source, &data_settings())?;
            if splits.image.is_none() {
                crate::usage_bail!(
                    "cells build trains conv networks; give an image dataset with --dataset"
                );
            }
            crate::outdir::prepare(options.out.as_deref(), options.force, COMMAND)?
        }
    };
    if device == Device::Cpu {
        tch::set_num_threads(1);
    }
    let outcome = build(
        &settings,
        &dir,
        options.resume.is_some(),
        options.workers,
        device,
        stop.flag(),
        options.quiet,
    )?;
    let summary = if outcome.complete && !outcome.partial {
        let table = read_built(&dir)?;
        let summary = table_summary(&table, &outcome);
        crate::outdir::write_json_atomically(&dir.join("summary.json"), &summary)?;
        super::table_plot::histogram(&table, &dir.join("table.png"))?;
        Some(summary)
    } else {
        None
    };
    match summary {
        Some(s) => println!(
            "table of {} classes x {} seeds in {:.0} s wall: best cell {:.2} % test, median {:.2} %, spread {:.2} points\nwrote {}",
            s.entries,
            s.seeds,
            outcome.wall_seconds,
            100.0 * s.best_test,
            100.0 * s.median_test,
            100.0 * (s.best_test - s.median_test),
            dir.join(TABLE_FILE).display()
        ),
        None if outcome.complete => println!("wrote {}", dir.join(TABLE_FILE).display()),
        None => {}
    }
    if !outcome.complete {
        println!(
            "{} of {} trainings done; finish with `archsearch cells build --resume {}`",
            outcome.done,
            outcome.trainings,
            dir.display()
        );
    }
    Ok(if stop.requested() { 130 } else { 0 })
}

/// The table a build wrote in `dir`, when it covers the whole space.
fn read_built(dir: &Path) -> Result<Table> {
    Table::read(&dir.join(TABLE_FILE))
}

/// What summary.json says of a finished table.
#[derive(Clone, Debug, Serialize)]
pub struct TableSummary {
    pub entries: usize,
    pub seeds: usize,
    pub epochs: usize,
    pub wall_seconds: f64,
    /// Mean final test accuracy (over seeds) of the best, median and worst class.
    pub best_test: f64,
    pub best_cell: String,
    pub median_test: f64,
    pub worst_test: f64,
    /// Mean seconds of one full training.
    pub mean_training_seconds: f64,
}

fn table_summary(table: &Table, outcome: &BuildOutcome) -> TableSummary {
    let mut tests: Vec<f64> = table
        .entries
        .iter()
        .map(|e| table.mean_test(&e.cell))
        .collect();
    tests.sort_by(f64::total_cmp);
    let (best_cell, best_test) = table.best();
    let seconds: Vec<f64> = table
        .entries
        .iter()
        .flat_map(|e| e.runs.iter().map(|r| r.seconds.iter().sum::<f64>()))
        .collect();
    TableSummary {
        entries: table.entries.len(),
        seeds: table.meta.seeds,
        epochs: table.meta.epochs,
        wall_seconds: outcome.wall_seconds,
        best_test,
        best_cell: best_cell.to_string(),
        median_test: tests[tests.len() / 2],
        worst_test: tests[0],
        mean_training_seconds: seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
    }
}
