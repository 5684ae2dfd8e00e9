//! The tabulated cell benchmark, as NAS-Bench-201 (Dong & Yang 2020) tabulates its cells: for
//! every class of isomorphic cells, per training seed and per epoch, the train, dev and test
//! accuracy and the seconds the epoch took, with the network's parameter count and FLOPs.
//! Optimisers query it instead of training (docs/algorithms.md §7).
//!
//! On disk a table is two files: `NAME.csv.gz`, one row per (cell, seed, epoch) with the columns
//! of `Row`, and `NAME.json`, the `TableMeta` saying how and where it was built.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::cell::Cell;
use super::config::CELLS;
use super::isomorphism::functional;

/// One line of the table file: a cell's figures after one epoch of one training seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The trained representative of its class, in NAS-Bench-201's string form.
    pub cell: String,
    /// Index of the training seed, from 0.
    pub seed: usize,
    /// Epochs trained so far, from 1.
    pub epoch: usize,
    pub train_accuracy: f64,
    pub dev_accuracy: f64,
    pub test_accuracy: f64,
    /// Seconds this epoch's training took (evaluation excluded).
    pub seconds: f64,
    pub params: u64,
    /// Multiply-adds of one forward pass of one example.
    pub flops: u64,
}

/// How a table was built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    /// The dataset the cells were trained on.
    pub dataset: String,
    /// Epochs of every training (the full budget).
    pub epochs: usize,
    /// Training seeds per cell.
    pub seeds: usize,
    /// The budgets (epochs) multi-fidelity optimisers may ask for, ascending, the last `epochs`.
    pub budgets: Vec<usize>,
    /// The training protocol and network skeleton, in words and figures.
    #[serde(default)]
    pub protocol: serde_json::Value,
    /// The command line that built it, the machine, the date, the wall time.
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub machine: String,
    #[serde(default)]
    pub built: String,
    #[serde(default)]
    pub wall_seconds: f64,
}

/// One training of one cell: its figures per epoch (index 0 = after epoch 1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curve {
    pub train: Vec<f64>,
    pub dev: Vec<f64>,
    pub test: Vec<f64>,
    pub seconds: Vec<f64>,
}

/// One class of isomorphic cells and its trainings.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The trained representative.
    pub cell: Cell,
    pub params: u64,
    pub flops: u64,
    /// One curve per training seed.
    pub runs: Vec<Curve>,
}

/// What a query of the table returns: the figures of one training seed after `epochs` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Query {
    pub train: f64,
    pub dev: f64,
    pub test: f64,
    /// Training seconds of the first `epochs` epochs: what the query costs in simulated time.
    pub seconds: f64,
}

/// A whole table: every one of the 15 625 cells answers through its class's entry.
#[derive(Clone, Debug)]
pub struct Table {
    pub meta: TableMeta,
    pub entries: Vec<Entry>,
    /// Entry of every cell, by cell index.
    class: Vec<u32>,
}

impl Table {
    /// Builds a table from its entries, one per class of isomorphic cells; every class of the
    /// space must have one, with `meta.seeds` curves of `meta.epochs` epochs.
    pub fn new(meta: TableMeta, entries: Vec<Entry>) -> Result<Table> {
        let mut by_form: HashMap<String, u32> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.runs.len() != meta.seeds {
                anyhow::bail!(
                    "the table's cell {} has {} training seeds, the table says {}",
                    entry.cell,
                    entry.runs.len(),
                    meta.seeds
                );
            }
            for run in &entry.runs {
                let lengths = [
                    run.train.len(),
                    run.dev.len(),
                    run.test.len(),
                    run.seconds.len(),
                ];
                if lengths.iter().any(|&l| l != meta.epochs) {
                    anyhow::bail!(
                        "the table's cell {} has a training of {:?} epochs, the table says {}",
                        entry.cell,
                        lengths,
                        meta.epochs
                    );
                }
            }
            if by_form.insert(functional(&entry.cell), i as u32).is_some() {
                anyhow::bail!(
                    "the table holds two isomorphic cells (one is {})",
                    entry.cell
                );
            }
        }
        let mut class = Vec::with_capacity(CELLS);
        for cell in Cell::all() {
            match by_form.get(&functional(&cell)) {
                Some(&i) => class.push(i),
                None => anyhow::bail!(
                    "the table has no entry for cell {cell} or any cell isomorphic to it"
                ),
            }
        }
        check_budgets(&meta)?;
        Ok(Table {
            meta,
            entries,
            class,
        })
    }

    /// A table whose every figure comes from `f(cell, seed, epoch)` = (dev, test, seconds) (train
    /// accuracy is set to the dev one): toy tables with a known optimum, for tests.
    pub fn from_fn(
        epochs: usize,
        seeds: usize,
        budgets: Vec<usize>,
        f: impl Fn(&Cell, usize, usize) -> (f64, f64, f64),
    ) -> Result<Table> {
        let mut seen = std::collections::HashSet::new();
        let mut entries = Vec::new();
        for cell in Cell::all() {
            if !seen.insert(functional(&cell)) {
                continue;
            }
            let runs = (0..seeds)
                .map(|seed| {
                    let mut curve = Curve::default();
                    for epoch in 1..=epochs {
                        let (dev, test, seconds) = f(&cell, seed, epoch);
                        curve.train.push(dev);
                        curve.dev.push(dev);
                        curve.test.push(test);
                        curve.seconds.push(seconds);
                    }
                    curve
                })
                .collect();
            entries.push(Entry {
                cell,
                params: 0,
                flops: 0,
                runs,
            });
        }
        let meta = TableMeta {
            dataset: "toy".into(),
            epochs,
            seeds,
            budgets,
            protocol: serde_json::Value::Null,
            command: String::new(),
            machine: String::new(),
            built: String::new(),
            wall_seconds: 0.0,
        };
        Table::new(meta, entries)
    }

    /// The entry answering for `cell`.
    pub fn entry(&self, cell: &Cell) -> &Entry {
        &self.entries[self.class[cell.index()] as usize]
    }

    /// The figures of training seed `seed` (taken modulo the table's seeds) of `cell` after
    /// `epochs` epochs (clamped to 1..=meta.epochs).
    pub fn query(&self, cell: &Cell, epochs: usize, seed: usize) -> Query {
        let run = &self.entry(cell).runs[seed % self.meta.seeds];
        let e = epochs.clamp(1, self.meta.epochs);
        Query {
            train: run.train[e - 1],
            dev: run.dev[e - 1],
            test: run.test[e - 1],
            seconds: run.seconds[..e].iter().sum(),
        }
    }

    /// Test accuracy of `cell` after the full budget, the mean over training seeds: the figure
    /// regret is measured on.
    pub fn mean_test(&self, cell: &Cell) -> f64 {
        let runs = &self.entry(cell).runs;
        runs.iter()
            .map(|r| r.test[self.meta.epochs - 1])
            .sum::<f64>()
            / runs.len() as f64
    }

    /// Dev accuracy of `cell` after the full budget, the mean over training seeds.
    pub fn mean_dev(&self, cell: &Cell) -> f64 {
        let runs = &self.entry(cell).runs;
        runs.iter()
            .map(|r| r.dev[self.meta.epochs - 1])
            .sum::<f64>()
            / runs.len() as f64
    }

    /// The cell of the highest mean final test accuracy, and that accuracy: the table's optimum.
    pub fn best(&self) -> (Cell, f64) {
        self.entries
            .iter()
            .map(|e| (e.cell, self.mean_test(&e.cell)))
            .fold((self.entries[0].cell, f64::NEG_INFINITY), |best, x| {
                if x.1 > best.1 {
                    x
                } else {
                    best
                }
            })
    }

    /// The table archsearch ships, built by `archsearch cells build` on the bundled digits
    /// (tables/cells-digits.csv.gz and .json, compiled into the binary).
    pub fn bundled() -> Result<Table> {
        let meta: TableMeta =
            serde_json::from_str(BUNDLED_META).context("the bundled table's description")?;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(BUNDLED_ROWS)
            .read_to_end(&mut text)
            .context("cannot decompress the bundled table")?;
        Table::from_rows(meta, read_rows(&text[..])?).context("in the bundled table")
    }

    /// Reads a table: `NAME.csv.gz` with its `NAME.json` beside it, or the real NAS-Bench-201
    /// results in NASLib's layout (`*.pickle` / `*.pkl`, see `Table::from_nb201_pickle`).
    pub fn read(path: &Path) -> Result<Table> {
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pickle" | "pkl")
        ) {
            return Table::from_nb201_pickle(path);
        }
        let meta_path = meta_path(path);
        let meta_text = std::fs::read_to_string(&meta_path).with_context(|| {
            format!(
                "cannot read the table's description {}",
                meta_path.display()
            )
        })?;
        let meta: TableMeta = serde_json::from_str(&meta_text)
            .with_context(|| format!("{} is not a table description", meta_path.display()))?;
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open the table {}", path.display()))?;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(file)
            .read_to_end(&mut text)
            .with_context(|| format!("cannot decompress the table {}", path.display()))?;
        let rows =
            read_rows(&text[..]).with_context(|| format!("in the table {}", path.display()))?;
        Table::from_rows(meta, rows).with_context(|| format!("in the table {}", path.display()))
    }

    /// Assembles a table from its rows (any order).
    pub fn from_rows(meta: TableMeta, rows: Vec<Row>) -> Result<Table> {
        let mut order: Vec<String> = Vec::new();
        let mut entries: HashMap<String, Entry> = HashMap::new();
        for row in rows {
            if row.seed >= meta.seeds || row.epoch == 0 || row.epoch > meta.epochs {
                anyhow::bail!(
                    "row of cell {} has seed {} and epoch {}; the table has {} seeds and {} epochs",
                    row.cell,
                    row.seed,
                    row.epoch,
                    meta.seeds,
                    meta.epochs
                );
            }
            let entry = match entries.get_mut(&row.cell) {
                Some(e) => e,
                None => {
                    let cell = Cell::parse(&row.cell)?;
                    order.push(row.cell.clone());
                    let empty = Curve {
                        train: vec![f64::NAN; meta.epochs],
                        dev: vec![f64::NAN; meta.epochs],
                        test: vec![f64::NAN; meta.epochs],
                        seconds: vec![f64::NAN; meta.epochs],
                    };
                    entries.entry(row.cell.clone()).or_insert(Entry {
                        cell,
                        params: row.params,
                        flops: row.flops,
                        runs: vec![empty; meta.seeds],
                    })
                }
            };
            let curve = &mut entry.runs[row.seed];
            let e = row.epoch - 1;
            curve.train[e] = row.train_accuracy;
            curve.dev[e] = row.dev_accuracy;
            curve.test[e] = row.test_accuracy;
            curve.seconds[e] = row.seconds;
        }
        let entries: Vec<Entry> = order
            .into_iter()
            .filter_map(|name| entries.remove(&name))
            .collect();
        for entry in &entries {
            for (seed, run) in entry.runs.iter().enumerate() {
                if let Some(e) = run.seconds.iter().position(|s| s.is_nan()) {
                    anyhow::bail!(
                        "cell {} seed {seed} has no row for epoch {}",
                        entry.cell,
                        e + 1
                    );
                }
            }
        }
        Table::new(meta, entries)
    }

    /// The table's rows, entry by entry, seed by seed, epoch by epoch.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for entry in &self.entries {
            for (seed, run) in entry.runs.iter().enumerate() {
                for e in 0..self.meta.epochs {
                    rows.push(Row {
                        cell: entry.cell.to_string(),
                        seed,
                        epoch: e + 1,
                        train_accuracy: run.train[e],
                        dev_accuracy: run.dev[e],
                        test_accuracy: run.test[e],
                        seconds: run.seconds[e],
                        params: entry.params,
                        flops: entry.flops,
                    });
                }
            }
        }
        rows
    }

    /// Writes `NAME.csv.gz` and `NAME.json` beside it, each atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in self.rows() {
            csv.serialize(row)?;
        }
        let text = csv.into_inner().context("cannot assemble the table")?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&text)?;
        crate::outdir::write_atomically(path, &gz.finish()?)?;
        crate::outdir::write_json_atomically(&meta_path(path), &self.meta)
    }
}

/// The shipped table's rows (gzipped CSV) and description.
const BUNDLED_ROWS: &[u8] = include_bytes!("../../tables/cells-digits.csv.gz");
const BUNDLED_META: &str = include_str!("../../tables/cells-digits.json");

/// Rows of a table's CSV text.
pub fn read_rows(text: impl Read) -> Result<Vec<Row>> {
    let mut reader = csv::Reader::from_reader(text);
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize().enumerate() {
        rows.push(row.with_context(|| format!("line {} is not a table row", i + 2))?);
    }
    Ok(rows)
}

/// `NAME.json` beside `NAME.csv.gz`.
pub fn meta_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("table");
    let stem = name.strip_suffix(".csv.gz").unwrap_or(name);
    path.with_file_name(format!("{stem}.json"))
}

fn check_budgets(meta: &TableMeta) -> Result<()> {
    let ascending = meta.budgets.windows(2).all(|w| w[0] < w[1]);
    if meta.budgets.is_empty()
        || !ascending
        || meta.budgets[0] == 0
        || meta.budgets.last() != Some(&meta.epochs)
    {
        anyhow::bail!(
            "the table's budgets {:?} must ascend from at least 1 to its {} epochs",
            meta.budgets,
            meta.epochs
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::cell::Op;

    /// Test accuracy: the share of convolutions among the edges, grown with the epochs.
    fn toy() -> Table {
        Table::from_fn(4, 2, vec![1, 2, 4], |cell, seed, epoch| {
            let convs = cell
                .ops
                .iter()
                .filter(|o| matches!(o, Op::NorConv3x3 | Op::NorConv1x1))
                .count() as f64;
            let acc = convs / 6.0 * epoch as f64 / 4.0;
            (acc - 0.01 * seed as f64, acc, 1.5)
        })
        .unwrap()
    }

    #[test]
    fn queries_answer_per_seed_and_epoch_with_cumulative_seconds() {
        let t = toy();
        let all_conv = Cell::parse(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        )
        .unwrap();
        let q = t.query(&all_conv, 2, 1);
        assert!((q.test - 0.5).abs() < 1e-12);
        assert!((q.dev - 0.49).abs() < 1e-12);
        assert!((q.seconds - 3.0).abs() < 1e-12);
        assert_eq!(t.best().1, 1.0);
        // isomorphic cells answer alike: a dead node's op does not matter.
        let a =
            Cell::parse("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").unwrap();
        let b =
            Cell::parse("|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").unwrap();
        assert_eq!(t.query(&a, 4, 0), t.query(&b, 4, 0));
    }

    #[test]
    fn a_table_round_trips_through_its_files() {
        let t = toy();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toy.csv.gz");
        t.write(&path).unwrap();
        assert!(dir.path().join("toy.json").exists());
        let back = Table::read(&path).unwrap();
        assert_eq!(back.meta, t.meta);
        assert_eq!(back.entries, t.entries);
    }

    #[test]
    fn the_bundled_table_covers_the_space_and_is_worth_searching() {
        let t = Table::bundled().unwrap();
        assert_eq!(t.entries.len(), crate::cells::config::FUNCTIONAL_CELLS);
        assert_eq!(t.meta.dataset, "digits");
        let mut tests: Vec<f64> = t.entries.iter().map(|e| t.mean_test(&e.cell)).collect();
        tests.sort_by(f64::total_cmp);
        // the table's promise: the best class at least 5 points above the median one.
        let median = tests[tests.len() / 2];
        assert!(t.best().1 - median >= 0.05, "{} vs {median}", t.best().1);
    }

    #[test]
    fn a_missing_epoch_is_named() {
        let t = toy();
        let mut rows = t.rows();
        rows.retain(|r| !(r.seed == 1 && r.epoch == 3 && r.cell == t.entries[5].cell.to_string()));
        let err = Table::from_rows(t.meta.clone(), rows)
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch 3"), "{err}");
    }
}
