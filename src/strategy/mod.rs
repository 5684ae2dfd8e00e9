//! The `Strategy` interface: something that proposes configurations and learns from their
//! fitness (ask/tell), so one evaluation loop serves the controller, aging evolution and random
//! search on any space. One file per strategy: REINFORCE here (`reinforce`, with its GRU
//! `controller` in plain Rust); aging evolution and random search in `src/choice_list/evolution.rs`.

pub mod baseline;
pub mod controller;
#[cfg(test)]
mod controller_tch;
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

/// One configuration to evaluate, with what the strategy asks of its evaluation: a budget
/// (for example epochs, for multi-fidelity optimisers) and a seed, where it sets them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proposal {
    pub config: Value,
    #[serde(default)]
    pub budget: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
}

impl Proposal {
    /// A configuration with neither budget nor seed.
    pub fn of(config: Value) -> Proposal {
        Proposal {
            config,
            budget: None,
            seed: None,
        }
    }
}

/// What a strategy learned from, for the record: the reward of each proposal (the fitness,
/// reshaped where the strategy does so), for a policy-gradient learner the entropy weight and
/// loss of its update, and per proposal whatever else the strategy computed that its command
/// records (ENAS: the baseline, the sample's entropy and skip rate); empty where none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Told {
    pub rewards: Vec<f64>,
    pub beta: Option<f64>,
    pub loss: Option<f64>,
    pub details: Vec<Value>,
}

/// Proposes configurations and learns from how good they were (ask/tell). The search loop
/// (`crate::search`) drives every strategy through this interface and nothing else.
pub trait Strategy: Send {
    fn name(&self) -> &'static str;
    /// The next `n` proposals to evaluate. It may keep what it proposed for `tell`, but must
    /// not change what `state` returns: a batch cut short by a stop is forgotten by restoring
    /// the random stream alone.
    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>>;
    /// The fitness (higher is better) of each proposal of the last `ask`, in its order.
    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told>;
    /// Everything the strategy needs to continue exactly (the checkpoint keeps it).
    fn state(&self) -> Result<Value>;
    /// Continues from what `state` returned.
    fn restore(&mut self, state: &Value) -> Result<()>;
}
