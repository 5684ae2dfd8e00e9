//! `archsearch compare`: the learning curves of several run folders in one figure, each as the
//! mean over its searches of the dev accuracy's moving average, with a min-to-max band.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::config::MOVING_AVERAGE;
use crate::error::UsageError;
use crate::plot::{self, Curve};
use crate::report::moving_average;
use crate::usage_bail;

/// Flags of `archsearch compare`.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Runs to draw, as LABEL=DIR (a folder written by archsearch; split at the last =)
    #[arg(required = true, value_name = "LABEL=DIR")]
    pub runs: Vec<String>,
    /// The PNG file to write
    #[arg(long)]
    pub out: PathBuf,
    /// Moving-average window
    #[arg(long, default_value_t = MOVING_AVERAGE as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub window: u64,
    /// Figure title
    #[arg(long, default_value = "Half-moon NAS: dev accuracy over rollouts")]
    pub title: String,
}

/// Dev accuracy per rollout of every search of a run folder, from its rollouts.csv.
pub fn accuracies(dir: &Path) -> Result<Vec<Vec<f64>>> {
    let path = dir.join("rollouts.csv");
    let mut reader = csv::Reader::from_path(&path)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", path.display())))?;
    let header = reader
        .headers()
        .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let Some(acc) = column("accuracy") else {
        usage_bail!("{} has no accuracy column", path.display())
    };
    let search = column("search");
    let mut per_search: Vec<Vec<f64>> = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row =
            row.map_err(|e| UsageError::new(format!("{} line {}: {e}", path.display(), i + 2)))?;
        let s: usize = match search {
            Some(c) => row[c].parse().map_err(|_| {
                UsageError::new(format!("{} line {}: bad search", path.display(), i + 2))
            })?,
            None => 0,
        };
        let a: f64 = row[acc].parse().map_err(|_| {
            UsageError::new(format!("{} line {}: bad accuracy", path.display(), i + 2))
        })?;
        if per_search.len() <= s {
            per_search.resize(s + 1, Vec::new());
        }
        per_search[s].push(a);
    }
    if per_search.is_empty() {
        usage_bail!("{} has no rollouts", path.display());
    }
    Ok(per_search)
}

/// The curve of one run: mean of its searches' moving averages, band from min to max.
pub fn curve(label: &str, per_search: &[Vec<f64>], window: usize) -> Curve {
    let mas: Vec<Vec<f64>> = per_search
        .iter()
        .map(|a| moving_average(a, window))
        .collect();
    let n = mas.iter().map(Vec::len).min().unwrap_or(0);
    let column = |i: usize| mas.iter().map(move |m| m[i]);
    let band = (mas.len() > 1).then(|| {
        (
            (0..n).map(|i| column(i).fold(f64::MAX, f64::min)).collect(),
            (0..n).map(|i| column(i).fold(f64::MIN, f64::max)).collect(),
        )
    });
    let label = if mas.len() > 1 {
        format!("{label} (mean of {}, band min to max)", mas.len())
    } else {
        label.to_string()
    };
    Curve {
        label,
        values: (0..n)
            .map(|i| column(i).sum::<f64>() / mas.len() as f64)
            .collect(),
        band,
    }
}

pub fn run(args: &CompareArgs) -> Result<()> {
    crate::outdir::check_file_out(&args.out, "png", "the figure")?;
    let mut curves = Vec::new();
    for spec in &args.runs {
        let Some((label, dir)) = spec.rsplit_once('=') else {
            usage_bail!("`{spec}`: expected LABEL=DIR")
        };
        curves.push(curve(
            label,
            &accuracies(Path::new(dir))?,
            args.window as usize,
        ));
    }
    let low = curves
        .iter()
        .flat_map(|c| {
            c.band
                .as_ref()
                .map(|b| b.0.clone())
                .unwrap_or_else(|| c.values.clone())
        })
        .fold(1.0f64, f64::min);
    let y_label = format!("dev accuracy, moving average of {}", args.window);
    plot::curves(
        &args.out,
        &args.title,
        "rollout",
        &y_label,
        &curves,
        ((low - 0.02).max(0.0), 1.0),
    )?;
    crate::outln!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_band_by_hand() {
        let c = curve("x", &[vec![1.0, 1.0], vec![0.0, 0.5]], 1);
        assert_eq!(c.values, vec![0.5, 0.75]);
        assert_eq!(c.band, Some((vec![0.0, 0.5], vec![1.0, 1.0])));
        assert!(c.label.contains("mean of 2"));
    }
}
