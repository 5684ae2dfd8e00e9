//! The learning-curve figures of a finished search: accuracy.png (dev accuracy and reward over
//! rollouts) and strategies.png (the best dev accuracy found so far), per search or strategy.

use std::path::Path;

use anyhow::Result;

use crate::output::plot;
use crate::output::record::Record;
use crate::stats::moving_average;

/// accuracy.png: one search as points and moving averages; several searches of one strategy as
/// mean and min-max band of accuracy and reward; several strategies as one accuracy curve per
/// strategy (mean and band over its seeds).
pub fn accuracy_figure(
    path: &Path,
    per_search: &[Vec<&Record>],
    strategies: &[String],
    searches: &[(String, u64)],
    window: usize,
) -> Result<()> {
    if strategies.len() > 1 {
        let curves: Vec<plot::Curve> = strategies
            .iter()
            .map(|name| {
                let runs: Vec<Vec<f64>> = per_search
                    .iter()
                    .zip(searches)
                    .filter(|(_, (n, _))| n == name)
                    .map(|(rs, _)| rs.iter().map(|r| r.accuracy).collect())
                    .collect();
                plot::mean_curve(name, &runs, window)
            })
            .collect();
        return plot::curves(
            path,
            &format!("Dev accuracy of the sampled children (moving average of {window})"),
            "rollout",
            "dev accuracy",
            &curves,
            (0.5, 1.0),
        );
    }
    if per_search.len() == 1 {
        let acc: Vec<f64> = per_search[0].iter().map(|r| r.accuracy).collect();
        let rew: Vec<f64> = per_search[0].iter().map(|r| r.reward).collect();
        return plot::accuracy(path, &acc, &rew, window);
    }
    let band = |f: fn(&Record) -> f64, label: String| {
        let mas: Vec<Vec<f64>> = per_search
            .iter()
            .map(|rs| moving_average(&rs.iter().map(|r| f(r)).collect::<Vec<_>>(), window))
            .collect();
        let n = mas.iter().map(Vec::len).min().unwrap_or(0);
        let at = |i: usize| mas.iter().map(move |m| m[i]);
        plot::Curve {
            label,
            values: (0..n)
                .map(|i| at(i).sum::<f64>() / mas.len() as f64)
                .collect(),
            band: Some((
                (0..n).map(|i| at(i).fold(f64::MAX, f64::min)).collect(),
                (0..n).map(|i| at(i).fold(f64::MIN, f64::max)).collect(),
            )),
        }
    };
    let s = per_search.len();
    let curves = [
        band(
            |r| r.accuracy,
            format!(
                "dev accuracy, moving average of {window}: mean of {s} searches, band min to max"
            ),
        ),
        band(
            |r| r.reward,
            format!("reward, moving average of {window}: mean of {s} searches, band min to max"),
        ),
    ];
    let low = curves[1]
        .band
        .as_ref()
        .map(|b| b.0.iter().copied().fold(0.0f64, f64::min))
        .unwrap_or(0.0)
        .max(-1.2);
    plot::curves(
        path,
        &format!("Architecture search: {s} searches in lockstep"),
        "rollout",
        "dev accuracy / reward",
        &curves,
        (low - 0.02, 1.02),
    )
}

/// strategies.png: the best dev accuracy found so far against rollouts, per strategy (mean and
/// band over its seeds).
pub fn best_so_far_figure(
    path: &Path,
    per_search: &[Vec<&Record>],
    strategies: &[String],
    searches: &[(String, u64)],
) -> Result<()> {
    let curves: Vec<plot::Curve> = strategies
        .iter()
        .map(|name| {
            let runs: Vec<Vec<f64>> = per_search
                .iter()
                .zip(searches)
                .filter(|(_, (n, _))| n == name)
                .map(|(rs, _)| {
                    rs.iter()
                        .scan(0.0f64, |b, r| {
                            *b = b.max(r.accuracy);
                            Some(*b)
                        })
                        .collect()
                })
                .collect();
            plot::mean_curve(name, &runs, 1)
        })
        .collect();
    let low = curves
        .iter()
        .flat_map(|c| c.values.first().copied())
        .fold(1.0f64, f64::min);
    plot::curves(
        path,
        "Best dev accuracy found so far",
        "rollouts",
        "best dev accuracy so far",
        &curves,
        ((low - 0.02).max(0.0), 1.0),
    )
}
