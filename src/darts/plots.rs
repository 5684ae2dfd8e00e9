//! The figures of a DARTS search: each edge's softmax weights over the epochs (alphas.png) and
//! the derived cells drawn as graphs, nodes as boxes and edges labelled with their operation,
//! as the DARTS paper (Liu, Simonyan & Yang 2019) draws its cells (normal.png, reduce.png).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::genotype::CellGenes;
use super::ops::Primitive;
use crate::output::plot::{register_font, FONT, PALETTE};

/// Colour of primitive `k`.
fn colour(k: usize) -> RGBColor {
    const EXTRA: [RGBColor; 2] = [RGBColor(127, 127, 127), RGBColor(23, 190, 207)];
    if k < PALETTE.len() {
        PALETTE[k]
    } else {
        EXTRA[(k - PALETTE.len()) % EXTRA.len()]
    }
}

/// alphas.png: one panel per edge (normal cell, then reduction cell), a line per primitive.
/// `history[epoch][kind][edge][primitive]` are softmax weights; `edges` the (node, input) pairs.
pub fn alphas(
    path: &Path,
    history: &[Vec<Vec<Vec<f64>>>],
    primitives: &[Primitive],
    edges: &[(usize, usize)],
) -> Result<()> {
    register_font();
    let kinds = history.first().map(|h| h.len()).unwrap_or(0);
    if kinds == 0 {
        return Ok(());
    }
    let panels = kinds * edges.len();
    let cols = edges.len().clamp(1, 7);
    let rows = panels.div_ceil(cols);
    let (w, h) = (cols as u32 * 220, rows as u32 * 170 + 70);
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (legend, body) = root.split_vertically(70);
        for (k, p) in primitives.iter().enumerate() {
            let x = 10 + (k as i32 % 4) * (w as i32 / 4);
            let y = 8 + (k as i32 / 4) * 28;
            legend
                .draw(&Rectangle::new(
                    [(x, y + 4), (x + 22, y + 14)],
                    colour(k).filled(),
                ))
                .map_err(|e| e.to_string())?;
            legend
                .draw(&Text::new(p.name(), (x + 28, y), (FONT, 16)))
                .map_err(|e| e.to_string())?;
        }
        let epochs = history.len().max(2) as f64;
        let top = history
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .copied()
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.05;
        let areas = body.split_evenly((rows, cols));
        for kind in 0..kinds {
            for (e, (node, input)) in edges.iter().enumerate() {
                let area = &areas[kind * edges.len() + e];
                let cell = if kind == 0 { "normal" } else { "reduce" };
                let mut chart = ChartBuilder::on(area)
                    .caption(format!("{cell}: {input} -> {}", node + 2), (FONT, 14))
                    .margin(4)
                    .x_label_area_size(18)
                    .y_label_area_size(34)
                    .build_cartesian_2d(1.0..epochs, 0.0..top)
                    .map_err(|e| e.to_string())?;
                chart
                    .configure_mesh()
                    .light_line_style(WHITE)
                    .label_style((FONT, 10))
                    .x_labels(3)
                    .y_labels(3)
                    .draw()
                    .map_err(|e| e.to_string())?;
                for k in 0..primitives.len() {
                    let series = history
                        .iter()
                        .enumerate()
                        .map(|(t, h)| ((t + 1) as f64, h[kind][e][k]));
                    chart
                        .draw_series(LineSeries::new(series, colour(k).stroke_width(2)))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}

/// A cell as a graph: the inputs c_{k-2} and c_{k-1} on the left, the intermediate nodes in
/// the middle, the output c_{k} (their concatenation) on the right; each chosen edge an
/// arrow labelled with its operation.
pub fn cell(path: &Path, genes: &CellGenes, title: &str) -> Result<()> {
    register_font();
    let n = genes.len();
    let (w, h) = (260 + 200 * n as i32 + 160, 520);
    let pos = |node: usize| -> (i32, i32) {
        match node {
            0 => (70, 130),
            1 => (70, 390),
            i => {
                let k = (i - 2) as i32;
                (260 + 200 * k, if k % 2 == 0 { 170 } else { 350 })
            }
        }
    };
    let out = (w - 90, h / 2);
    let label = |node: usize| match node {
        0 => "c_{k-2}".to_string(),
        1 => "c_{k-1}".to_string(),
        i => (i - 2).to_string(),
    };
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (w as u32, h as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        root.draw(&Text::new(title.to_string(), (12, 10), (FONT, 22)))
            .map_err(|e| e.to_string())?;
        // From the edge of one box to the edge of the other (boxes are 40 wide a side).
        let ends = |from: (i32, i32), to: (i32, i32)| {
            let (dx, dy) = ((to.0 - from.0) as f64, (to.1 - from.1) as f64);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (ux, uy) = (dx / len, dy / len);
            let start = (from.0 + (ux * 45.0) as i32, from.1 + (uy * 25.0) as i32);
            let end = (to.0 - (ux * 45.0) as i32, to.1 - (uy * 25.0) as i32);
            (start, end, ux, uy)
        };
        let arrow = |from: (i32, i32), to: (i32, i32), colour: RGBColor| {
            let (start, end, ux, uy) = ends(from, to);
            let head = |s: f64| {
                (
                    end.0 - (ux * 12.0 - uy * 6.0 * s) as i32,
                    end.1 - (uy * 12.0 + ux * 6.0 * s) as i32,
                )
            };
            root.draw(&PathElement::new(vec![start, end], colour.stroke_width(2)))?;
            root.draw(&Polygon::new(
                vec![end, head(1.0), head(-1.0)],
                colour.filled(),
            ))
        };
        // A label in the arrow's colour on a white box over its line, drawn after every line
        // so no line crosses it; a node's first input labelled 3/5 of the way, its second 4/5,
        // so two edges into one node keep their labels apart.
        let label_edge = |from: (i32, i32), to: (i32, i32), colour: RGBColor, k: usize, t: &str| {
            let (start, end, _, _) = ends(from, to);
            let style = (FONT, 15).into_font().color(&colour);
            let (tw, th) = root.estimate_text_size(t, &style).unwrap_or((60, 15));
            let (tw, th) = (tw as i32, th as i32);
            let f = if k % 2 == 0 { (3, 5) } else { (4, 5) };
            let at = (
                start.0 + (end.0 - start.0) * f.0 / f.1 - tw / 2,
                start.1 + (end.1 - start.1) * f.0 / f.1 - th / 2,
            );
            root.draw(&Rectangle::new(
                [(at.0 - 3, at.1 - 2), (at.0 + tw + 3, at.1 + th + 2)],
                WHITE.filled(),
            ))?;
            root.draw(&Text::new(t.to_string(), at, style))
        };
        let drawn = (|| {
            for (i, edges) in genes.iter().enumerate() {
                for (k, (_, j)) in edges.iter().enumerate() {
                    arrow(pos(*j), pos(i + 2), colour(k))?;
                }
                arrow(pos(i + 2), out, RGBColor(160, 160, 160))?;
            }
            for (i, edges) in genes.iter().enumerate() {
                for (k, (p, j)) in edges.iter().enumerate() {
                    label_edge(pos(*j), pos(i + 2), colour(k), k, p.short())?;
                }
            }
            Ok(())
        })();
        drawn.map_err(|e: DrawingAreaErrorKind<_>| e.to_string())?;
        let boxes = (0..n + 2)
            .map(|i| {
                (
                    pos(i),
                    label(i),
                    if i < 2 {
                        RGBColor(170, 220, 170)
                    } else {
                        RGBColor(170, 200, 240)
                    },
                )
            })
            .chain(std::iter::once((
                out,
                "c_{k}".to_string(),
                RGBColor(250, 220, 150),
            )));
        for ((x, y), text, fill) in boxes {
            root.draw(&Rectangle::new(
                [(x - 42, y - 22), (x + 42, y + 22)],
                fill.filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Rectangle::new(
                [(x - 42, y - 22), (x + 42, y + 22)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Text::new(text, (x - 30, y - 9), (FONT, 17)))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}
