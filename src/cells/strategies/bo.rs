//! Bayesian optimisation as SMAC does it for categorical spaces (Hutter, Hoos & Leyton-Brown
//! 2011; SMAC3's HPO facade, Lindauer et al. 2022): a random-forest surrogate on the one-hot
//! cell fitted to log-scaled costs (1 - dev accuracy), its mean and variance across trees; log
//! expected improvement over the lowest predicted cost among evaluated cells; EI maximised by
//! local search (one-edge neighbours) from the evaluated cells of lowest predicted cost and the
//! best random candidates, beside the random candidates themselves; a few random initial
//! configurations, then one proposal in five random, as SMAC interleaves them. Isomorphic cells
//! (one functional class) count as one configuration, which SMAC does not know of. Every
//! proposal is at the full budget (docs/algorithms.md §7.2).

use std::collections::HashSet;

use anyhow::Result;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::forest::{Forest, ForestSettings};
use crate::cells::cell::Cell;
use crate::cells::config::*;
use crate::cells::space::{propose, proposed_cell, random_cell};
use crate::strategy::{Proposal, Strategy, Told};

/// The knobs of the Bayesian optimisation (defaults in `cells::config`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct BoSettings {
    pub initial_design: usize,
    pub random_every: usize,
    pub trees: usize,
    pub min_split: usize,
    pub max_depth: usize,
    pub feature_ratio: f64,
    /// Local searches start from this many evaluated cells of the lowest predicted cost...
    pub local_starts: usize,
    /// ... and from the `random_starts` best (by EI) of `random_candidates` random cells.
    pub random_candidates: usize,
    pub random_starts: usize,
    /// Model log-scaled costs and maximise log EI (SMAC3's HPO facade); otherwise plain
    /// costs and plain EI.
    pub log_y: bool,
    /// EI's incumbent is the lowest predicted cost among evaluated cells (SMAC3), otherwise
    /// the lowest observed cost.
    pub predicted_best: bool,
    /// Treat isomorphic cells (one functional class, `isomorphism::functional`) as one: the
    /// model sees each cell as its class's representative, and no proposal repeats a class
    /// already evaluated. Otherwise cells are told apart by index, as SMAC3 sees them.
    pub by_class: bool,
    /// Score every cell (every class's representative with `by_class`) instead of local and
    /// random search.
    pub exhaustive: bool,
    pub xi: f64,
}

impl Default for BoSettings {
    fn default() -> Self {
        BoSettings {
            initial_design: BO_INITIAL_DESIGN,
            random_every: BO_RANDOM_EVERY,
            trees: BO_TREES,
            min_split: BO_MIN_SPLIT,
            max_depth: BO_MAX_DEPTH,
            feature_ratio: BO_FEATURE_RATIO,
            local_starts: BO_LOCAL_STARTS,
            random_candidates: BO_RANDOM_CANDIDATES,
            random_starts: BO_RANDOM_STARTS,
            log_y: BO_LOG_Y,
            predicted_best: BO_PREDICTED_BEST,
            by_class: BO_BY_CLASS,
            exhaustive: BO_EXHAUSTIVE,
            xi: BO_XI,
        }
    }
}

/// Standard normal density.
pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function, through the complementary error function of
/// Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Expected improvement of a maximised objective over `best` (Jones et al. 1998) for a
/// Gaussian prediction of mean `mu` and standard deviation `sigma`, with margin `xi`:
/// (mu - best - xi) Phi(z) + sigma phi(z), z = (mu - best - xi) / sigma.
pub fn expected_improvement(mu: f64, sigma: f64, best: f64, xi: f64) -> f64 {
    let gain = mu - best - xi;
    if sigma <= 0.0 || !sigma.is_finite() {
        return gain.max(0.0);
    }
    let z = gain / sigma;
    gain * normal_cdf(z) + sigma * normal_pdf(z)
}

/// Expected improvement of a minimised cost whose logarithm the model predicts (SMAC3's
/// `EI(log=True)`): with log-cost Y ~ N(mu, sigma^2) and incumbent log-cost `best`, the
/// expectation of max(e^(best - xi) - e^Y, 0), which is
/// e^f Phi(v) - e^(mu + sigma^2 / 2) Phi(v - sigma), f = best - xi, v = (f - mu) / sigma.
pub fn log_expected_improvement(mu: f64, sigma: f64, best: f64, xi: f64) -> f64 {
    let f = best - xi;
    if sigma <= 0.0 || !sigma.is_finite() {
        return (f.exp() - mu.exp()).max(0.0);
    }
    let v = (f - mu) / sigma;
    let ei = f.exp() * normal_cdf(v) - (mu + 0.5 * sigma * sigma).exp() * normal_cdf(v - sigma);
    // The difference of two nearly equal terms far below the incumbent can round below zero.
    ei.max(0.0)
}

/// The 5th percentile of `values` (not empty), interpolated linearly between order statistics
/// as numpy's default does.
pub fn percentile_5(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = 0.05 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// SMAC3's log-scaled costs (its HPO facade's run-history encoder): each cost scaled
/// linearly by the lowest and highest cost, the lower end pushed below the lowest cost by the
/// distance from it to the 5th percentile (so the best cost does not map to log 0), then the
/// logarithm.
pub fn log_scaled(costs: &[f64]) -> Vec<f64> {
    let min = costs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = costs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut lo = min - (percentile_5(costs) - min) - BO_LOG_EPSILON;
    if lo == max {
        lo *= 1.0 - 1e-10;
    }
    costs
        .iter()
        .map(|&c| ((c - lo) / (max - lo)).ln())
        .collect()
}

/// The functional classes of the cell space, computed once: each cell's class number and each
/// class's representative (its member of the lowest index, so edges whose operations do not
/// matter carry `none`).
pub struct Classes {
    pub class_of: Vec<usize>,
    pub representative: Vec<usize>,
}

/// The classes (computed on first use, about 15 625 functional forms).
pub fn classes() -> &'static Classes {
    static CLASSES: std::sync::OnceLock<Classes> = std::sync::OnceLock::new();
    CLASSES.get_or_init(|| {
        let mut number: std::collections::HashMap<String, usize> = Default::default();
        let mut class_of = Vec::with_capacity(CELLS);
        let mut representative = Vec::new();
        for cell in Cell::all() {
            let next = number.len();
            let k = *number
                .entry(crate::cells::isomorphism::functional(&cell))
                .or_insert(next);
            if k == representative.len() {
                representative.push(cell.index());
            }
            class_of.push(k);
        }
        Classes {
            class_of,
            representative,
        }
    })
}

/// The one-hot features of a cell: edge e carries op k <=> feature 5e + k.
pub fn one_hot(cell: &Cell) -> Vec<bool> {
    let mut x = vec![false; EDGES * OPS];
    for (e, op) in cell.ops.iter().enumerate() {
        x[e * OPS + op.index()] = true;
    }
    x
}

/// SMAC-style Bayesian optimisation over the cell space.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SmacBo {
    settings: BoSettings,
    /// Every (cell index, dev accuracy) told, in order.
    history: Vec<(usize, f64)>,
}

impl SmacBo {
    pub fn new(settings: BoSettings) -> Self {
        SmacBo {
            settings,
            history: Vec::new(),
        }
    }

    /// What tells cells apart: the class number with `by_class`, else the cell index.
    fn key(&self, cell: usize) -> usize {
        if self.settings.by_class {
            classes().class_of[cell]
        } else {
            cell
        }
    }

    /// The cell the model sees for `cell`: its class's representative with `by_class`.
    fn modelled(&self, cell: usize) -> usize {
        if self.settings.by_class {
            classes().representative[classes().class_of[cell]]
        } else {
            cell
        }
    }

    /// A random cell; with `by_class`, of a class not yet evaluated when one turns up within
    /// `BO_RANDOM_TRIES` draws.
    fn random(&self, rng: &mut Pcg64) -> Cell {
        let mut cell = random_cell(rng);
        if self.settings.by_class {
            let seen: HashSet<usize> = self.history.iter().map(|&(c, _)| self.key(c)).collect();
            for _ in 1..BO_RANDOM_TRIES {
                if !seen.contains(&self.key(cell.index())) {
                    break;
                }
                cell = random_cell(rng);
            }
        }
        cell
    }

    /// The cell maximising expected improvement under a forest fitted to the history, not yet
    /// evaluated (a random unseen cell when every candidate was).
    fn by_model(&self, rng: &mut Pcg64) -> Result<Cell> {
        let s = &self.settings;
        let x: Vec<Vec<bool>> = self
            .history
            .iter()
            .map(|&(c, _)| Cell::from_index(self.modelled(c)).map(|c| one_hot(&c)))
            .collect::<Result<_>>()?;
        // The model predicts a cost to minimise: 1 - dev accuracy, log-scaled as SMAC3 does
        // or plain.
        let costs: Vec<f64> = self.history.iter().map(|&(_, f)| 1.0 - f).collect();
        let y = if s.log_y { log_scaled(&costs) } else { costs };
        let forest = Forest::fit(
            &x,
            &y,
            ForestSettings {
                trees: s.trees,
                min_split: s.min_split,
                max_depth: s.max_depth,
                feature_ratio: s.feature_ratio,
                log_y: s.log_y,
            },
            rng,
        );
        // Evaluated cells by predicted cost (ties by order of evaluation).
        let mut evaluated: Vec<(f64, usize)> = Vec::new();
        let mut seen: HashSet<usize> = HashSet::new();
        for (i, &(c, _)) in self.history.iter().enumerate() {
            if seen.insert(self.key(c)) {
                evaluated.push((forest.predict(&x[i]).0, c));
            }
        }
        evaluated.sort_by(|a, b| a.0.total_cmp(&b.0));
        let best = if s.predicted_best {
            evaluated.first().map_or(f64::INFINITY, |e| e.0)
        } else {
            y.iter().copied().fold(f64::INFINITY, f64::min)
        };
        // EI depends only on the modelled cell: each is scored once per proposal (local
        // searches meet the same cells again and again).
        let mut memo = vec![f64::NAN; CELLS];
        let mut ei = |cell: &Cell| {
            let m = self.modelled(cell.index());
            if memo[m].is_nan() {
                let modelled = Cell::from_index(m).unwrap_or(*cell);
                let (mu, var) = forest.predict(&one_hot(&modelled));
                let sigma = var.max(0.0).sqrt();
                memo[m] = if s.log_y {
                    log_expected_improvement(mu, sigma, best, s.xi)
                } else {
                    // EI of a minimised cost is EI of its negation maximised.
                    expected_improvement(-mu, sigma, -best, s.xi)
                };
            }
            memo[m]
        };
        let fresh = |cell: &Cell| !seen.contains(&self.key(cell.index()));
        if s.exhaustive {
            let all: Vec<usize> = if s.by_class {
                classes().representative.clone()
            } else {
                (0..CELLS).collect()
            };
            let mut top: Option<(f64, Cell)> = None;
            for i in all {
                let c = Cell::from_index(i)?;
                if fresh(&c) {
                    let v = ei(&c);
                    if top.is_none_or(|(b, _)| v > b) {
                        top = Some((v, c));
                    }
                }
            }
            return Ok(top.map_or_else(|| self.random(rng), |(_, c)| c));
        }
        let mut candidates: Vec<(f64, Cell)> = Vec::new();
        // Random candidates; the best of them by EI also start local searches.
        let mut random: Vec<(f64, Cell)> = (0..s.random_candidates)
            .map(|_| {
                let c = random_cell(rng);
                (ei(&c), c)
            })
            .collect();
        random.sort_by(|a, b| b.0.total_cmp(&a.0));
        candidates.extend(random.iter().filter(|(_, c)| fresh(c)));
        let mut starts: Vec<Cell> = evaluated
            .iter()
            .take(s.local_starts)
            .map(|&(_, c)| Cell::from_index(c))
            .collect::<Result<_>>()?;
        starts.extend(random.iter().take(s.random_starts).map(|&(_, c)| c));
        // Local search: move to the best one-edge neighbour while it improves EI; every
        // unevaluated cell met is a candidate.
        for start in starts {
            let mut here = start;
            let mut value = ei(&here);
            for _ in 0..EDGES * OPS {
                let step = here
                    .neighbours()
                    .into_iter()
                    .map(|n| (ei(&n), n))
                    .inspect(|&(v, n)| {
                        if fresh(&n) {
                            candidates.push((v, n));
                        }
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match step {
                    Some((v, n)) if v > value => (value, here) = (v, n),
                    _ => break,
                }
            }
        }
        match candidates.into_iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
            Some((_, c)) => Ok(c),
            None => Ok(self.random(rng)),
        }
    }
}

impl Strategy for SmacBo {
    fn name(&self) -> &'static str {
        "bo"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        let mut out = Vec::with_capacity(n);
        // ask changes nothing that `state` returns: the proposal's number follows from the
        // history.
        for j in 0..n {
            let k = self.history.len() + j;
            let random = self.history.is_empty()
                || k < self.settings.initial_design
                || (self.settings.random_every > 0
                    && (k - self.settings.initial_design) % self.settings.random_every.max(1)
                        == self.settings.random_every.max(1) - 1);
            let cell = if random {
                self.random(rng)
            } else {
                self.by_model(rng)?
            };
            out.push(propose(&cell, None));
        }
        Ok(out)
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        for (p, f) in results {
            self.history.push((proposed_cell(p)?.index(), *f));
        }
        Ok(super::told(results))
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(self)?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        *self = serde_json::from_value(state.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::cell::Op;

    #[test]
    fn log_expected_improvement_matches_a_hand_computation_and_an_integral() {
        // f = 0, mu = 0, sigma = 1: v = 0; Phi(0) = 0.5, Phi(-1) = 0.1586553, e^0.5 = 1.6487213;
        // EI = 0.5 - 1.6487213 * 0.1586553 = 0.5 - 0.2615783 = 0.2384217.
        assert!((log_expected_improvement(0.0, 1.0, 0.0, 0.0) - 0.238_421_7).abs() < 1e-6);
        // The oracle: E[max(e^(best - xi) - e^Y, 0)] for Y ~ N(mu, sigma^2), integrated by the
        // midpoint rule over mu +- 12 sigma.
        for &(mu, sigma, best, xi) in &[
            (-1.2, 0.4, -1.0, 0.0),
            (-3.0, 1.5, -2.5, 0.1),
            (0.5, 0.2, -0.5, 0.0),
        ] {
            let n = 200_000;
            let (lo, hi) = (mu - 12.0 * sigma, mu + 12.0 * sigma);
            let h = (hi - lo) / n as f64;
            let integral: f64 = (0..n)
                .map(|i| {
                    let y = lo + (i as f64 + 0.5) * h;
                    let gain = ((best - xi as f64).exp() - (y as f64).exp()).max(0.0);
                    gain * normal_pdf((y - mu) / sigma) / sigma * h
                })
                .sum();
            let ei = log_expected_improvement(mu, sigma, best, xi);
            assert!(
                (ei - integral).abs() < 1e-6,
                "{mu} {sigma}: {ei} vs {integral}"
            );
        }
        // No uncertainty: the plain improvement in the original scale.
        assert_eq!(log_expected_improvement(1.0, 0.0, 0.0, 0.0), 0.0);
        assert!((log_expected_improvement(0.0, 0.0, 1.0, 0.0) - (1f64.exp() - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn log_scaling_follows_a_hand_computation() {
        // numpy's percentile: position 0.05 * (n - 1), linear between neighbours.
        let ramp: Vec<f64> = (1..=21).map(f64::from).collect();
        assert!((percentile_5(&ramp) - 2.0).abs() < 1e-12);
        assert!((percentile_5(&[10.0, 0.0]) - 0.5).abs() < 1e-12);
        assert_eq!(percentile_5(&[3.0]), 3.0);
        // costs 0.1, 0.2, 0.3: 5th percentile 0.11, lower end 0.1 - 0.01 = 0.09 (less 1e-10);
        // scaled 0.01/0.21, 0.11/0.21, 0.21/0.21; logs -3.0445224, -0.6466272, 0.
        let y = log_scaled(&[0.1, 0.2, 0.3]);
        for (got, want) in y.iter().zip([-3.044_522_4, -0.646_627_2, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{y:?}");
        }
        // Equal costs stay finite.
        assert!(log_scaled(&[0.4, 0.4]).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn the_classes_are_the_functional_forms_with_their_lowest_members() {
        use crate::cells::isomorphism::functional;
        let c = classes();
        assert_eq!(c.representative.len(), FUNCTIONAL_CELLS);
        let mut lowest: std::collections::HashMap<String, usize> = Default::default();
        for cell in Cell::all() {
            lowest.entry(functional(&cell)).or_insert(cell.index());
        }
        for cell in Cell::all() {
            let rep = c.representative[c.class_of[cell.index()]];
            assert_eq!(rep, lowest[&functional(&cell)], "{cell:?}");
        }
        // The cut cells' representative carries `none` on every edge.
        assert_eq!(
            c.representative[c.class_of[Cell::parse(
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
            )
            .unwrap()
            .index()]],
            0
        );
    }

    #[test]
    fn with_classes_no_proposal_repeats_an_evaluated_class() {
        use rand::SeedableRng;
        let mut bo = SmacBo::new(BoSettings {
            initial_design: 3,
            by_class: true,
            ..Default::default()
        });
        let mut rng = Pcg64::seed_from_u64(5);
        let mut seen = HashSet::new();
        for _ in 0..40 {
            let p = bo.ask(1, &mut rng).unwrap().remove(0);
            let c = proposed_cell(&p).unwrap();
            assert!(
                seen.insert(classes().class_of[c.index()]),
                "{c:?} repeats a class"
            );
            let f = c.ops.iter().filter(|&&o| o == Op::NorConv3x3).count() as f64 / 6.0;
            bo.tell(&[(p, f)]).unwrap();
        }
    }

    #[test]
    fn expected_improvement_matches_a_hand_computation() {
        // mu 0.5, sigma 0.1, best 0.45: z = 0.5; Phi(0.5) = 0.6914625, phi(0.5) = 0.3520653;
        // EI = 0.05 * 0.6914625 + 0.1 * 0.3520653 = 0.0697797.
        assert!((expected_improvement(0.5, 0.1, 0.45, 0.0) - 0.069_779_7).abs() < 1e-6);
        // Below the best: z = -1; Phi(-1) = 0.1586553, phi(-1) = 0.2419707;
        // EI = -0.2 * 0.1586553 + 0.2 * 0.2419707 = 0.0166631.
        assert!((expected_improvement(0.3, 0.2, 0.5, 0.0) - 0.016_663_1).abs() < 1e-6);
        // xi shifts the best: the same as best + xi.
        assert_eq!(
            expected_improvement(0.5, 0.1, 0.4, 0.05),
            expected_improvement(0.5, 0.1, 0.45, 0.0)
        );
        // No uncertainty: the plain improvement.
        assert_eq!(expected_improvement(0.6, 0.0, 0.5, 0.0), 0.6 - 0.5);
        assert_eq!(expected_improvement(0.4, 0.0, 0.5, 0.0), 0.0);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 2e-7);
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn every_cell_has_24_distinct_neighbours_one_edge_away() {
        let cell = Cell::from_index(4321).unwrap();
        let n: HashSet<usize> = cell.neighbours().iter().map(|c| c.index()).collect();
        assert_eq!(n.len(), EDGES * (OPS - 1));
        assert!(!n.contains(&cell.index()));
        assert_eq!(one_hot(&cell).iter().filter(|&&b| b).count(), EDGES);
    }

    #[test]
    fn random_and_model_proposals_interleave_after_the_initial_design() {
        use rand::SeedableRng;
        let mut bo = SmacBo::new(BoSettings {
            initial_design: 3,
            random_every: 2,
            ..Default::default()
        });
        let mut rng = Pcg64::seed_from_u64(0);
        let mut by_model = Vec::new();
        for k in 0..9 {
            let p = bo.ask(1, &mut rng).unwrap().remove(0);
            let c = proposed_cell(&p).unwrap();
            let fresh = !bo.history.iter().any(|&(h, _)| h == c.index());
            // The model's proposals are never cells already evaluated.
            if k >= 3 && (k - 3) % 2 == 0 {
                assert!(fresh);
                by_model.push(k);
            }
            let f = c.ops.iter().filter(|&&o| o == Op::NorConv3x3).count() as f64;
            bo.tell(&[(p, f)]).unwrap();
        }
        assert_eq!(by_model, vec![3, 5, 7]);
    }
}
