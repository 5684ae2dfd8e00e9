//! A small random-forest regressor on binary features, the surrogate of SMAC-style Bayesian
//! optimisation (Hutter, Hoos & Leyton-Brown 2011): bootstrapped trees, a random share of the
//! features tried at each split, splits chosen by variance reduction, and the prediction's mean
//! and variance taken across the trees. Written here rather than taken from a crate because the
//! Rust forests at hand (randomforest, rafor, smartcore) return only the averaged prediction,
//! while expected improvement needs every tree's prediction; on a one-hot cell (30 features)
//! and a few hundred points a fit takes well under a millisecond.

use rand::RngExt;
use rand_pcg::Pcg64;

/// How the forest grows.
#[derive(Clone, Copy, Debug)]
pub struct ForestSettings {
    pub trees: usize,
    /// A node with fewer points than this is a leaf.
    pub min_split: usize,
    pub max_depth: usize,
    /// Share of the features tried at each split (at least one).
    pub feature_ratio: f64,
    /// The targets are logarithms: a leaf predicts the logarithm of the mean of their
    /// exponentials (the mean taken in the original scale, as SMAC3's forest does with log_y).
    pub log_y: bool,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(f64),
    /// Points with the feature set go left.
    Split {
        feature: usize,
        left: usize,
        right: usize,
    },
}

#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[bool]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf(v) => return v,
                Node::Split {
                    feature,
                    left,
                    right,
                } => i = if x[feature] { left } else { right },
            }
        }
    }
}

/// A fitted forest.
#[derive(Clone, Debug)]
pub struct Forest {
    trees: Vec<Tree>,
}

struct Grower<'a> {
    x: &'a [Vec<bool>],
    y: &'a [f64],
    settings: ForestSettings,
    features: Vec<usize>,
    tried: usize,
}

impl Grower<'_> {
    fn grow(
        &mut self,
        nodes: &mut Vec<Node>,
        points: &mut [usize],
        depth: usize,
        rng: &mut Pcg64,
    ) -> usize {
        let at = nodes.len();
        let n = points.len() as f64;
        let sum: f64 = points.iter().map(|&p| self.y[p]).sum();
        nodes.push(Node::Leaf(if self.settings.log_y {
            log_mean_exp(points.iter().map(|&p| self.y[p]))
        } else {
            sum / n
        }));
        let first = self.y[points[0]];
        if points.len() < self.settings.min_split
            || depth >= self.settings.max_depth
            || points.iter().all(|&p| self.y[p] == first)
        {
            return at;
        }
        // A random share of the features (partial Fisher-Yates shuffle).
        let f = self.features.len();
        for i in 0..self.tried {
            let j = rng.random_range(i..f);
            self.features.swap(i, j);
        }
        let mut best: Option<(f64, usize)> = None;
        for &feature in &self.features[..self.tried] {
            let (mut n_left, mut s_left) = (0.0, 0.0);
            for &p in points.iter() {
                if self.x[p][feature] {
                    n_left += 1.0;
                    s_left += self.y[p];
                }
            }
            if n_left == 0.0 || n_left == n {
                continue;
            }
            let s_right = sum - s_left;
            // Maximising sum^2/n over both sides minimises the squared error.
            let score = s_left * s_left / n_left + s_right * s_right / (n - n_left);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, feature));
            }
        }
        let Some((_, feature)) = best else { return at };
        let mut split = 0;
        for i in 0..points.len() {
            if self.x[points[i]][feature] {
                points.swap(i, split);
                split += 1;
            }
        }
        let (l, r) = points.split_at_mut(split);
        let left = self.grow(nodes, l, depth + 1, rng);
        let right = self.grow(nodes, r, depth + 1, rng);
        nodes[at] = Node::Split {
            feature,
            left,
            right,
        };
        at
    }
}

/// ln(mean(exp(v))) of a non-empty sequence, shifted by its maximum so no exponential overflows.
pub fn log_mean_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return top;
    }
    let (mut n, mut sum) = (0.0, 0.0);
    for x in v {
        n += 1.0;
        sum += (x - top).exp();
    }
    top + (sum / n).ln()
}

impl Forest {
    /// Fits a forest to points `x` (equal lengths, at least one point) and targets `y`.
    pub fn fit(x: &[Vec<bool>], y: &[f64], settings: ForestSettings, rng: &mut Pcg64) -> Forest {
        let features = x.first().map_or(0, Vec::len);
        let tried =
            ((features as f64 * settings.feature_ratio).ceil() as usize).clamp(1, features.max(1));
        let mut grower = Grower {
            x,
            y,
            settings,
            features: (0..features).collect(),
            tried: tried.min(features),
        };
        let trees = (0..settings.trees.max(1))
            .map(|_| {
                let mut points: Vec<usize> =
                    (0..x.len()).map(|_| rng.random_range(0..x.len())).collect();
                let mut nodes = Vec::new();
                if !points.is_empty() {
                    grower.grow(&mut nodes, &mut points, 0, rng);
                } else {
                    nodes.push(Node::Leaf(0.0));
                }
                Tree { nodes }
            })
            .collect();
        Forest { trees }
    }

    /// Mean and variance of the trees' predictions at `x`.
    pub fn predict(&self, x: &[bool]) -> (f64, f64) {
        let n = self.trees.len() as f64;
        let values: Vec<f64> = self.trees.iter().map(|t| t.predict(x)).collect();
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn settings(trees: usize) -> ForestSettings {
        ForestSettings {
            trees,
            min_split: 2,
            max_depth: 20,
            feature_ratio: 1.0,
            log_y: false,
        }
    }

    #[test]
    fn log_mean_exp_is_the_log_of_the_mean_in_the_original_scale() {
        // ln((e^0 + e^ln3) / 2) = ln 2.
        let v = [0.0, 3f64.ln()];
        assert!((log_mean_exp(v.iter().copied()) - 2f64.ln()).abs() < 1e-12);
        // Large values do not overflow: ln((e^1000 + e^1000) / 2) = 1000.
        assert!((log_mean_exp([1000.0, 1000.0].iter().copied()) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn a_log_y_leaf_averages_in_the_original_scale() {
        // Three points with the same features: every tree is one leaf holding the
        // log-mean-exp of its bootstrap sample. The oracle: that value averaged over all 27
        // equally likely samples (about 1.206, against 1.0 for a plain-mean leaf); 200 trees
        // land within 0.15 of it (the spread over samples is 0.48, so 0.15 is over 4 standard
        // errors).
        let mut rng = Pcg64::seed_from_u64(3);
        let x = vec![vec![true], vec![true], vec![true]];
        let y = [0.0, 1.0, 2.0];
        let mut expected = 0.0;
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    let mean = (y[a] as f64).exp() + (y[b] as f64).exp() + (y[c] as f64).exp();
                    expected += (mean / 3.0).ln() / 27.0;
                }
            }
        }
        let log_forest = Forest::fit(
            &x,
            &y,
            ForestSettings {
                log_y: true,
                ..settings(200)
            },
            &mut rng,
        );
        let (mean, _) = log_forest.predict(&x[0]);
        assert!((mean - expected).abs() < 0.15, "{mean} vs {expected}");
        let plain = Forest::fit(&x, &y, settings(200), &mut rng)
            .predict(&x[0])
            .0;
        assert!((plain - 1.0).abs() < 0.15 && mean > plain, "{mean} {plain}");
    }

    #[test]
    fn a_forest_learns_an_additive_function_of_binary_features() {
        let mut rng = Pcg64::seed_from_u64(0);
        let f = |x: &[bool]| 2.0 * x[0] as u8 as f64 + x[2] as u8 as f64;
        let x: Vec<Vec<bool>> = (0..16)
            .map(|i| (0..4).map(|b| i >> b & 1 == 1).collect())
            .collect();
        let y: Vec<f64> = x.iter().map(|p| f(p)).collect();
        let forest = Forest::fit(&x, &y, settings(30), &mut rng);
        for p in &x {
            let (mean, _) = forest.predict(p);
            assert!((mean - f(p)).abs() < 0.5, "{p:?}: {mean}");
        }
    }

    #[test]
    fn one_tree_on_distinct_points_has_no_variance_and_the_trees_disagree_between_points() {
        let mut rng = Pcg64::seed_from_u64(1);
        let x = vec![vec![true, false], vec![false, true]];
        let y = vec![1.0, 3.0];
        let one = Forest::fit(&x, &y, settings(1), &mut rng);
        assert_eq!(one.predict(&x[0]).1, 0.0);
        // Bootstrapped trees sometimes see only one of the two points: variance appears.
        let many = Forest::fit(&x, &y, settings(50), &mut rng);
        let (mean, var) = many.predict(&x[0]);
        assert!(var > 0.0 && mean > 1.0 && mean < 3.0, "{mean} {var}");
    }
}
