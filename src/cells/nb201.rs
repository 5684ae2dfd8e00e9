//! The real NAS-Bench-201 results (Dong & Yang 2020) as a `Table`, read from the pickle layout
//! the NASLib project ships as `nb201_cifar10_full_training.pickle` (read with the serde-pickle
//! crate; docs/formats.md, "NAS-Bench-201 pickle"):
//!
//! `{arch_str: {dataset: {"train_acc1es": [...], "eval_acc1es": [...], "train_losses": [...],
//! "eval_losses": [...], "cost_info": {"flops", "params", "latency", "train_time"}}}}`
//!
//! with the cell in NAS-Bench-201's string form, accuracies in percent per epoch, FLOPs and
//! parameters in millions, `train_time` in seconds per epoch. NASLib's layout keeps a single
//! evaluation curve per dataset (`eval_acc1es`; for CIFAR-10 the `cifar10-valid` split), which
//! NASLib answers both validation and test queries with; so does this reader: dev = test =
//! `eval_acc1es` / 100. One training per cell: the table has 1 seed.
//!
//! The file holds every one of the 15 625 cells; isomorphic cells were trained apart and differ
//! by training noise. The table keeps one entry per class of isomorphic cells, the class member
//! of the lowest cell index present in the file, so every cell of a class answers alike.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use serde_pickle::{DeOptions, HashableValue, Value};

use super::cell::Cell;
use super::config::{NB201_BUDGETS, NB201_DATASETS};
use super::isomorphism::functional;
use super::table::{Curve, Entry, Table, TableMeta};

/// One cell's record in the file, before isomorphic cells are merged.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub cell: Cell,
    pub entry: Entry,
}

/// The dataset key the records are read under, and every record of the file, in file order.
pub fn read_records(path: &Path) -> Result<(String, Vec<Record>)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the pickle {}", path.display()))?;
    // Objects the crate cannot build (numpy scalars, say) become None, reported below by key.
    let value =
        serde_pickle::value_from_slice(&bytes, DeOptions::new().replace_unresolved_globals())
            .with_context(|| format!("{} is not a pickle serde-pickle can read", path.display()))?;
    records_of(value).with_context(|| {
        format!(
            "{} is not in the layout of NASLib's nb201_*_full_training.pickle",
            path.display()
        )
    })
}

fn records_of(value: Value) -> Result<(String, Vec<Record>)> {
    let Value::Dict(archs) = value else {
        anyhow::bail!("the top level is not a dict of architecture strings");
    };
    let mut dataset: Option<String> = None;
    let mut records = Vec::with_capacity(archs.len());
    for (key, per_dataset) in archs {
        let arch = key_string(&key)
            .with_context(|| format!("a top-level key is not a string: {key:?}"))?;
        let cell = Cell::parse(&arch)
            .with_context(|| format!("the key `{arch}` is not a NAS-Bench-201 cell"))?;
        let datasets = dict(per_dataset).with_context(|| format!("`{arch}`"))?;
        let name = match &dataset {
            Some(d) => d.clone(),
            None => {
                let d = pick_dataset(&datasets).with_context(|| format!("`{arch}`"))?;
                dataset = Some(d.clone());
                d
            }
        };
        let Some(figures) = datasets.get(&name) else {
            anyhow::bail!("`{arch}` has no `{name}` results, the other cells have");
        };
        let entry =
            entry_of(cell, figures.clone()).with_context(|| format!("`{arch}` [`{name}`]"))?;
        records.push(Record { cell, entry });
    }
    let Some(dataset) = dataset else {
        anyhow::bail!("the pickle holds no cell");
    };
    Ok((dataset, records))
}

/// The dataset of a cell's results: the one key, or the first of NB201_DATASETS present.
fn pick_dataset(datasets: &BTreeMap<String, Value>) -> Result<String> {
    if datasets.len() == 1 {
        return Ok(datasets.keys().next().cloned().unwrap_or_default());
    }
    NB201_DATASETS
        .iter()
        .find(|d| datasets.contains_key(**d))
        .map(|d| d.to_string())
        .with_context(|| {
            format!(
                "none of the datasets {NB201_DATASETS:?} among {:?}",
                datasets.keys().collect::<Vec<_>>()
            )
        })
}

fn key_string(key: &HashableValue) -> Option<String> {
    match key {
        HashableValue::String(s) => Some(s.clone()),
        HashableValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

/// A dict with string keys.
fn dict(value: Value) -> Result<BTreeMap<String, Value>> {
    let Value::Dict(d) = value else {
        anyhow::bail!("expected a dict, found {}", kind(&value));
    };
    d.into_iter()
        .map(|(k, v)| {
            key_string(&k)
                .map(|k| (k, v))
                .with_context(|| format!("a key is not a string: {k:?}"))
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None (an object serde-pickle cannot build, such as a numpy scalar?)",
        Value::Bool(_) => "a bool",
        Value::I64(_) | Value::Int(_) => "an int",
        Value::F64(_) => "a float",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        Value::Dict(_) => "a dict",
    }
}

fn number(v: &Value) -> Result<f64> {
    match v {
        Value::F64(x) => Ok(*x),
        Value::I64(x) => Ok(*x as f64),
        other => anyhow::bail!("expected a number, found {}", kind(other)),
    }
}

fn numbers(figures: &BTreeMap<String, Value>, key: &str) -> Result<Vec<f64>> {
    let Some(v) = figures.get(key) else {
        anyhow::bail!("no `{key}`");
    };
    match v {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| number(x).with_context(|| format!("`{key}`[{i}]")))
            .collect(),
        other => anyhow::bail!("`{key}` is {}, not a list", kind(other)),
    }
}

/// Millions (NB201's unit for FLOPs and parameters) as a whole count.
fn from_millions(x: f64) -> u64 {
    (x * 1e6).round().max(0.0) as u64
}

fn entry_of(cell: Cell, figures: Value) -> Result<Entry> {
    let figures = dict(figures)?;
    let train = numbers(&figures, "train_acc1es")?;
    let eval = numbers(&figures, "eval_acc1es")?;
    let cost = dict(
        figures
            .get("cost_info")
            .cloned()
            .context("no `cost_info`")?,
    )
    .context("`cost_info`")?;
    let get = |k: &str| {
        cost.get(k)
            .with_context(|| format!("no `cost_info`[`{k}`]"))
            .and_then(|v| number(v).with_context(|| format!("`cost_info`[`{k}`]")))
    };
    let per_epoch = get("train_time")?;
    if train.is_empty() || train.len() != eval.len() {
        anyhow::bail!(
            "`train_acc1es` has {} epochs and `eval_acc1es` {}: they must agree and not be empty",
            train.len(),
            eval.len()
        );
    }
    let percent = |v: Vec<f64>| v.into_iter().map(|x| x / 100.0).collect::<Vec<f64>>();
    let dev = percent(eval);
    let curve = Curve {
        seconds: vec![per_epoch; dev.len()],
        train: percent(train),
        test: dev.clone(),
        dev,
    };
    Ok(Entry {
        cell,
        params: from_millions(get("params")?),
        flops: from_millions(get("flops")?),
        runs: vec![curve],
    })
}

/// The budgets of a table of `epochs` epochs: NB201_BUDGETS up to `epochs`, ending on it.
pub fn budgets(epochs: usize) -> Vec<usize> {
    let mut b: Vec<usize> = NB201_BUDGETS
        .iter()
        .copied()
        .filter(|&x| x < epochs)
        .collect();
    b.push(epochs);
    b
}

/// One record per class of isomorphic cells: the one of the lowest cell index.
pub fn one_per_class(records: Vec<Record>) -> Vec<Entry> {
    let mut best: HashMap<String, Record> = HashMap::new();
    for r in records {
        let form = functional(&r.cell);
        match best.get(&form) {
            Some(kept) if kept.cell.index() <= r.cell.index() => {}
            _ => {
                best.insert(form, r);
            }
        }
    }
    let mut entries: Vec<Entry> = best.into_values().map(|r| r.entry).collect();
    entries.sort_by_key(|e| e.cell.index());
    entries
}

impl Table {
    /// The table of a NASLib NAS-Bench-201 pickle; every class of isomorphic cells must have a
    /// cell in the file (a missing one is named), all with the same number of epochs.
    pub fn from_nb201_pickle(path: &Path) -> Result<Table> {
        let (dataset, records) = read_records(path)?;
        let epochs = records[0].entry.runs[0].dev.len();
        if let Some(r) = records.iter().find(|r| r.entry.runs[0].dev.len() != epochs) {
            anyhow::bail!(
                "{}: cell {} has {} epochs, cell {} has {epochs}",
                path.display(),
                r.cell,
                r.entry.runs[0].dev.len(),
                records[0].cell
            );
        }
        let meta = TableMeta {
            dataset: format!("NAS-Bench-201 {dataset}"),
            epochs,
            seeds: 1,
            budgets: budgets(epochs),
            protocol: serde_json::json!({
                "source": "NASLib's NAS-Bench-201 pickle",
                "file": path.display().to_string(),
                "dev_and_test": "eval_acc1es (NASLib's one evaluation curve)",
                "seconds": "cost_info.train_time per epoch",
            }),
            command: String::new(),
            machine: String::new(),
            built: String::new(),
            wall_seconds: 0.0,
        };
        Table::new(meta, one_per_class(records))
            .with_context(|| format!("in the NAS-Bench-201 pickle {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::config::FUNCTIONAL_CELLS;
    use serde::Serialize;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nb201_tiny.pickle")
    }

    /// Every figure of the fixture against the literal values of make_nb201_fixture.py.
    #[test]
    fn the_fixture_reads_figure_by_figure() {
        let (dataset, records) = read_records(&fixture()).unwrap();
        assert_eq!(dataset, "cifar10-valid");
        assert_eq!(records.len(), 4);
        // (cell, train %, eval %, flops M, params M, seconds per epoch)
        let expected: [(&str, [f64; 5], [f64; 5], f64, f64, f64); 4] = [
            (
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                [40.0, 60.0, 70.0, 80.0, 90.0],
                [38.5, 55.25, 66.0, 71.5, 75.0],
                184.0,
                1.531546,
                12.5,
            ),
            (
                "|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|",
                [30.0, 40.0, 50.0, 55.0, 60.0],
                [29.0, 39.0, 48.0, 52.0, 54.5],
                20.5,
                0.2,
                4.0,
            ),
            (
                "|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|",
                [31.0, 41.0, 51.0, 56.0, 61.0],
                [28.0, 38.0, 47.0, 51.0, 53.5],
                20.5,
                0.2,
                4.25,
            ),
            (
                "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                [10.0; 5],
                [10.0; 5],
                7.78,
                0.07,
                3.0,
            ),
        ];
        for (arch, train, eval, flops, params, seconds) in expected {
            let r = records
                .iter()
                .find(|r| r.cell.to_string() == arch)
                .unwrap_or_else(|| panic!("{arch} not read"));
            assert_eq!(r.entry.runs.len(), 1);
            let run = &r.entry.runs[0];
            for e in 0..5 {
                assert!((run.train[e] - train[e] / 100.0).abs() < 1e-12);
                assert!((run.dev[e] - eval[e] / 100.0).abs() < 1e-12);
                assert!((run.test[e] - eval[e] / 100.0).abs() < 1e-12);
                assert_eq!(run.seconds[e], seconds);
            }
            assert_eq!(r.entry.flops, (flops * 1e6_f64).round() as u64);
            assert_eq!(r.entry.params, (params * 1e6_f64).round() as u64);
        }
        // the two isomorphic cells (node 1 cut off the output) fold into one entry: the one of
        // the lower index.
        let a =
            Cell::parse("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").unwrap();
        let b =
            Cell::parse("|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").unwrap();
        let (kept, dropped) = if a.index() < b.index() {
            (a, b)
        } else {
            (b, a)
        };
        let entries = one_per_class(records);
        assert_eq!(entries.len(), 3);
        assert!(entries.iter().any(|e| e.cell == kept));
        assert!(!entries.iter().any(|e| e.cell == dropped));
    }

    #[test]
    fn a_partial_pickle_is_refused_naming_a_missing_cell() {
        let err = format!("{:#}", Table::read(&fixture()).unwrap_err());
        assert!(err.contains("has no entry for cell"), "{err}");
        assert!(err.contains("nb201_tiny.pickle"), "{err}");
    }

    #[test]
    fn budgets_follow_the_epochs() {
        assert_eq!(budgets(200), [1, 2, 4, 8, 12, 25, 50, 100, 200]);
        assert_eq!(budgets(12), [1, 2, 4, 8, 12]);
        assert_eq!(budgets(5), [1, 2, 4, 5]);
        assert_eq!(budgets(1), [1]);
    }

    #[derive(Serialize)]
    struct Cost {
        flops: f64,
        params: f64,
        latency: f64,
        train_time: f64,
    }

    #[derive(Serialize)]
    struct Figures {
        train_losses: Vec<f64>,
        eval_losses: Vec<f64>,
        train_acc1es: Vec<f64>,
        eval_acc1es: Vec<f64>,
        cost_info: Cost,
    }

    /// A whole table in the layout, every one of the 15 625 cells as in the real file, written
    /// by serde-pickle: it loads, folds into its functional classes, and answers by formula.
    #[test]
    fn a_full_pickle_is_a_table() {
        let epochs = 3;
        // eval % = 10 + 0.005 * index + epoch: the lowest index of a class answers for it.
        let acc = |index: usize, e: usize| 10.0 + 0.005 * index as f64 + e as f64;
        let mut data: BTreeMap<String, BTreeMap<String, Figures>> = BTreeMap::new();
        for cell in Cell::all() {
            let i = cell.index();
            let mut per = BTreeMap::new();
            per.insert(
                "cifar10-valid".to_string(),
                Figures {
                    train_losses: vec![1.0; epochs],
                    eval_losses: vec![1.0; epochs],
                    train_acc1es: (1..=epochs).map(|e| acc(i, e) + 1.0).collect(),
                    eval_acc1es: (1..=epochs).map(|e| acc(i, e)).collect(),
                    cost_info: Cost {
                        flops: 1.5,
                        params: 0.25,
                        latency: 0.0,
                        train_time: 2.0 + (i % 3) as f64,
                    },
                },
            );
            data.insert(cell.to_string(), per);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nb201_full.pickle");
        let bytes = serde_pickle::to_vec(&data, serde_pickle::SerOptions::new()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let table = Table::read(&path).unwrap();
        assert_eq!(table.entries.len(), FUNCTIONAL_CELLS);
        assert_eq!(table.meta.epochs, 3);
        assert_eq!(table.meta.seeds, 1);
        assert_eq!(table.meta.budgets, [1, 2, 3]);
        for cell in Cell::all().step_by(97) {
            let rep = Cell::all()
                .find(|c| functional(c) == functional(&cell))
                .unwrap()
                .index();
            let q = table.query(&cell, 2, 5);
            assert!((q.dev - acc(rep, 2) / 100.0).abs() < 1e-12);
            assert!((q.test - q.dev).abs() < 1e-15);
            assert!((q.train - (acc(rep, 2) + 1.0) / 100.0).abs() < 1e-12);
            assert_eq!(q.seconds, 2.0 * (2.0 + (rep % 3) as f64));
            assert_eq!(table.entry(&cell).params, 250_000);
            assert_eq!(table.entry(&cell).flops, 1_500_000);
        }
    }

    #[test]
    fn a_wrong_layout_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.pickle");
        let mut data: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
        data.insert(
            "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|".into(),
            [("cifar10-valid".to_string(), BTreeMap::new())].into(),
        );
        std::fs::write(
            &path,
            serde_pickle::to_vec(&data, serde_pickle::SerOptions::new()).unwrap(),
        )
        .unwrap();
        let err = format!("{:#}", Table::read(&path).unwrap_err());
        assert!(err.contains("no `train_acc1es`"), "{err}");
        std::fs::write(&path, b"not a pickle").unwrap();
        assert!(Table::read(&path).is_err());
    }
}
