//! `table.png`: how the tabulated cells spread, as NAS-Bench-201's paper pictures its table
//! (Dong & Yang 2020): the histogram of the classes' final test accuracy, and the test
//! accuracy after the shortest budget against the full one (how far a low fidelity ranks).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::table::Table;
use crate::output::plot::{register_font, FONT, PALETTE};

const BINS: usize = 40;

/// Draws `table.png` for `table` at `path`.
pub fn histogram(table: &Table, path: &Path) -> Result<()> {
    register_font();
    let full: Vec<f64> = table
        .entries
        .iter()
        .map(|e| 100.0 * table.mean_test(&e.cell))
        .collect();
    let first = table.meta.budgets[0];
    let low: Vec<f64> = table
        .entries
        .iter()
        .map(|e| {
            let n = e.runs.len() as f64;
            100.0
                * (0..e.runs.len())
                    .map(|s| table.query(&e.cell, first, s).test)
                    .sum::<f64>()
                / n
        })
        .collect();
    let lo = full
        .iter()
        .chain(&low)
        .copied()
        .fold(f64::INFINITY, f64::min)
        .floor();
    let hi = full
        .iter()
        .chain(&low)
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .max(lo + 1.0);
    let width = (hi - lo) / BINS as f64;
    let mut counts = vec![0usize; BINS];
    for &a in &full {
        counts[(((a - lo) / width) as usize).min(BINS - 1)] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64 * 1.1;
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(700);
        let mut chart = ChartBuilder::on(&left)
            .caption(
                format!(
                    "{} classes of cells on {}: final test accuracy",
                    full.len(),
                    table.meta.dataset
                ),
                (FONT, 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "test accuracy after {} epochs, mean over {} seeds (%)",
                table.meta.epochs, table.meta.seeds
            ))
            .y_desc("classes of cells")
            .label_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], PALETTE[0].filled())
            }))
            .map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&right)
            .caption(
                format!("{first} epoch(s) against {}", table.meta.epochs),
                (FONT, 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(format!("test accuracy after {first} epoch(s) (%)"))
            .y_desc(format!(
                "test accuracy after {} epochs (%)",
                table.meta.epochs
            ))
            .label_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                low.iter()
                    .zip(&full)
                    .map(|(&x, &y)| Circle::new((x, y), 2, PALETTE[1].mix(0.3).filled())),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}
