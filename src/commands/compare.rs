//! `archsearch compare`: the learning curves of several run folders in one figure, each as the
//! mean over its searches of the dev accuracy's moving average, with a min-to-max band.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use crate::config::MOVING_AVERAGE;
use crate::error::UsageError;
use crate::output::plot::{self, mean_curve};
use crate::output::record;
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

/// The dev accuracies of one strategy of a run folder: one list per search (per seed), in the
/// order of the rows.
pub struct Group {
    pub strategy: String,
    pub per_run: Vec<Vec<f64>>,
}

/// Dev accuracy per rollout of every strategy and search of a run folder, read from its
/// rollouts.csv (any command's, any version's): one group per strategy, in order of first
/// appearance.
pub fn accuracies(dir: &Path) -> Result<Vec<Group>> {
    let path = dir.join("rollouts.csv");
    let records =
        record::read(&path).map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?;
    let mut groups: Vec<Group> = Vec::new();
    let mut searches: Vec<Vec<usize>> = Vec::new(); // the search indices of each group
    for r in &records {
        let g = match groups.iter().position(|g| g.strategy == r.strategy) {
            Some(g) => g,
            None => {
                groups.push(Group {
                    strategy: r.strategy.clone(),
                    per_run: Vec::new(),
                });
                searches.push(Vec::new());
                groups.len() - 1
            }
        };
        let k = match searches[g].iter().position(|&s| s == r.search) {
            Some(k) => k,
            None => {
                searches[g].push(r.search);
                groups[g].per_run.push(Vec::new());
                searches[g].len() - 1
            }
        };
        groups[g].per_run[k].push(r.accuracy);
    }
    if groups.is_empty() {
        usage_bail!("{} has no rollouts", path.display());
    }
    Ok(groups)
}

pub fn run(args: &CompareArgs) -> Result<()> {
    crate::outdir::check_file_out(&args.out, "png", "the figure")?;
    let mut curves = Vec::new();
    for spec in &args.runs {
        let Some((label, dir)) = spec.rsplit_once('=') else {
            usage_bail!("`{spec}`: expected LABEL=DIR")
        };
        // A folder with several strategies (choice-list) gives one curve per strategy.
        let groups = accuracies(Path::new(dir))?;
        let several = groups.len() > 1;
        for group in groups {
            let label = match several {
                false => label.to_string(),
                true => format!("{label} {}", group.strategy),
            };
            curves.push(mean_curve(&label, &group.per_run, args.window as usize));
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
        let c = mean_curve("x", &[vec![1.0, 1.0], vec![0.0, 0.5]], 1);
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
