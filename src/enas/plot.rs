//! The figures of `archsearch enas`, drawn with plotters and the bundled DejaVu Sans:
//! accuracy.png (the controller's reward and its moving average over controller steps above,
//! the shared weights' training loss per epoch below) and architecture.png (the found network
//! as a row of layers labelled with their operations, skip connections as arcs above).

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::space::{Arch, Space};

const FONT: &str = "enas-sans";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

fn moving_average(v: &[f64], window: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= window {
            sum -= v[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

/// accuracy.png: rewards per controller step (points and moving average), loss per epoch.
pub fn accuracy(path: &Path, rewards: &[f64], losses: &[f64], window: usize) -> Result<()> {
    register_font();
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (1000, 800)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(480);
        let n = rewards.len().max(2) as f64;
        let lo = rewards.iter().copied().fold(1.0f64, f64::min).min(0.0);
        let hi = rewards.iter().copied().fold(0.0f64, f64::max).max(1.0);
        let mut chart = ChartBuilder::on(&top)
            .caption(
                "Controller reward (dev accuracy with the shared weights)",
                (FONT, 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..n, lo..hi + 0.02)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("controller step")
            .x_label_formatter(&|x| format!("{}", *x as i64))
            .y_desc("reward")
            .light_line_style(WHITE)
            .label_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        chart
            .draw_series(
                rewards
                    .iter()
                    .enumerate()
                    .map(|(i, &r)| Circle::new(((i + 1) as f64, r), 2, blue.mix(0.25).filled())),
            )
            .map_err(|e| e.to_string())?
            .label("reward")
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, blue.filled()));
        let ma = moving_average(rewards, window);
        chart
            .draw_series(LineSeries::new(
                ma.iter().enumerate().map(|(i, &r)| ((i + 1) as f64, r)),
                orange.stroke_width(3),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("moving average of {window}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(3))
            });
        chart
            .configure_series_labels()
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        let finite: Vec<f64> = losses.iter().copied().filter(|l| l.is_finite()).collect();
        let lmax = finite.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.05;
        let m = losses.len().max(2) as f64;
        let mut chart = ChartBuilder::on(&bottom)
            .caption("Shared-weight training loss per epoch", (FONT, 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..m, 0.0..lmax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_label_formatter(&|x| format!("{}", *x as i64))
            .y_desc("cross-entropy")
            .light_line_style(WHITE)
            .label_style((FONT, 15))
            .draw()
            .map_err(|e| e.to_string())?;
        let green = RGBColor(44, 160, 44);
        chart
            .draw_series(LineSeries::new(
                losses
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.is_finite())
                    .map(|(i, &l)| ((i + 1) as f64, l)),
                green.stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}

/// architecture.png: input, the layers with their operations, and the head in a row; the
/// chain as arrows, every skip connection as an arc above.
pub fn architecture(path: &Path, space: &Space, arch: &Arch, title: &str) -> Result<()> {
    register_font();
    let n = arch.len();
    let box_w = 150i32;
    let gap = 40i32;
    let width = (n as i32 + 2) * (box_w + gap) + gap;
    let height = 420i32;
    let base_y = 300i32;
    let box_h = 70i32;
    let result = (|| -> Result<(), String> {
        let root = BitMapBackend::new(path, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        root.draw(&Text::new(
            title.to_string(),
            (gap, 20),
            (FONT, 22).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        let x_of = |i: usize| gap + i as i32 * (box_w + gap);
        let mut labels = vec![format!(
            "input {}",
            space
                .input_sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("x")
        )];
        for row in arch {
            labels.push(
                space
                    .operations
                    .get(row[0] as usize)
                    .map_or_else(|| format!("op {}", row[0]), |o| o.label()),
            );
        }
        labels.push("pool + linear".to_string());
        let colors = [
            RGBColor(220, 230, 242),
            RGBColor(253, 228, 200),
            RGBColor(214, 236, 214),
        ];
        for (i, label) in labels.iter().enumerate() {
            let x = x_of(i);
            let color = if i == 0 || i == labels.len() - 1 {
                colors[2]
            } else if label.contains("pool") {
                colors[1]
            } else {
                colors[0]
            };
            root.draw(&Rectangle::new(
                [(x, base_y - box_h / 2), (x + box_w, base_y + box_h / 2)],
                color.filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Rectangle::new(
                [(x, base_y - box_h / 2), (x + box_w, base_y + box_h / 2)],
                BLACK.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
            if i > 0 && i < labels.len() - 1 {
                root.draw(&Text::new(
                    format!("layer {i}"),
                    (x + 8, base_y - box_h / 2 + 6),
                    (FONT, 14).into_font(),
                ))
                .map_err(|e| e.to_string())?;
            }
            root.draw(&Text::new(
                label.clone(),
                (x + 8, base_y + 2),
                (FONT, 18).into_font(),
            ))
            .map_err(|e| e.to_string())?;
            if i > 0 {
                let from = x_of(i - 1) + box_w;
                root.draw(&PathElement::new(
                    vec![(from, base_y), (x - 4, base_y)],
                    BLACK.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
                root.draw(&Polygon::new(
                    vec![(x, base_y), (x - 9, base_y - 5), (x - 9, base_y + 5)],
                    BLACK.filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        let red = RGBColor(214, 39, 40);
        for (i, row) in arch.iter().enumerate() {
            let to = i + 1;
            for (k, &flag) in row[1..].iter().enumerate() {
                if flag != 1 {
                    continue;
                }
                let (x0, x1) = (x_of(k) + box_w / 2, x_of(to) + box_w / 2);
                let span = (to - k) as f64;
                let rise = (40.0 + 35.0 * span).min((base_y - box_h / 2 - 40) as f64);
                let top = (base_y - box_h / 2) as f64;
                let points: Vec<(i32, i32)> = (0..=40)
                    .map(|s| {
                        let t = s as f64 / 40.0;
                        let x = x0 as f64 + (x1 - x0) as f64 * t;
                        let y = top - rise * 4.0 * t * (1.0 - t);
                        (x as i32, y as i32)
                    })
                    .collect();
                root.draw(&PathElement::new(points, red.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                let tip = (x1, base_y - box_h / 2);
                root.draw(&Polygon::new(
                    vec![tip, (tip.0 - 5, tip.1 - 10), (tip.0 + 5, tip.1 - 10)],
                    red.filled(),
                ))
                .map_err(|e| e.to_string())?;
            }
        }
        root.draw(&Text::new(
            "black: layer i-1 feeds layer i; red arcs: skip connections (inputs are zero-padded and concatenated)".to_string(),
            (gap, height - 40),
            (FONT, 15).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })();
    result.map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}
