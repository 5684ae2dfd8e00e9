//! REINFORCE as a `Strategy`: the default run's GRU controller (Zoph & Le 2016) on any
//! `SearchSpace`, asked for decisions and told their fitness.

use anyhow::Result;
use rand_pcg::Pcg64;
use serde_json::Value;

use super::controller::{Baseline, Controller};
use super::Strategy;
use crate::config::Settings;
use crate::space::SearchSpace;

/// The GRU controller trained by REINFORCE on a space's decision sequences, with the default
/// preset's baseline and entropy schedule; one update per `tell`.
pub struct Reinforce<'a> {
    space: &'a dyn SearchSpace,
    controller: Controller,
    baseline: Baseline,
    settings: Settings,
    beta: f64,
    pending: Vec<Vec<usize>>,
    /// Results told so far.
    told: usize,
}

impl<'a> Reinforce<'a> {
    pub fn new(space: &'a dyn SearchSpace, settings: &Settings, rng: &mut Pcg64) -> Self {
        let controller = Controller::new(
            space.vocabulary(),
            settings.controller_hidden,
            settings.feed_previous_action,
            tch::Device::Cpu,
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
            told: 0,
        }
    }
}

impl Strategy for Reinforce<'_> {
    fn name(&self) -> &'static str {
        "reinforce"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Value>> {
        self.pending = self.controller.sample(self.space, n, rng);
        Ok(self.pending.iter().map(|d| self.space.to_json(d)).collect())
    }

    fn tell(&mut self, results: &[(Value, f64)]) -> Result<()> {
        anyhow::ensure!(
            results.len() == self.pending.len(),
            "tell() needs the results of the last ask()"
        );
        let rewards: Vec<f64> = results.iter().map(|(_, f)| *f).collect();
        let advantages = self.baseline.advantages(&rewards);
        let s = &self.settings;
        self.controller
            .reinforce(self.space, &self.pending, &advantages, self.beta, s)
            .map_err(|why| crate::search::diverged(0, self.told + results.len(), &why))?;
        self.told += results.len();
        self.beta = (self.beta * s.entropy_decay.powi(results.len() as i32)).max(s.entropy_floor);
        self.pending.clear();
        Ok(())
    }
}
