//! The figures of a search (accuracy.png, halfmoon.png, boundary.png) and curves with bands,
//! drawn by plotters with a bundled DejaVu Sans so they render on machines without fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::data::{Dataset, Splits};
use crate::stats::moving_average;

pub(crate) const FONT: &str = "sans-serif";
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;
/// Colours of classes and curves, in order.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            unreachable!("the bundled font is a valid TrueType file");
        }
    });
}

/// A chart of plotters over f64 axes on a PNG.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame every figure shares.
struct Frame<'a> {
    size: (u32, u32),
    title: &'a str,
    x: (f64, f64),
    y: (f64, f64),
    x_label: &'a str,
    y_label: &'a str,
    /// Label the x axis with whole numbers (rollouts, evaluations).
    whole_x: bool,
    legend: SeriesLabelPosition,
    /// Caption font size.
    caption: u32,
}

/// Draws a frame (title, axes, light mesh), lets `draw` add the series, then the legend.
fn figure(
    path: &Path,
    frame: Frame,
    draw: impl FnOnce(&mut Chart) -> Result<(), String>,
) -> Result<()> {
    register_font();
    // plotters never returns from laying out an infinite or NaN axis: refuse those up front.
    let drawable = |(low, high): (f64, f64)| low.is_finite() && high.is_finite() && low < high;
    if !drawable(frame.x) || !drawable(frame.y) {
        return Err(anyhow!(
            "cannot draw {}: the values span no finite range (x {:?}, y {:?})",
            path.display(),
            frame.x,
            frame.y
        ));
    }
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, frame.size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(frame.title, (FONT, frame.caption))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(frame.x.0..frame.x.1, frame.y.0..frame.y.1)
            .map_err(|e| e.to_string())?;
        let whole = |x: &f64| format!("{}", *x as i64);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(frame.x_label)
            .y_desc(frame.y_label)
            .light_line_style(WHITE)
            .label_style((FONT, 15));
        if frame.whole_x {
            mesh.x_label_formatter(&whole);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        draw(&mut chart)?;
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(frame.legend)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}

/// A legend entry that is a short line.
pub(crate) fn line_legend(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// Points 1, 2, ... of a series.
fn indexed(values: &[f64]) -> impl Iterator<Item = (f64, f64)> + '_ {
    values.iter().enumerate().map(|(x, &y)| ((x + 1) as f64, y))
}

/// One curve over x = 1, 2, ...: a line, and optionally a shaded band between `low` and `high`.
pub struct Curve {
    pub label: String,
    pub values: Vec<f64>,
    pub band: Option<(Vec<f64>, Vec<f64>)>,
}

/// The curve of one run: mean of its searches' moving averages, band from min to max.
pub fn mean_curve(label: &str, per_search: &[Vec<f64>], window: usize) -> Curve {
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

/// Lines with optional bands, for comparing runs (searches, presets, strategies).
pub fn curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    curves: &[Curve],
    y_range: (f64, f64),
) -> Result<()> {
    let n = curves
        .iter()
        .map(|c| c.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let frame = Frame {
        size: (WIDTH, HEIGHT),
        title,
        x: (1.0, n as f64),
        y: y_range,
        x_label,
        y_label,
        whole_x: true,
        legend: SeriesLabelPosition::LowerRight,
        caption: 22,
    };
    figure(path, frame, |chart| {
        for (i, c) in curves.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if let Some((low, high)) = &c.band {
                let mut outline: Vec<(f64, f64)> = indexed(low).collect();
                outline.extend(indexed(high).collect::<Vec<_>>().into_iter().rev());
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(0.18).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            chart
                .draw_series(LineSeries::new(indexed(&c.values), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(c.label.clone())
                .legend(line_legend(color));
        }
        Ok(())
    })
}

/// accuracy.png for one search: every rollout's dev accuracy as a faint point, its moving
/// average, and the moving average of the reward (penalties included) as a separate line.
pub fn accuracy(path: &Path, accuracies: &[f64], rewards: &[f64], window: usize) -> Result<()> {
    let acc_ma = moving_average(accuracies, window);
    let reward_ma = moving_average(rewards, window);
    let y_min = reward_ma.iter().copied().fold(0.0f64, f64::min).max(-1.2) - 0.02;
    let frame = Frame {
        size: (WIDTH, HEIGHT),
        title: "Architecture search: dev accuracy of every sampled child",
        x: (1.0, accuracies.len().max(2) as f64),
        y: (y_min, 1.02),
        x_label: "rollout",
        y_label: "dev accuracy / reward",
        whole_x: true,
        legend: SeriesLabelPosition::LowerRight,
        caption: 22,
    };
    let [blue, orange, ..] = PALETTE;
    figure(path, frame, |chart| {
        chart
            .draw_series(indexed(accuracies).map(|p| Circle::new(p, 2, blue.mix(0.15).filled())))
            .map_err(|e| e.to_string())?
            .label("dev accuracy of each child")
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, blue.mix(0.4).filled()));
        chart
            .draw_series(LineSeries::new(indexed(&acc_ma), blue.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("dev accuracy, moving average of {window}"))
            .legend(line_legend(blue));
        chart
            .draw_series(LineSeries::new(indexed(&reward_ma), orange.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!(
                "reward (accuracy + shaping), moving average of {window}"
            ))
            .legend(line_legend(orange));
        Ok(())
    })
}

/// The x and y ranges of 2-D points, padded by half a unit.
fn bounds(parts: &[&Dataset]) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for d in parts {
        for i in 0..d.len() {
            let p = d.point(i);
            x0 = x0.min(p[0] as f64);
            x1 = x1.max(p[0] as f64);
            y0 = y0.min(p[1] as f64);
            y1 = y1.max(p[1] as f64);
        }
    }
    ((x0 - 0.5, x1 + 0.5), (y0 - 0.5, y1 + 0.5))
}

/// The frame of the two figures in the data's plane.
fn plane<'a>(title: &'a str, splits: &Splits) -> Frame<'a> {
    let (x, y) = bounds(&[&splits.train, &splits.dev, &splits.test]);
    Frame {
        size: (800, 640),
        title,
        x,
        y,
        x_label: "x1",
        y_label: "x2",
        whole_x: false,
        legend: SeriesLabelPosition::UpperRight,
        caption: 16,
    }
}

fn at(d: &Dataset, i: usize) -> (f64, f64) {
    (d.point(i)[0] as f64, d.point(i)[1] as f64)
}

fn class_colour(label: i64) -> RGBColor {
    PALETTE[label as usize % PALETTE.len()]
}

/// halfmoon.png: the points coloured by class; train as dots, dev as triangles, test as crosses.
pub fn data(path: &Path, splits: &Splits) -> Result<()> {
    figure(
        path,
        plane("The data: colour is the class, shape is the split", splits),
        |chart| {
            let (train, dev, test) = (&splits.train, &splits.dev, &splits.test);
            chart
                .draw_series((0..train.len()).map(|i| {
                    Circle::new(
                        at(train, i),
                        3,
                        class_colour(train.labels[i]).mix(0.6).filled(),
                    )
                }))
                .map_err(|e| e.to_string())?
                .label(format!("train ({} points)", train.len()))
                .legend(|(x, y)| Circle::new((x + 10, y), 4, BLACK.mix(0.6).filled()));
            chart
                .draw_series((0..dev.len()).map(|i| {
                    TriangleMarker::new(at(dev, i), 6, class_colour(dev.labels[i]).filled())
                }))
                .map_err(|e| e.to_string())?
                .label(format!("dev ({} points)", dev.len()))
                .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
            chart
                .draw_series((0..test.len()).map(|i| {
                    Cross::new(at(test, i), 5, class_colour(test.labels[i]).stroke_width(2))
                }))
                .map_err(|e| e.to_string())?
                .label(format!("test ({} points)", test.len()))
                .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
            Ok(())
        },
    )
}

/// Cells per side of the decision-boundary grid.
const GRID: usize = 160;

/// boundary.png: the classifier's predicted class over the plane (light colours) with the test
/// points on top, misclassified ones circled. `predict` maps `[n * 2]` coordinates to classes.
pub fn boundary(
    path: &Path,
    title: &str,
    splits: &Splits,
    predict: &dyn Fn(&[f32]) -> Vec<i64>,
) -> Result<()> {
    let frame = plane(title, splits);
    let ((x0, x1), (y0, y1)) = (frame.x, frame.y);
    let (dx, dy) = ((x1 - x0) / GRID as f64, (y1 - y0) / GRID as f64);
    let mut grid = Vec::with_capacity(GRID * GRID * 2);
    for j in 0..GRID {
        for i in 0..GRID {
            grid.push((x0 + (i as f64 + 0.5) * dx) as f32);
            grid.push((y0 + (j as f64 + 0.5) * dy) as f32);
        }
    }
    let classes = predict(&grid);
    let test = &splits.test;
    let test_pred = predict(&test.features);
    let wrong: Vec<usize> = (0..test.len())
        .filter(|&i| test_pred[i] != test.labels[i])
        .collect();
    figure(path, frame, |chart| {
        chart
            .draw_series((0..GRID * GRID).map(|k| {
                let (cx, cy) = (x0 + (k % GRID) as f64 * dx, y0 + (k / GRID) as f64 * dy);
                Rectangle::new(
                    [(cx, cy), (cx + dx, cy + dy)],
                    class_colour(classes[k]).mix(0.25).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                (0..test.len())
                    .map(|i| Circle::new(at(test, i), 4, class_colour(test.labels[i]).filled())),
            )
            .map_err(|e| e.to_string())?
            .label("test point (colour: true class)")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLACK.filled()));
        chart
            .draw_series(
                wrong
                    .iter()
                    .map(|&i| Circle::new(at(test, i), 8, BLACK.stroke_width(2))),
            )
            .map_err(|e| e.to_string())?
            .label(format!("misclassified ({} of {})", wrong.len(), test.len()))
            .legend(|(x, y)| Circle::new((x + 10, y), 6, BLACK.stroke_width(2)));
        Ok(())
    })
}

/// boundary.png of a trained child (2-D data only).
pub fn child_boundary(
    path: &Path,
    title: &str,
    splits: &Splits,
    child: &crate::nn::child::Child,
    device: tch::Device,
) -> Result<()> {
    let predict = |xy: &[f32]| -> Vec<i64> {
        let x = tch::Tensor::from_slice(xy).view([-1, 2]).to_device(device);
        Vec::try_from(
            child
                .forward(&x)
                .argmax(1, false)
                .to_device(tch::Device::Cpu),
        )
        .unwrap_or_default()
    };
    boundary(path, title, splits, &predict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{make_moons, split};

    fn is_png(path: &Path) -> bool {
        let bytes = std::fs::read(path).unwrap();
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG")
    }

    #[test]
    fn every_figure_renders_to_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let splits = split(&make_moons(200, 0.2, 0), 0.7, 0.1);
        let acc: Vec<f64> = (0..300).map(|i| 0.5 + 0.45 * (i as f64 / 300.0)).collect();
        let rew: Vec<f64> = acc.iter().map(|a| a - 0.2).collect();
        accuracy(&dir.path().join("a.png"), &acc, &rew, 20).unwrap();
        data(&dir.path().join("d.png"), &splits).unwrap();
        // A linear rule as the classifier.
        let predict = |xy: &[f32]| xy.chunks(2).map(|p| i64::from(p[1] < 0.25)).collect();
        boundary(&dir.path().join("b.png"), "x2 < 0.25", &splits, &predict).unwrap();
        let c = Curve {
            label: "mean".into(),
            values: acc.clone(),
            band: Some((rew.clone(), acc.clone())),
        };
        curves(&dir.path().join("c.png"), "t", "x", "y", &[c], (0.0, 1.0)).unwrap();
        for f in ["a.png", "d.png", "b.png", "c.png"] {
            assert!(is_png(&dir.path().join(f)), "{f}");
        }
        // Points beyond the f32 range: an error, not a layout that never ends.
        let mut far = splits.clone();
        far.train.features[0] = f32::INFINITY;
        assert!(data(&dir.path().join("far.png"), &far).is_err());
        let nan = Curve {
            label: "nan".into(),
            values: vec![0.5, 0.6],
            band: None,
        };
        assert!(curves(
            &dir.path().join("n.png"),
            "t",
            "x",
            "y",
            &[nan],
            (f64::NAN, 1.0)
        )
        .is_err());
    }
}
