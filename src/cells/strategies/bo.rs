//! Bayesian optimisation as SMAC does it for categorical spaces (Hutter, Hoos & Leyton-Brown
//! 2011; SMAC3, Lindauer et al. 2022): a random-forest surrogate on the one-hot cell, its mean
//! and variance across trees; expected improvement over the best dev accuracy seen; EI
//! maximised by local search (one-edge neighbours) from the best configurations seen plus
//! random candidates; a few random initial configurations, and every other proposal random, as
//! SMAC interleaves them. Every proposal is at the full budget.

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
pub struct BoSettings {
    pub initial_design: usize,
    pub random_every: usize,
    pub trees: usize,
    pub min_split: usize,
    pub max_depth: usize,
    pub feature_ratio: f64,
    pub local_starts: usize,
    pub random_candidates: usize,
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

    /// The cell maximising expected improvement under a forest fitted to the history, not yet
    /// evaluated (a random unseen cell when every candidate was).
    fn by_model(&self, rng: &mut Pcg64) -> Result<Cell> {
        let s = &self.settings;
        let x: Vec<Vec<bool>> = self
            .history
            .iter()
            .map(|&(c, _)| Cell::from_index(c).map(|c| one_hot(&c)))
            .collect::<Result<_>>()?;
        let y: Vec<f64> = self.history.iter().map(|&(_, f)| f).collect();
        let forest = Forest::fit(
            &x,
            &y,
            ForestSettings {
                trees: s.trees,
                min_split: s.min_split,
                max_depth: s.max_depth,
                feature_ratio: s.feature_ratio,
            },
            rng,
        );
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let seen: HashSet<usize> = self.history.iter().map(|&(c, _)| c).collect();
        let ei = |cell: &Cell| {
            let (mu, var) = forest.predict(&one_hot(cell));
            expected_improvement(mu, var.max(0.0).sqrt(), best, s.xi)
        };
        let mut candidates: Vec<(f64, Cell)> = Vec::new();
        // Local search from the best configurations seen: move to the best neighbour while
        // it improves EI.
        let mut order: Vec<&(usize, f64)> = self.history.iter().collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut starts: Vec<usize> = Vec::new();
        for &(c, _) in order {
            if !starts.contains(&c) {
                starts.push(c);
            }
            if starts.len() >= s.local_starts {
                break;
            }
        }
        for start in starts {
            let mut here = Cell::from_index(start)?;
            let mut value = ei(&here);
            for _ in 0..EDGES * OPS {
                let step = here
                    .neighbours()
                    .into_iter()
                    .map(|n| (ei(&n), n))
                    .inspect(|&(v, n)| {
                        if !seen.contains(&n.index()) {
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
        for _ in 0..s.random_candidates {
            let c = random_cell(rng);
            if !seen.contains(&c.index()) {
                candidates.push((ei(&c), c));
            }
        }
        match candidates.into_iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
            Some((_, c)) => Ok(c),
            None => Ok(random_cell(rng)),
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
                random_cell(rng)
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
