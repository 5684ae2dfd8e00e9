//! `proxies.png`: one scatter panel per proxy, each class of cells placed by its score's rank
//! (as a fraction, failed scores at 0) and its trained test accuracy, Spearman's rho in the
//! panel's title, the way Abdelfattah et al. 2021 picture their proxies.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::proxies::{Correlation, ScoredCell};
use crate::output::plot::{register_font, FONT, PALETTE};
use crate::proxies::correlation::ranks;

/// Draws the panels of `correlations`' proxies at `path`.
pub fn scatter(scored: &[ScoredCell], correlations: &[Correlation], path: &Path) -> Result<()> {
    register_font();
    let tests: Vec<f64> = scored.iter().map(|s| 100.0 * s.test_accuracy).collect();
    let lo = tests.iter().copied().fold(f64::INFINITY, f64::min).floor();
    let hi = tests
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .max(lo + 1.0);
    let n = scored.len().max(2) as f64;
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (1600, 800)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((2, 4));
        for (c, area) in correlations.iter().zip(panels.iter()) {
            let scores: Vec<f64> = scored.iter().map(|s| s.get(&c.proxy)).collect();
            let r = ranks(&scores);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{}: rho {:.2}", c.proxy, c.spearman), (FONT, 20))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(0.0..1.0, lo..hi)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("score rank (fraction)")
                .y_desc("test accuracy (%)")
                .label_style((FONT, 12))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(r.iter().zip(&tests).map(|(&rank, &t)| {
                    Circle::new(
                        ((rank - 1.0) / (n - 1.0), t),
                        1,
                        PALETTE[0].mix(0.35).filled(),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}
