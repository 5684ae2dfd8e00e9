//! sklearn's `make_moons` and the accuracy of the Bayes-optimal classifier on such points
//! (docs/algorithms.md §1.1).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64;

use super::Dataset;

/// sklearn's `make_moons`: half the points on the outer moon `(cos t, sin t)` (label 0), half on
/// the inner moon `(1 - cos t, 1 - sin t - 0.5)` (label 1), `t` evenly spaced over `[0, pi]`,
/// Gaussian noise of sd `noise` on both coordinates, then shuffled.
pub fn make_moons(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = Pcg64::seed_from_u64(seed);
    let n_out = n / 2;
    let n_in = n - n_out;
    let spaced = |k: usize, i: usize| {
        if k > 1 {
            std::f64::consts::PI * i as f64 / (k - 1) as f64
        } else {
            0.0
        }
    };
    let mut points: Vec<([f64; 2], i64)> = Vec::with_capacity(n);
    for i in 0..n_out {
        let t = spaced(n_out, i);
        points.push(([t.cos(), t.sin()], 0));
    }
    for i in 0..n_in {
        let t = spaced(n_in, i);
        points.push(([1.0 - t.cos(), 1.0 - t.sin() - 0.5], 1));
    }
    points.shuffle(&mut rng);
    let normal = Normal::new(0.0, noise.max(0.0)).expect("noise is validated to be finite");
    let mut features = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for (p, label) in points {
        features.push((p[0] + normal.sample(&mut rng)) as f32);
        features.push((p[1] + normal.sample(&mut rng)) as f32);
        labels.push(label);
    }
    Dataset {
        features,
        labels,
        n_features: 2,
        n_classes: 2,
    }
}

/// Points along each moon's arc used to integrate the Bayes classifier's likelihoods.
const ARC_POINTS: usize = 4000;

/// The Bayes-optimal classifier of `make_moons` data with noise sd `noise`: class 1 where the
/// inner moon's likelihood (a Gaussian around a uniformly placed arc point, integrated
/// numerically over the arc) beats the outer moon's. Returns the fraction of `data` it gets
/// right: the best any classifier can do on those points on average.
pub fn moons_bayes_accuracy(data: &Dataset, noise: f64) -> f64 {
    let arc = |inner: bool| -> Vec<(f64, f64)> {
        (0..ARC_POINTS)
            .map(|i| {
                let t = std::f64::consts::PI * i as f64 / (ARC_POINTS - 1) as f64;
                if inner {
                    (1.0 - t.cos(), 1.0 - t.sin() - 0.5)
                } else {
                    (t.cos(), t.sin())
                }
            })
            .collect()
    };
    let (outer, inner) = (arc(false), arc(true));
    let likelihood = |p: &[f32], arc: &[(f64, f64)]| -> f64 {
        let (x, y) = (p[0] as f64, p[1] as f64);
        arc.iter()
            .map(|(ax, ay)| (-((x - ax).powi(2) + (y - ay).powi(2)) / (2.0 * noise * noise)).exp())
            .sum()
    };
    let correct = (0..data.len())
        .filter(|&i| {
            let p = data.point(i);
            i64::from(likelihood(p, &inner) > likelihood(p, &outer)) == data.labels[i]
        })
        .count();
    correct as f64 / data.len().max(1) as f64
}
