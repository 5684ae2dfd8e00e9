//! REINFORCE as a `Strategy`: the default run's GRU controller (Zoph & Le 2016) on any
//! `SearchSpace`, asked for decision sequences and told their fitness; the reward adds the
//! space's shaping terms to the fitness (docs/algorithms.md §1).

use anyhow::Result;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::controller::{Baseline, Controller};
use super::{Proposal, Strategy, Told};
use crate::config::Settings;
use crate::space::SearchSpace;

/// The GRU controller trained by REINFORCE on a space's decision sequences, with the preset's
/// baseline and entropy schedule; one update per `tell`.
pub struct Reinforce<'a> {
    space: &'a dyn SearchSpace,
    controller: Controller,
    baseline: Baseline,
    settings: Settings,
    beta: f64,
    pending: Vec<Vec<usize>>,
}

/// What a checkpoint keeps of a `Reinforce`.
#[derive(Serialize, Deserialize)]
struct Saved {
    controller: Vec<f32>,
    adam_m: Vec<f32>,
    adam_v: Vec<f32>,
    adam_step: i32,
    baseline: Baseline,
    beta: f64,
}

/// The controller's update would leave numbers that are not finite; the loop says where.
#[derive(Debug)]
pub struct Diverged(pub String);

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Diverged {}

impl<'a> Reinforce<'a> {
    /// A fresh controller, its initial weights drawn from `rng`. The controller computes on the
    /// CPU whatever `_device` the children train on (it is tiny: plain Rust beats dispatching
    /// its operations to libtorch, or a GPU); the argument stays for the callers.
    pub fn new(
        space: &'a dyn SearchSpace,
        settings: &Settings,
        _device: tch::Device,
        rng: &mut Pcg64,
    ) -> Self {
        let controller = Controller::new(
            space.vocabulary(),
            settings.controller_hidden,
            settings.feed_previous_action,
            rng,
        );
        Reinforce {
            space,
            controller,
            baseline: Baseline::new(
                settings.use_baseline,
                settings.baseline_decay,
                settings.normalise_advantage,
            ),
            settings: settings.clone(),
            beta: settings.entropy_beta,
            pending: Vec::new(),
        }
    }

    /// The shaping terms of a sequence, each computed as its decision was sampled.
    pub fn shaping(&self, decisions: &[usize]) -> f64 {
        (1..=decisions.len())
            .map(|n| self.space.step_reward(&decisions[..n]))
            .sum()
    }
}

impl Strategy for Reinforce<'_> {
    fn name(&self) -> &'static str {
        "reinforce"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        self.pending = self.controller.sample(self.space, n, rng);
        Ok(self
            .pending
            .iter()
            .map(|d| Proposal::of(self.space.to_json(d)))
            .collect())
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        anyhow::ensure!(
            results.len() == self.pending.len(),
            "tell() needs the results of the last ask()"
        );
        let rewards: Vec<f64> = self
            .pending
            .iter()
            .zip(results)
            .map(|(d, (_, fitness))| self.shaping(d) + fitness)
            .collect();
        let advantages = self.baseline.advantages(&rewards);
        let s = &self.settings;
        let stats = self
            .controller
            .reinforce(self.space, &self.pending, &advantages, self.beta, s)
            .map_err(|why| anyhow::Error::new(Diverged(why)))?;
        let beta = self.beta;
        // The entropy schedule stays per rollout: k rollouts decay beta k times.
        self.beta = (self.beta * s.entropy_decay.powi(results.len() as i32)).max(s.entropy_floor);
        self.pending.clear();
        Ok(Told {
            rewards,
            beta: Some(beta),
            loss: Some(stats.loss),
            details: Vec::new(),
        })
    }

    fn state(&self) -> Result<Value> {
        let (controller, adam_m, adam_v, adam_step) = self.controller.state();
        for (name, v) in [
            ("controller", &controller),
            ("adam_m", &adam_m),
            ("adam_v", &adam_v),
        ] {
            anyhow::ensure!(v.iter().all(|x| x.is_finite()), "{name} is not finite");
        }
        let b = &self.baseline;
        anyhow::ensure!(
            b.variance.is_finite() && b.value.is_none_or(f64::is_finite),
            "the baseline is not finite"
        );
        anyhow::ensure!(self.beta.is_finite(), "beta is not finite");
        Ok(serde_json::to_value(Saved {
            controller,
            adam_m,
            adam_v,
            adam_step,
            baseline: self.baseline.clone(),
            beta: self.beta,
        })?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        let saved: Saved = serde_json::from_value(state.clone())?;
        self.controller
            .restore(
                &saved.controller,
                &saved.adam_m,
                &saved.adam_v,
                saved.adam_step,
            )
            .map_err(anyhow::Error::msg)?;
        self.baseline = saved.baseline;
        self.beta = saved.beta;
        Ok(())
    }
}
