//! Hyperband (Li et al. 2018, "Hyperband: a novel bandit-based approach to hyperparameter
//! optimization") on the cell table: brackets of successive halving from the table's smallest
//! to its full epoch budget, each rung keeping the best 1/eta of its configurations for the
//! next, larger budget; brackets cycle from the most to the least aggressive. The paper's
//! budgets are snapped to the table's (the nearest on a log scale).

use std::collections::VecDeque;

use anyhow::Result;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cells::space::{propose, proposed_cell, random_cell};
use crate::strategy::{Proposal, Strategy, Told};

/// One rung of a bracket: how many configurations, at what budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    pub n: usize,
    pub budget: f64,
}

/// Hyperband's brackets for maximum budget `max`, minimum `min` and `eta`, most aggressive
/// (s = s_max) first: bracket s starts n = ceil((s_max+1)/(s+1) eta^s) configurations at
/// max eta^-s, and rung i keeps floor(n eta^-i) at max eta^(i-s).
pub fn brackets(max: f64, min: f64, eta: f64) -> Vec<Vec<Rung>> {
    let s_max = ((max / min).ln() / eta.ln() + 1e-9).floor().max(0.0) as i32;
    (0..=s_max)
        .rev()
        .map(|s| {
            let n = ((s_max + 1) as f64 / (s + 1) as f64 * eta.powi(s) - 1e-9).ceil();
            (0..=s)
                .map(|i| Rung {
                    n: ((n / eta.powi(i)) + 1e-9).floor().max(1.0) as usize,
                    budget: max * eta.powi(i - s),
                })
                .collect()
        })
        .collect()
}

/// The table budget nearest to `budget` on a log scale.
pub fn snap(budget: f64, budgets: &[usize]) -> usize {
    budgets
        .iter()
        .copied()
        .min_by(|&a, &b| {
            let d = |x: usize| (x as f64 / budget).ln().abs();
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(1)
}

/// Checks the table's budgets and eta, and returns the brackets in table budgets.
pub fn plan(budgets: &[usize], eta: f64) -> Result<Vec<Vec<(usize, usize)>>> {
    if !(eta > 1.0 && eta.is_finite()) {
        crate::usage_bail!(
            "eta is {eta}; Hyperband keeps 1/eta of each rung, so eta must exceed 1 (Li et al.: 3)"
        );
    }
    let (Some(&min), Some(&max)) = (budgets.first(), budgets.last()) else {
        anyhow::bail!("the table names no budgets");
    };
    Ok(brackets(max as f64, min as f64, eta)
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(|r| (r.n, snap(r.budget, budgets)))
                .collect()
        })
        .collect())
}

/// Hyperband as an ask/tell strategy, one configuration at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hyperband {
    /// Brackets of (configurations, epochs).
    plan: Vec<Vec<(usize, usize)>>,
    bracket: usize,
    rung: usize,
    started: bool,
    /// Cells (by index) still to evaluate in this rung.
    queue: VecDeque<usize>,
    /// (cell index, dev accuracy) of this rung so far.
    results: Vec<(usize, f64)>,
    /// The strategy as it was before the proposals not yet told (what `state` returns).
    #[serde(skip)]
    before_ask: Option<Box<Hyperband>>,
}

impl Hyperband {
    pub fn new(budgets: &[usize], eta: f64) -> Result<Self> {
        Ok(Hyperband {
            plan: plan(budgets, eta)?,
            bracket: 0,
            rung: 0,
            started: false,
            queue: VecDeque::new(),
            results: Vec::new(),
            before_ask: None,
        })
    }

    /// Fills the queue: the next rung's survivors, or a new bracket's random cells.
    fn advance(&mut self, rng: &mut Pcg64) {
        let bracket = &self.plan[self.bracket];
        if self.started && self.rung + 1 < bracket.len() {
            self.rung += 1;
            let keep = bracket[self.rung].0;
            let mut ranked = std::mem::take(&mut self.results);
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            self.queue = ranked.into_iter().take(keep).map(|(c, _)| c).collect();
        } else {
            if self.started {
                self.bracket = (self.bracket + 1) % self.plan.len();
            }
            self.started = true;
            self.rung = 0;
            self.results.clear();
            let n = self.plan[self.bracket][0].0;
            self.queue = (0..n).map(|_| random_cell(rng).index()).collect();
        }
    }
}

impl Strategy for Hyperband {
    fn name(&self) -> &'static str {
        "hyperband"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        // `state` must not change with an ask: keep the strategy as it was.
        if self.before_ask.is_none() {
            self.before_ask = Some(Box::new(self.clone()));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if self.queue.is_empty() {
                anyhow::ensure!(
                    out.is_empty(),
                    "hyperband proposes one rung at a time; ask it for at most the rest of a rung"
                );
                self.advance(rng);
            }
            let Some(c) = self.queue.pop_front() else {
                anyhow::bail!("hyperband's rung is empty");
            };
            let epochs = self.plan[self.bracket][self.rung].1;
            out.push(propose(&crate::cells::Cell::from_index(c)?, Some(epochs)));
        }
        Ok(out)
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        for (p, f) in results {
            self.results.push((proposed_cell(p)?.index(), *f));
        }
        self.before_ask = None;
        Ok(super::told(results))
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(
            self.before_ask.as_deref().unwrap_or(self),
        )?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        *self = serde_json::from_value(state.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn brackets_match_the_papers_table_for_81_and_eta_3() {
        // Li et al. 2018, Table 1 (R = 81, eta = 3): (n_i, r_i) per bracket s = 4..0.
        let want: Vec<Vec<(usize, f64)>> = vec![
            vec![(81, 1.0), (27, 3.0), (9, 9.0), (3, 27.0), (1, 81.0)],
            vec![(34, 3.0), (11, 9.0), (3, 27.0), (1, 81.0)],
            vec![(15, 9.0), (5, 27.0), (1, 81.0)],
            vec![(8, 27.0), (2, 81.0)],
            vec![(5, 81.0)],
        ];
        let got: Vec<Vec<(usize, f64)>> = brackets(81.0, 1.0, 3.0)
            .into_iter()
            .map(|b| {
                b.into_iter()
                    .map(|r| (r.n, (r.budget * 1e6).round() / 1e6))
                    .collect()
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn budgets_snap_to_the_tables_on_a_log_scale() {
        let budgets = [1, 2, 4, 8, 12];
        // R = 12, eta = 3: 12/9 = 1.33 -> 1, 12/3 = 4, 12.
        assert_eq!(
            plan(&budgets, 3.0).unwrap(),
            vec![
                vec![(9, 1), (3, 4), (1, 12)],
                vec![(5, 4), (1, 12)],
                vec![(3, 12)]
            ]
        );
        assert_eq!(snap(3.0, &budgets), 4);
        assert_eq!(snap(2.7, &budgets), 2);
        assert!(plan(&budgets, 1.0).is_err());
    }

    #[test]
    fn the_best_of_a_rung_are_promoted_to_the_next_budget() {
        let mut hb = Hyperband::new(&[1, 2, 4, 8, 12], 3.0).unwrap();
        let mut rng = Pcg64::seed_from_u64(3);
        let mut first = Vec::new();
        for k in 0..9 {
            let p = hb.ask(1, &mut rng).unwrap().remove(0);
            assert_eq!(p.budget, Some(1.0));
            let c = proposed_cell(&p).unwrap().index();
            first.push((c, k as f64));
            hb.tell(&[(p, k as f64)]).unwrap();
        }
        // The three best (fitness 8, 7, 6) go on at 4 epochs, in order of fitness.
        let promoted: Vec<usize> = (0..3)
            .map(|_| {
                let p = hb.ask(1, &mut rng).unwrap().remove(0);
                assert_eq!(p.budget, Some(4.0));
                let c = proposed_cell(&p).unwrap().index();
                hb.tell(&[(p, 0.0)]).unwrap();
                c
            })
            .collect();
        assert_eq!(promoted, vec![first[8].0, first[7].0, first[6].0]);
        let last = hb.ask(1, &mut rng).unwrap().remove(0);
        assert_eq!(last.budget, Some(12.0));
    }
}
