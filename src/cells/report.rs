//! What `cells search` leaves besides rollouts.csv: summary.json (per optimiser, the final
//! regret and the incumbent's test accuracy, mean and standard error over seeds, and the real
//! seconds per suggestion) and regret.png (regret against simulated seconds, mean and a
//! standard-error band over seeds, one colour per optimiser, log-scaled axes), as NAS-Bench-201
//! reports its optimisers.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::Serialize;

use super::run::{Checkpoint, Outcome, Row, COMMAND};
use super::table::{Table, TableMeta};
use crate::output::plot::{register_font, FONT, PALETTE};

/// One optimiser's line of the summary.
#[derive(Clone, Debug, Serialize)]
pub struct OptimiserSummary {
    pub name: String,
    pub searches: usize,
    pub queries_mean: f64,
    pub final_regret_mean: f64,
    pub final_regret_se: f64,
    pub final_test_mean: f64,
    pub final_test_se: f64,
    /// Real seconds of the strategy's ask and tell per proposal.
    pub seconds_per_suggestion: f64,
    /// Real seconds of its searches, summed (they run side by side, so the run took less).
    pub wall_seconds: f64,
}

/// summary.json.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub command: String,
    pub settings: super::run::SearchSpec,
    pub table: TableMeta,
    pub table_entries: usize,
    pub optimum_cell: String,
    pub optimum_test: f64,
    pub interrupted: bool,
    pub searches_done: usize,
    /// Real seconds of this invocation (a resumed run counts only its own).
    pub wall_seconds: f64,
    pub optimisers: Vec<OptimiserSummary>,
}

/// Mean and standard error of the mean (0 for one value).
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let (mean, sd) = crate::stats::mean_sd(values);
    (mean, sd / (values.len().max(1) as f64).sqrt())
}

/// The per-optimiser lines, in the run's order.
pub fn summarise(optimisers: &[String], outcomes: &[Outcome]) -> Vec<OptimiserSummary> {
    optimisers
        .iter()
        .filter_map(|name| {
            let mine: Vec<&Outcome> = outcomes.iter().filter(|o| &o.strategy == name).collect();
            if mine.is_empty() {
                return None;
            }
            let regret: Vec<f64> = mine.iter().map(|o| o.final_regret).collect();
            let test: Vec<f64> = mine.iter().map(|o| o.final_test).collect();
            let queries: usize = mine.iter().map(|o| o.queries).sum();
            let (final_regret_mean, final_regret_se) = mean_se(&regret);
            let (final_test_mean, final_test_se) = mean_se(&test);
            Some(OptimiserSummary {
                name: name.clone(),
                searches: mine.len(),
                queries_mean: queries as f64 / mine.len() as f64,
                final_regret_mean,
                final_regret_se,
                final_test_mean,
                final_test_se,
                seconds_per_suggestion: mine.iter().map(|o| o.suggest_seconds).sum::<f64>()
                    / queries.max(1) as f64,
                wall_seconds: mine.iter().map(|o| o.wall_seconds).sum(),
            })
        })
        .collect()
}

/// Writes summary.json and regret.png for the searches `checkpoint` holds.
pub fn write(
    dir: &Path,
    table: &Table,
    checkpoint: &Checkpoint,
    wall_seconds: f64,
    interrupted: bool,
) -> Result<Summary> {
    let names: Vec<String> = checkpoint
        .spec
        .optimisers
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    let (optimum, optimum_test) = table.best();
    let summary = Summary {
        command: COMMAND.into(),
        settings: checkpoint.spec.clone(),
        table: table.meta.clone(),
        table_entries: table.entries.len(),
        optimum_cell: optimum.to_string(),
        optimum_test,
        interrupted,
        searches_done: checkpoint.outcomes.len(),
        wall_seconds,
        optimisers: summarise(&names, &checkpoint.outcomes),
    };
    crate::outdir::write_json_atomically(&dir.join("summary.json"), &summary)?;
    if !checkpoint.outcomes.is_empty() {
        let curves = read_curves(&dir.join("rollouts.csv"))?;
        figure(
            &dir.join("regret.png"),
            &names,
            &curves,
            checkpoint.spec.budget_seconds,
        )?;
    }
    Ok(summary)
}

/// Prints the summary's table.
pub fn print(summary: &Summary, dir: &Path) {
    println!(
        "{:<10} {:>8} {:>9} {:>22} {:>22} {:>12}",
        "optimiser", "searches", "queries", "final regret (se)", "final test (se)", "s/suggest"
    );
    for o in &summary.optimisers {
        println!(
            "{:<10} {:>8} {:>9.1} {:>12.5} ({:.5}) {:>12.5} ({:.5}) {:>12.2e}",
            o.name,
            o.searches,
            o.queries_mean,
            o.final_regret_mean,
            o.final_regret_se,
            o.final_test_mean,
            o.final_test_se,
            o.seconds_per_suggestion
        );
    }
    println!(
        "table optimum {:.5} ({}); wrote {}",
        summary.optimum_test,
        summary.optimum_cell,
        dir.display()
    );
}

/// (simulated seconds, regret) after each query, per (optimiser, seed).
pub type Curves = BTreeMap<(String, u64), Vec<(f64, f64)>>;

/// The curves of rollouts.csv.
pub fn read_curves(path: &Path) -> Result<Curves> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut curves = Curves::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let row = row.with_context(|| format!("{} line {} is not a row", path.display(), i + 2))?;
        curves
            .entry((row.strategy, row.seed))
            .or_default()
            .push((row.seconds, row.regret));
    }
    Ok(curves)
}

/// Points of the grid of simulated seconds, log-spaced.
const GRID: usize = 200;

/// Regret of a curve at time `t`: that of its last query by then (None before its first).
fn at(curve: &[(f64, f64)], t: f64) -> Option<f64> {
    let n = curve.partition_point(|&(s, _)| s <= t);
    n.checked_sub(1).map(|i| curve[i].1)
}

/// Points (time, mean regret, standard error) of an optimiser's curve.
pub type Band = Vec<(f64, f64, f64)>;

/// An optimiser's mean regret and its standard error on the time grid, where every seed has
/// made a query.
pub fn band(curves: &[&Vec<(f64, f64)>], grid: &[f64]) -> Band {
    grid.iter()
        .filter_map(|&t| {
            let values: Option<Vec<f64>> = curves.iter().map(|c| at(c, t)).collect();
            let values = values?;
            let (mean, se) = mean_se(&values);
            Some((t, mean, se))
        })
        .collect()
}

/// regret.png.
pub fn figure(path: &Path, names: &[String], curves: &Curves, budget: f64) -> Result<()> {
    let start = curves
        .values()
        .filter_map(|c| c.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    if !(start.is_finite() && start > 0.0 && budget > start) {
        anyhow::bail!("cannot draw {}: no simulated time to span", path.display());
    }
    let grid: Vec<f64> = (0..GRID)
        .map(|i| start * (budget / start).powf(i as f64 / (GRID - 1) as f64))
        .collect();
    let bands: Vec<(String, Band)> = names
        .iter()
        .map(|name| {
            let mine: Vec<&Vec<(f64, f64)>> = curves
                .iter()
                .filter(|((s, _), _)| s == name)
                .map(|(_, c)| c)
                .collect();
            let n = mine.len();
            (
                format!("{name} ({n} seeds)"),
                if n == 0 {
                    Vec::new()
                } else {
                    band(&mine, &grid)
                },
            )
        })
        .collect();
    let top = bands
        .iter()
        .flat_map(|(_, b)| b.iter().map(|p| p.1 + p.2))
        .fold(0.0, f64::max);
    let positive_low = bands
        .iter()
        .flat_map(|(_, b)| b.iter().map(|p| p.1 - p.2))
        .filter(|&v| v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let high = if top > 0.0 { top * 1.5 } else { 1.0 };
    let low = if positive_low.is_finite() {
        (positive_low / 2.0).max(high * 1e-5)
    } else {
        high * 1e-3
    };
    let clamp = |v: f64| v.clamp(low, high);
    register_font();
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Regret against simulated training time (mean, band: standard error)",
                (FONT, 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((start..budget).log_scale(), (low..high).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("simulated seconds (log scale)")
            .y_desc(format!(
                "regret (log scale; below {low:.1e} drawn at the bottom)"
            ))
            .light_line_style(WHITE)
            .label_style((FONT, 15))
            // short tick labels (a log axis can land on 0.30000000000000004)
            .y_label_formatter(&|v| format!("{v:.3}"))
            .x_label_formatter(&|v| {
                if *v < 1.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.0}")
                }
            })
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (label, b)) in bands.iter().enumerate() {
            if b.is_empty() {
                continue;
            }
            let color = PALETTE[i % PALETTE.len()];
            let mut outline: Vec<(f64, f64)> = b.iter().map(|p| (p.0, clamp(p.1 - p.2))).collect();
            outline.extend(b.iter().rev().map(|p| (p.0, clamp(p.1 + p.2))));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.18).filled(),
                )))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    b.iter().map(|p| (p.0, clamp(p.1))),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label.clone())
                .legend(crate::output::plot::line_legend(color));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_steps_with_each_seeds_last_query() {
        let a = vec![(1.0, 0.5), (3.0, 0.2)];
        let b = vec![(2.0, 0.4), (4.0, 0.0)];
        let got = band(&[&a, &b], &[1.0, 2.0, 3.5, 4.0]);
        // At 1 s seed b has no query yet: the point is left out.
        let want = [(2.0, 0.45, 0.05), (3.5, 0.3, 0.1), (4.0, 0.1, 0.1)];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g.0 - w.0).abs() < 1e-12 && (g.1 - w.1).abs() < 1e-12 && (g.2 - w.2).abs() < 1e-12,
                "{got:?}"
            );
        }
    }

    #[test]
    fn mean_and_standard_error_by_hand() {
        // 1, 2, 3: mean 2, sd 1, se 1/sqrt 3.
        let (m, se) = mean_se(&[1.0, 2.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (se - 1.0 / 3f64.sqrt()).abs() < 1e-12);
    }
}
