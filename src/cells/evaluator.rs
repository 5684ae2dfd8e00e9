//! The table as an evaluator in simulated time, as NAS-Bench-201 (Dong & Yang 2020) and
//! HPOBench run optimisers: a query answers with the dev accuracy a cell reached after the
//! proposal's budget (epochs; the full budget when it names none) and costs the tabulated
//! training seconds of those epochs. It keeps the incumbent (the best dev accuracy seen, each
//! configuration judged at the highest budget it was seen at) and the regret of its test
//! accuracy against the table's best.

use std::collections::HashMap;

use anyhow::Result;

use super::cell::Cell;
use super::space::proposed_cell;
use super::table::Table;
use crate::seeds::splitmix64;
use crate::strategy::Proposal;

/// What one query returned and where the search stands after it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Answer {
    pub cell: Cell,
    /// Epochs the query trained.
    pub epochs: usize,
    /// Dev accuracy after those epochs (what the optimiser is told).
    pub dev: f64,
    /// Simulated seconds of this query.
    pub cost: f64,
    /// Simulated seconds of the search so far, this query included.
    pub seconds: f64,
    /// The incumbent after this query, and its mean full-budget test accuracy.
    pub incumbent: Cell,
    pub incumbent_test: f64,
    /// The table's best test accuracy minus the incumbent's.
    pub regret: f64,
}

/// One search's view of the table.
pub struct TableEvaluator<'t> {
    table: &'t Table,
    search_seed: u64,
    optimum: f64,
    seconds: f64,
    /// Per cell index: the highest budget it was seen at and its dev accuracy there.
    seen: HashMap<usize, (usize, f64)>,
    incumbent: Option<(Cell, f64)>,
}

impl<'t> TableEvaluator<'t> {
    /// A fresh search of seed `search_seed` on `table`.
    pub fn new(table: &'t Table, search_seed: u64) -> Self {
        TableEvaluator {
            table,
            search_seed,
            optimum: table.best().1,
            seconds: 0.0,
            seen: HashMap::new(),
            incumbent: None,
        }
    }

    /// Simulated seconds spent so far.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }

    /// The training seed that answers for `cell` in this search: chosen by the search's seed,
    /// the same at every budget (a promoted configuration continues the same training).
    pub fn training_seed(&self, cell: &Cell) -> usize {
        let class = self.table.entry(cell).cell.index() as u64;
        (splitmix64(self.search_seed ^ splitmix64(class)) % self.table.meta.seeds as u64) as usize
    }

    /// Epochs of a proposal: its budget rounded, or the full budget.
    pub fn epochs(&self, proposal: &Proposal) -> Result<usize> {
        let full = self.table.meta.epochs;
        match proposal.budget {
            None => Ok(full),
            Some(b) if b.is_finite() && b >= 0.5 && b <= full as f64 + 0.5 => {
                Ok(b.round() as usize)
            }
            Some(b) => anyhow::bail!("a proposal asked for {b} epochs; the table has 1..={full}"),
        }
    }

    /// What `proposal` would cost, without querying.
    pub fn cost(&self, proposal: &Proposal) -> Result<f64> {
        let cell = proposed_cell(proposal)?;
        let seed = self.training_seed(&cell);
        Ok(self
            .table
            .query(&cell, self.epochs(proposal)?, seed)
            .seconds)
    }

    /// Queries the table: the dev accuracy the optimiser is told, the simulated time spent, the
    /// incumbent and the regret after it.
    pub fn query(&mut self, proposal: &Proposal) -> Result<Answer> {
        let cell = proposed_cell(proposal)?;
        let epochs = self.epochs(proposal)?;
        let q = self.table.query(&cell, epochs, self.training_seed(&cell));
        self.seconds += q.seconds;
        self.see(cell, epochs, q.dev);
        let (incumbent, _) = self.incumbent.unwrap_or((cell, q.dev));
        let incumbent_test = self.table.mean_test(&incumbent);
        Ok(Answer {
            cell,
            epochs,
            dev: q.dev,
            cost: q.seconds,
            seconds: self.seconds,
            incumbent,
            incumbent_test,
            regret: self.optimum - incumbent_test,
        })
    }

    /// Records a dev accuracy at a budget and updates the incumbent.
    fn see(&mut self, cell: Cell, epochs: usize, dev: f64) {
        let record = self.seen.entry(cell.index()).or_insert((epochs, dev));
        if epochs >= record.0 {
            *record = (epochs, dev);
        }
        let judged = record.1;
        match self.incumbent {
            // The incumbent was judged again, lower: the best may now be another configuration.
            Some((c, d)) if c == cell && judged < d => {
                let best = self.seen.iter().map(|(&i, &(_, d))| (i, d)).fold(
                    None,
                    |best: Option<(usize, f64)>, x| match best {
                        Some(b) if b.1 > x.1 || (b.1 == x.1 && b.0 < x.0) => Some(b),
                        _ => Some(x),
                    },
                );
                self.incumbent = best.and_then(|(i, d)| Cell::from_index(i).ok().map(|c| (c, d)));
            }
            Some((_, d)) if judged <= d => {}
            _ => self.incumbent = Some((cell, judged)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::cell::Op;
    use crate::cells::space::propose;

    /// test = share of 3x3 convolutions; dev the same, grown with the epochs, except the
    /// all-skip cell: dev 0.9 before its full budget, 0 at it; one second per epoch.
    fn table() -> Table {
        Table::from_fn(4, 2, vec![1, 4], |cell, seed, epoch| {
            let v = cell.ops.iter().filter(|&&o| o == Op::NorConv3x3).count() as f64 / 6.0;
            let all_skip = cell.ops.iter().all(|&o| o == Op::SkipConnect);
            let dev = match (all_skip, epoch) {
                (true, 4) => 0.0,
                (true, _) => 0.9,
                _ => v * epoch as f64 / 4.0,
            };
            (dev + seed as f64 * 1e-6, v, 1.0)
        })
        .unwrap()
    }

    #[test]
    fn the_incumbent_is_judged_at_its_highest_budget_and_regret_follows_it() {
        let t = table();
        let mut ev = TableEvaluator::new(&t, 3);
        let skip = Cell {
            ops: [Op::SkipConnect; 6],
        };
        let one =
            Cell::parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|").unwrap();
        let best = Cell {
            ops: [Op::NorConv3x3; 6],
        };
        let a = ev.query(&propose(&skip, Some(1))).unwrap();
        assert_eq!((a.epochs, a.incumbent), (1, skip));
        assert!((a.cost - 1.0).abs() < 1e-12);
        assert!(
            (a.regret - 1.0).abs() < 1e-12,
            "the all-skip cell tests at 0"
        );
        let b = ev.query(&propose(&one, None)).unwrap();
        assert_eq!(b.epochs, 4);
        assert!((b.seconds - 5.0).abs() < 1e-12);
        assert_eq!(
            b.incumbent, skip,
            "0.17 at the full budget does not beat 0.9"
        );
        let c = ev.query(&propose(&skip, Some(4))).unwrap();
        assert_eq!(
            c.incumbent, one,
            "the all-skip cell fell to 0 at its full budget"
        );
        assert!((c.regret - (1.0 - 1.0 / 6.0)).abs() < 1e-12);
        let d = ev.query(&propose(&best, None)).unwrap();
        assert_eq!(d.incumbent, best);
        assert!(d.regret.abs() < 1e-12);
        assert!((d.seconds - 13.0).abs() < 1e-12);
    }

    #[test]
    fn the_training_seed_depends_on_the_search_and_is_shared_by_isomorphic_cells() {
        let t = table();
        let seeds: std::collections::HashSet<usize> = (0..20)
            .map(|s| TableEvaluator::new(&t, s).training_seed(&Cell::from_index(7).unwrap()))
            .collect();
        assert_eq!(seeds.len(), 2);
        let a =
            Cell::parse("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").unwrap();
        let b =
            Cell::parse("|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").unwrap();
        let ev = TableEvaluator::new(&t, 5);
        assert_eq!(ev.training_seed(&a), ev.training_seed(&b));
    }
}
