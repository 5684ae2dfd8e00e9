//! Evaluators: what turns a configuration proposed by a strategy into a trained child and its
//! outcome (dev accuracy, epochs, divergence). The search loop sees only the `Evaluator` trait;
//! each space picks its evaluator. MLP children (the half-moon space and the choice-list
//! spaces) train through a `ChildTrainer` (the CPU kernel, the threaded or the population
//! trainer), after a space-specific reading of the configuration.

use anyhow::Result;
use serde_json::Value;

use crate::config::ChildSettings;
use crate::nn::child::TrainOutcome;
use crate::nn::mlp::MlpSpec;
use crate::nn::trainer::{ChildJob, ChildTrainer};

/// A configuration to evaluate, with the seed of its child's weights and batch order.
#[derive(Clone, Debug)]
pub struct EvalJob<'a> {
    pub config: &'a Value,
    pub seed: u64,
}

/// Trains or scores the children of a batch of configurations.
pub trait Evaluator {
    /// The outcomes in the order of the jobs; None when a stop cut the batch short (the batch
    /// is then given up whole, as if it had never been proposed).
    fn evaluate(&mut self, jobs: &[EvalJob]) -> Result<Option<Vec<TrainOutcome>>>;
}

/// How a space's configuration reads as an MLP child and its training settings.
pub type Interpret<'a> = dyn Fn(&Value) -> Result<(MlpSpec, ChildSettings)> + 'a;

/// MLP children trained by a `ChildTrainer`.
pub struct MlpEvaluator<'a> {
    pub trainer: Box<dyn ChildTrainer + 'a>,
    pub interpret: Box<Interpret<'a>>,
}

impl Evaluator for MlpEvaluator<'_> {
    fn evaluate(&mut self, jobs: &[EvalJob]) -> Result<Option<Vec<TrainOutcome>>> {
        let mut children = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (spec, settings) = (self.interpret)(job.config)?;
            children.push(ChildJob {
                spec,
                settings,
                seed: job.seed,
            });
        }
        Ok(self.trainer.train_batch(&children))
    }
}
