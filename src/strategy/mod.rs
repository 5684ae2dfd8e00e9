//! The `Strategy` interface: something that proposes configurations and learns from their
//! fitness (ask/tell), so one evaluation loop serves the controller, aging evolution and random
//! search on any space. One file per strategy: REINFORCE here (`reinforce`, with its GRU
//! `controller`); aging evolution and random search in `src/choice_list/evolution.rs`.

pub mod controller;
pub mod reinforce;

pub use reinforce::Reinforce;

use anyhow::Result;
use rand_pcg::Pcg64;
use serde_json::Value;

/// A search strategy of `archsearch choice-list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StrategyChoice {
    /// The GRU controller trained by REINFORCE, over the space's decisions
    Reinforce,
    /// Aging evolution (Real et al. 2019) with hannah's mutations
    Evolution,
    /// Uniform random sampling
    Random,
    /// Every strategy, each with the same budget
    All,
}

impl StrategyChoice {
    pub fn name(self) -> &'static str {
        match self {
            StrategyChoice::Reinforce => "reinforce",
            StrategyChoice::Evolution => "evolution",
            StrategyChoice::Random => "random",
            StrategyChoice::All => "all",
        }
    }
}

/// Proposes configurations (JSON values) and learns from how good they were.
pub trait Strategy {
    fn name(&self) -> &'static str;
    /// The next `n` configurations to evaluate.
    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Value>>;
    /// The fitness (higher is better) of the configurations of the last `ask`, in its order.
    fn tell(&mut self, results: &[(Value, f64)]) -> Result<()>;
}
