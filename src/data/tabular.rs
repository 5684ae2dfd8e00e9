//! Tabular data: points read from (and written to) a CSV file `x1,...,xd,label`, and the iris
//! and winequality datasets of linfa-datasets.

use std::path::Path;

use super::{Dataset, NAMED_DATASETS};
use crate::config::{
    DATA_BYTES_MAX, DATA_FEATURES_MAX, DATA_POINTS_MAX, DATA_VALUES_MAX, LABEL_MAX,
};
use crate::error::UsageError;
use anyhow::{bail, Context, Result};

/// A dataset shipped by linfa-datasets, labels renumbered 0.. in sorted order.
pub fn named(name: &str) -> Result<Dataset> {
    let ds = match name {
        "iris" => linfa_datasets::iris(),
        "winequality" => linfa_datasets::winequality(),
        other => {
            return Err(UsageError::new(format!(
                "unknown dataset `{other}`; choose one of: {}",
                NAMED_DATASETS.join(", ")
            ))
            .into())
        }
    };
    let mut classes: Vec<usize> = ds.targets.iter().copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let labels = ds
        .targets
        .iter()
        .map(|t| classes.binary_search(t).expect("present") as i64)
        .collect();
    let features = ds.records.iter().map(|&v| v as f32).collect();
    Ok(Dataset {
        features,
        labels,
        n_features: ds.records.ncols(),
        n_classes: classes.len(),
    })
}

/// Reads `x1,...,xd,label` rows (a header line first). Errors name the line.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let bad = |msg: String| -> anyhow::Error {
        UsageError::new(format!("{}: {msg}", path.display())).into()
    };
    let file =
        std::fs::File::open(path).map_err(|e| bad(format!("cannot open the data file: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(format!("cannot read the data file: {e}")))?;
    if !meta.is_file() {
        // A device such as /dev/zero would be read for ever; a pipe could not be read again
        // on --resume.
        bail!(bad("not a regular file; give a CSV file".into()));
    }
    if meta.len() > DATA_BYTES_MAX {
        bail!(bad(format!(
            "the file has {} bytes, above the limit of {DATA_BYTES_MAX} (DATA_BYTES_MAX in src/config.rs)",
            meta.len()
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::Read::take(file, DATA_BYTES_MAX));
    let header = reader
        .headers()
        .map_err(|e| bad(format!("line 1: cannot read the header: {e}")))?
        .clone();
    let names: Vec<&str> = header.iter().collect();
    let d = names.len().saturating_sub(1);
    if d > DATA_FEATURES_MAX {
        bail!(bad(format!(
            "line 1: {d} features, above the limit of {DATA_FEATURES_MAX} (DATA_FEATURES_MAX in src/config.rs)"
        )));
    }
    let expected: Vec<String> = (1..=d)
        .map(|i| format!("x{i}"))
        .chain(["label".to_string()])
        .collect();
    if d == 0 || names != expected {
        bail!(bad(format!(
            "line 1: the header must be `x1,x2,label` (or x1,...,xd,label), found `{}`",
            names.join(",")
        )));
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(format!("line {line}: {}", csv_error_text(&e)))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if labels.len() >= DATA_POINTS_MAX || features.len() + d > DATA_VALUES_MAX {
            bail!(bad(format!(
                "line {line}: more than {} points of {d} features, above the limits of {DATA_POINTS_MAX} points and {DATA_VALUES_MAX} values (DATA_POINTS_MAX, DATA_VALUES_MAX in src/config.rs)",
                labels.len(),
            )));
        }
        for (j, field) in record.iter().take(d).enumerate() {
            let v: f64 = field.parse().map_err(|_| {
                bad(format!(
                    "line {line}: x{} must be a number, found `{field}`",
                    j + 1
                ))
            })?;
            // Children train in f32: a value beyond its range (about 3.4e38) would become
            // infinite there.
            if !(v as f32).is_finite() {
                bail!(bad(format!(
                    "line {line}: x{} must be a finite number within the 32-bit float range (about ±3.4e38) children train in, found `{field}`",
                    j + 1
                )));
            }
            features.push(v as f32);
        }
        let field = &record[d];
        let label: i64 = field
            .parse()
            .ok()
            .filter(|l: &i64| (0..=LABEL_MAX).contains(l))
            .ok_or_else(|| {
                bad(format!(
                    "line {line}: label must be a class number 0, 1, ... up to {LABEL_MAX} (LABEL_MAX in src/config.rs), found `{field}`"
                ))
            })?;
        labels.push(label);
    }
    if labels.is_empty() {
        bail!(bad("the file has a header but no points".into()));
    }
    let n_classes = *labels.iter().max().expect("non-empty") as usize + 1;
    let first = labels[0];
    if labels.iter().all(|&l| l == first) {
        bail!(bad(format!(
            "every point has label {first}; a classifier needs at least two classes"
        )));
    }
    Ok(Dataset {
        features,
        labels,
        n_features: d,
        n_classes,
    })
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields like the header, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the line is not valid UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// Writes the points as `x1,...,xd,label` with a header, readable by `read_csv`.
pub fn write_csv(data: &Dataset, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let header: Vec<String> = (1..=data.n_features)
        .map(|i| format!("x{i}"))
        .chain(["label".into()])
        .collect();
    w.write_record(&header)?;
    for i in 0..data.len() {
        let mut row: Vec<String> = data.point(i).iter().map(|v| v.to_string()).collect();
        row.push(data.labels[i].to_string());
        w.write_record(&row)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
