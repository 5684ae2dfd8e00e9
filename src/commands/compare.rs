//! `archsearch compare`: the learning curves of several run folders in one figure, each as the
//! mean over its searches of the dev accuracy's moving average, with a min-to-max band.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::config::MOVING_AVERAGE;
use crate::error::UsageError;
use crate::output::plot::{self, Curve};
use crate::output::report::moving_average;
use crate::output::rows;
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

/// The dev accuracies of one strategy of a run folder: one list per search (default run) or
/// per seed (choice-list), in the order of the rows.
pub struct Group {
    /// The strategy's name; empty for the default run, which has one.
    pub strategy: String,
    pub per_run: Vec<Vec<f64>>,
}

/// Dev accuracy per rollout of every strategy and search (or seed) of a run folder, from its
/// rollouts.csv (either command's): one group per strategy, in order of first appearance.
pub fn accuracies(dir: &Path) -> Result<Vec<Group>> {
    let path = dir.join("rollouts.csv");
    let (header, rows) =
        rows::read(&path).map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?;
    let column = |name: &str| header.iter().position(|h| h == name);
    let Some(acc) = column("accuracy") else {
        usage_bail!("{} has no accuracy column", path.display())
    };
    let (strategy, run) = (column("strategy"), column("search").or(column("seed")));
    let mut groups: Vec<Group> = Vec::new();
    let mut runs: Vec<Vec<String>> = Vec::new(); // the run keys of each group, in order
    for (i, row) in rows.iter().enumerate() {
        let cell = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").to_string();
        let a: f64 = row.get(acc).and_then(|v| v.parse().ok()).ok_or_else(|| {
            UsageError::new(format!("{} line {}: bad accuracy", path.display(), i + 2))
        })?;
        let name = cell(strategy);
        let g = match groups.iter().position(|g| g.strategy == name) {
            Some(g) => g,
            None => {
                groups.push(Group {
                    strategy: name,
                    per_run: Vec::new(),
                });
                runs.push(Vec::new());
                groups.len() - 1
            }
        };
        let key = cell(run);
        let r = match runs[g].iter().position(|k| *k == key) {
            Some(r) => r,
            None => {
                runs[g].push(key);
                groups[g].per_run.push(Vec::new());
                runs[g].len() - 1
            }
        };
        groups[g].per_run[r].push(a);
    }
    if groups.is_empty() {
        usage_bail!("{} has no rollouts", path.display());
    }
    Ok(groups)
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
        // A folder with several strategies (choice-list) gives one curve per strategy.
        for group in accuracies(Path::new(dir))? {
            let label = match group.strategy.as_str() {
                "" => label.to_string(),
                strategy => format!("{label} {strategy}"),
            };
            curves.push(curve(&label, &group.per_run, args.window as usize));
        }
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

    #[test]
    fn a_choice_list_folder_gives_one_group_per_strategy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rollouts.csv"),
            "strategy,seed,evaluation,configuration,accuracy\n\
             random,0,1,\"{\"\"a\"\": 1}\",0.5\n\
             random,1,1,{},0.6\n\
             evolution,0,1,{},0.7\n\
             random,0,2,{},0.8\n",
        )
        .unwrap();
        let groups = accuracies(dir.path()).unwrap();
        let got: Vec<(&str, &Vec<Vec<f64>>)> = groups
            .iter()
            .map(|g| (g.strategy.as_str(), &g.per_run))
            .collect();
        assert_eq!(
            got,
            vec![
                ("random", &vec![vec![0.5, 0.8], vec![0.6]]),
                ("evolution", &vec![vec![0.7]]),
            ]
        );
    }
}
