//! The ENAS controller behind the ask/tell interface of the one search loop: `ask` samples
//! architectures (Katib's rows as JSON), `tell` takes one REINFORCE step per rewarded
//! architecture (re-scoring it with gradients), `state`/`restore` carry the controller for
//! checkpoints. `archsearch enas` drives the controller directly, since its rewards need the
//! shared weights between the phases; this adapter lets any loop use it.

use anyhow::{Context, Result};
use rand_pcg::Pcg64;
use serde_json::{json, Value};
use tch::Tensor;

use super::config::EnasSettings;
use super::controller::{Controller, ControllerState};
use super::space::Arch;
use crate::strategy::{Proposal, Strategy, Told};

pub struct EnasStrategy {
    pub controller: Controller,
    layers: usize,
    ops: usize,
    settings: EnasSettings,
}

impl EnasStrategy {
    pub fn new(layers: usize, ops: usize, settings: &EnasSettings, rng: &mut Pcg64) -> Self {
        EnasStrategy {
            controller: Controller::new(layers, ops, settings, rng),
            layers,
            ops,
            settings: settings.clone(),
        }
    }
}

impl Strategy for EnasStrategy {
    fn name(&self) -> &'static str {
        "enas"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        Ok((0..n)
            .map(|_| Proposal {
                config: json!(self.controller.sample(rng)),
                budget: None,
                seed: None,
            })
            .collect())
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        let mut rewards = Vec::new();
        let mut loss = 0.0;
        // `run` with a given architecture draws nothing from the generator.
        let mut unused = <Pcg64 as rand::SeedableRng>::seed_from_u64(0);
        for (p, accuracy) in results {
            let arch: Arch = serde_json::from_value(p.config.clone())
                .context("a told configuration is not an architecture")?;
            anyhow::ensure!(
                arch.len() == self.layers,
                "a told architecture has another depth"
            );
            anyhow::ensure!(
                arch.iter().all(|r| (r[0] as usize) < self.ops),
                "a told architecture uses an unknown operation"
            );
            let sample = self.controller.run(Some(&arch), &mut unused);
            let update = self.controller.update(&sample, *accuracy);
            rewards.push(update.reward);
            loss += update.loss;
        }
        Ok(Told {
            rewards,
            beta: Some(self.settings.controller_entropy_weight),
            loss: Some(loss / results.len().max(1) as f64),
        })
    }

    fn state(&self) -> Result<Value> {
        let tensors: Vec<Vec<f32>> = self
            .controller
            .tensors()
            .iter()
            .map(|t| Vec::<f32>::try_from(t.flatten(0, -1)).context("a controller tensor"))
            .collect::<Result<_>>()?;
        Ok(json!({ "tensors": tensors, "state": self.controller.state }))
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        let saved: Vec<Vec<f32>> = serde_json::from_value(state["tensors"].clone())
            .context("the strategy state has no controller tensors")?;
        let now = self.controller.tensors();
        anyhow::ensure!(
            saved.len() == now.len(),
            "the saved controller has another shape"
        );
        let tensors: Vec<Tensor> = saved
            .iter()
            .zip(&now)
            .map(|(v, t)| Tensor::from_slice(v).view(t.size().as_slice()))
            .collect();
        let cstate: ControllerState = serde_json::from_value(state["state"].clone())
            .context("the strategy state has no controller state")?;
        self.controller.restore(&tensors, cstate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ask_tell_state_and_restore() {
        let s = EnasSettings {
            controller_hidden_size: 8,
            controller_learning_rate: 0.01,
            ..EnasSettings::default()
        };
        let mut rng = Pcg64::seed_from_u64(1);
        let mut a = EnasStrategy::new(3, 4, &s, &mut rng);
        let asked = a.ask(4, &mut rng).unwrap();
        assert_eq!(asked.len(), 4);
        let saved = a.state().unwrap();
        let results: Vec<(Proposal, f64)> = asked.into_iter().map(|p| (p, 0.5)).collect();
        let told = a.tell(&results).unwrap();
        assert_eq!(told.rewards.len(), 4);
        let after = a.state().unwrap();
        assert_ne!(
            saved["tensors"], after["tensors"],
            "tell moves the controller"
        );
        let mut b = EnasStrategy::new(3, 4, &s, &mut Pcg64::seed_from_u64(9));
        b.restore(&after).unwrap();
        assert_eq!(b.state().unwrap(), after);
        let (mut r1, mut r2) = (Pcg64::seed_from_u64(4), Pcg64::seed_from_u64(4));
        let x: Vec<Value> = a
            .ask(3, &mut r1)
            .unwrap()
            .into_iter()
            .map(|p| p.config)
            .collect();
        let y: Vec<Value> = b
            .ask(3, &mut r2)
            .unwrap()
            .into_iter()
            .map(|p| p.config)
            .collect();
        assert_eq!(x, y, "a restored controller samples the same");
    }
}
