//! The optimisers of the cell table, each a `crate::strategy::Strategy` (ask/tell), and the
//! choice among them (`--strategy`): random search, regularised evolution, REINFORCE, SMAC-style
//! Bayesian optimisation, Hyperband and DEHB (docs/algorithms.md §7.2). The multi-fidelity ones
//! (Hyperband, DEHB) set each proposal's budget in epochs, from the table's budgets.

pub mod bo;
pub mod dehb;
pub mod evolution;
pub mod forest;
pub mod hyperband;
pub mod random;

use anyhow::Result;
use rand_pcg::Pcg64;

use super::space::SPACE;
use super::table::TableMeta;
use crate::strategy::{Reinforce, Strategy};

/// An optimiser of `archsearch cells search`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Optimiser {
    /// Uniform random cells at the full budget
    Random,
    /// Regularised (aging) evolution, Real et al. 2019: mutate one edge, drop the oldest
    Evolution,
    /// The GRU controller trained by REINFORCE on the six edge decisions
    Reinforce,
    /// SMAC-style Bayesian optimisation: random forest, expected improvement, local search
    Bo,
    /// Hyperband (Li et al. 2018) over the table's epoch budgets
    Hyperband,
    /// DEHB (Awad et al. 2021): differential evolution inside Hyperband's brackets
    Dehb,
    /// Every optimiser above, each with the same seeds and budget
    All,
}

/// Every optimiser, in the order `all` runs them.
pub const OPTIMISERS: [Optimiser; 6] = [
    Optimiser::Random,
    Optimiser::Evolution,
    Optimiser::Reinforce,
    Optimiser::Bo,
    Optimiser::Hyperband,
    Optimiser::Dehb,
];

impl Optimiser {
    pub fn name(self) -> &'static str {
        match self {
            Optimiser::Random => "random",
            Optimiser::Evolution => "evolution",
            Optimiser::Reinforce => "reinforce",
            Optimiser::Bo => "bo",
            Optimiser::Hyperband => "hyperband",
            Optimiser::Dehb => "dehb",
            Optimiser::All => "all",
        }
    }

    /// The optimisers this choice stands for.
    pub fn expand(self) -> Vec<Optimiser> {
        match self {
            Optimiser::All => OPTIMISERS.to_vec(),
            one => vec![one],
        }
    }

    /// Position in `OPTIMISERS` (the random stream of each optimiser differs).
    pub fn index(self) -> usize {
        OPTIMISERS
            .iter()
            .position(|&o| o == self)
            .unwrap_or(OPTIMISERS.len())
    }

    /// A fresh strategy of this optimiser for a table described by `meta`.
    pub fn build(self, meta: &TableMeta, rng: &mut Pcg64) -> Result<Box<dyn Strategy>> {
        use super::config::*;
        Ok(match self {
            Optimiser::Random => Box::new(random::RandomCells),
            Optimiser::Evolution => Box::new(evolution::RegularisedEvolution::new(
                EVOLUTION_POPULATION,
                EVOLUTION_SAMPLE,
            )),
            Optimiser::Reinforce => Box::new(Reinforce::new(
                &SPACE,
                &crate::config::Settings::default(),
                tch::Device::Cpu,
                rng,
            )),
            Optimiser::Bo => Box::new(bo::SmacBo::new(bo::BoSettings::default())),
            Optimiser::Hyperband => {
                Box::new(hyperband::Hyperband::new(&meta.budgets, HYPERBAND_ETA)?)
            }
            Optimiser::Dehb => Box::new(dehb::Dehb::new(
                &meta.budgets,
                HYPERBAND_ETA,
                DEHB_F,
                DEHB_CR,
            )?),
            Optimiser::All => anyhow::bail!("`all` stands for several optimisers; expand it first"),
        })
    }
}

/// The rewards a strategy reports: the fitnesses themselves.
pub(crate) fn told(results: &[(crate::strategy::Proposal, f64)]) -> crate::strategy::Told {
    crate::strategy::Told {
        rewards: results.iter().map(|(_, f)| *f).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::evaluator::TableEvaluator;

    #[test]
    fn an_ask_leaves_the_state_alone_and_a_restored_strategy_continues_identically() {
        let table = toy::conv_table();
        for optimiser in OPTIMISERS {
            let mut rng = crate::seeds::stream(7, Some(optimiser.index()));
            let mut strategy = optimiser.build(&table.meta, &mut rng).unwrap();
            let mut ev = TableEvaluator::new(&table, 7);
            let mut step = |s: &mut Box<dyn Strategy>, rng: &mut Pcg64| {
                let p = s.ask(1, rng).unwrap().remove(0);
                let f = ev.query(&p).unwrap().dev;
                s.tell(&[(p.clone(), f)]).unwrap();
                p
            };
            for _ in 0..37 {
                step(&mut strategy, &mut rng);
            }
            let saved = strategy.state().unwrap();
            let saved_rng = rng.clone();
            strategy.ask(1, &mut rng).unwrap();
            assert_eq!(
                strategy.state().unwrap(),
                saved,
                "{}: ask changed the state",
                optimiser.name()
            );
            // Forget the ask as the loop does (restore the stream), then continue both.
            rng = saved_rng.clone();
            let mut other_rng = crate::seeds::stream(99, Some(optimiser.index()));
            let mut other = optimiser.build(&table.meta, &mut other_rng).unwrap();
            other.restore(&saved).unwrap();
            strategy.restore(&saved).unwrap();
            let mut other_rng = saved_rng;
            for _ in 0..25 {
                let a = step(&mut strategy, &mut rng);
                let b = step(&mut other, &mut other_rng);
                assert_eq!(a, b, "{} diverged after a restore", optimiser.name());
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod toy {
    //! A toy table with a known optimum for the optimisers' tests.
    use crate::cells::cell::Op;
    use crate::cells::table::Table;

    /// dev = test = share of convolution edges (1x1 or 3x3), times epochs / 12 below the full
    /// budget; one second per epoch. Optimum 1.0, reached by the 64 all-convolution cells.
    pub fn conv_table() -> Table {
        Table::from_fn(12, 2, vec![1, 2, 4, 8, 12], |cell, seed, epoch| {
            let convs = cell
                .ops
                .iter()
                .filter(|o| matches!(o, Op::NorConv1x1 | Op::NorConv3x3))
                .count() as f64;
            let v = convs / 6.0;
            let dev = v * (0.5 + 0.5 * epoch as f64 / 12.0) - 1e-3 * seed as f64;
            (dev, v, 1.0)
        })
        .unwrap()
    }
}
