//! The ENAS controller (Pham et al. 2018) as a strategy of the one search loop
//! (`crate::search::run`): `ask` samples architectures (Katib's rows as JSON), `tell` takes one
//! REINFORCE step per rewarded architecture (re-scoring it with gradients) and reports the
//! baseline, entropy and skip rate of each for rollouts.csv, `state`/`restore` carry the
//! controller as JSON. The controller is shared (`SharedController`) with the ENAS evaluator,
//! whose shared-weight phase trains on architectures sampled from the same policy.

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use rand_pcg::Pcg64;
use serde_json::{json, Value};
use tch::Tensor;

use super::config::EnasSettings;
use super::controller::{Controller, ControllerState};
use super::space::Arch;
use crate::strategy::{Proposal, Strategy, Told};

/// The controller, held by the strategy and by the evaluator that samples from it.
#[derive(Clone)]
pub struct SharedController(Arc<Mutex<Controller>>);

impl SharedController {
    pub fn new(controller: Controller) -> Self {
        SharedController(Arc::new(Mutex::new(controller)))
    }

    /// The controller (a lock poisoned by a panic elsewhere is taken over: the panic already
    /// ends the run).
    pub fn lock(&self) -> MutexGuard<'_, Controller> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct EnasStrategy {
    pub controller: SharedController,
    layers: usize,
    ops: usize,
    settings: EnasSettings,
}

impl EnasStrategy {
    /// A strategy with a new controller for `layers` layers of `ops` operations, its weights
    /// drawn from `rng`.
    pub fn new(layers: usize, ops: usize, settings: &EnasSettings, rng: &mut Pcg64) -> Self {
        EnasStrategy {
            controller: SharedController::new(Controller::new(layers, ops, settings, rng)),
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
        let controller = self.controller.lock();
        Ok((0..n)
            .map(|_| Proposal::of(json!(controller.sample(rng))))
            .collect())
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        let mut controller = self.controller.lock();
        let (mut rewards, mut details) = (Vec::new(), Vec::new());
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
            let sample = controller.run(Some(&arch), &mut unused);
            let update = controller.update(&sample, *accuracy);
            anyhow::ensure!(
                update.loss.is_finite() && update.baseline.is_finite(),
                "the controller's update is not finite (loss {}, baseline {}); lower --set controller_learning_rate",
                update.loss,
                update.baseline
            );
            rewards.push(update.reward);
            details.push(json!({
                "baseline": update.baseline,
                "entropy": update.entropy,
                "skip_rate": update.skip_rate,
                "loss": update.loss,
            }));
            loss += update.loss;
        }
        Ok(Told {
            rewards,
            beta: Some(self.settings.controller_entropy_weight),
            loss: Some(loss / results.len().max(1) as f64),
            details,
        })
    }

    fn state(&self) -> Result<Value> {
        let controller = self.controller.lock();
        let tensors: Vec<Vec<f32>> = controller
            .tensors()
            .iter()
            .map(|t| Vec::<f32>::try_from(t.flatten(0, -1)).context("a controller tensor"))
            .collect::<Result<_>>()?;
        Ok(json!({ "tensors": tensors, "state": controller.state }))
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        let saved: Vec<Vec<f32>> = serde_json::from_value(state["tensors"].clone())
            .context("the strategy state has no controller tensors")?;
        let mut controller = self.controller.lock();
        let now = controller.tensors();
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
        controller.restore(&tensors, cstate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::child::TrainOutcome;
    use crate::nn::evaluator::{EvalJob, Evaluator};
    use crate::search::{LoopSettings, Search, SearchState};
    use rand::SeedableRng;

    /// The share of layers that use operation 0 and no skip connection: [[0], [0, 0], ...]
    /// is the one best architecture.
    fn toy_reward(a: &Arch) -> f64 {
        a.iter()
            .filter(|r| r[0] == 0 && r[1..].iter().all(|&f| f == 0))
            .count() as f64
            / a.len() as f64
    }

    /// Scores each proposal by `toy_reward`.
    struct Toy;

    impl Evaluator for Toy {
        fn evaluate(&mut self, jobs: &[EvalJob]) -> Result<Option<Vec<TrainOutcome>>> {
            jobs.iter()
                .map(|j| {
                    let arch: Arch = serde_json::from_value(j.config.clone())?;
                    Ok(TrainOutcome {
                        accuracy: toy_reward(&arch),
                        epochs: 0,
                        diverged: false,
                        history: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        }
    }

    #[test]
    fn on_the_search_loop_the_controller_finds_a_toy_rewards_best_architecture() {
        // The skip penalty (which pulls towards skips) is off.
        let s = EnasSettings {
            controller_hidden_size: 16,
            controller_learning_rate: 0.05,
            controller_baseline_decay: 0.9,
            controller_skip_weight: 0.0,
            ..EnasSettings::default()
        };
        let mut rng = Pcg64::seed_from_u64(5);
        let strategy = EnasStrategy::new(3, 3, &s, &mut rng);
        let controller = strategy.controller.clone();
        let mut probe = Pcg64::seed_from_u64(6);
        let mean_of = |samples: &[Arch]| samples.iter().map(toy_reward).sum::<f64>() / 100.0;
        let before: Vec<Arch> = (0..100)
            .map(|_| controller.lock().sample(&mut probe))
            .collect();
        let mut state = SearchState {
            searches: vec![Search::new(Box::new(strategy), 5, rng)],
            done: 0,
        };
        let settings = LoopSettings {
            rollouts: 300,
            per_update: 1,
        };
        let records =
            crate::search::run_collecting(&mut Toy, settings, &mut state, &|| true).unwrap();
        assert_eq!(records.len(), 300);
        // Each record carries the update's baseline, entropy and skip rate for rollouts.csv;
        // the baseline is the moving average of the rewards (decay 0.9 from 0).
        let mut baseline = 0.0;
        for r in &records {
            baseline -= (1.0 - 0.9) * (baseline - r.reward);
            let told = r.details["baseline"].as_f64().unwrap();
            assert!((told - baseline).abs() < 1e-9, "{told} vs {baseline}");
            assert!(r.details["entropy"].as_f64().unwrap() > 0.0);
            assert!((0.0..=1.0).contains(&r.details["skip_rate"].as_f64().unwrap()));
        }
        let after: Vec<Arch> = (0..100)
            .map(|_| controller.lock().sample(&mut probe))
            .collect();
        let (start, end) = (mean_of(&before), mean_of(&after));
        // c tanh(.) caps a choice's probability (about 0.98 among 3 here): the mean can't reach 1.
        assert!(
            start < 0.5 && end > 0.85,
            "mean toy reward {start} -> {end}"
        );
        let best: Arch = vec![vec![0], vec![0, 0], vec![0, 0, 0]];
        let hits = after.iter().filter(|a| **a == best).count();
        let mut others = std::collections::HashMap::new();
        for a in after.iter().filter(|a| **a != best) {
            *others.entry(a.clone()).or_insert(0) += 1;
        }
        assert!(
            others.values().all(|&n| n < hits),
            "the best architecture is the most sampled"
        );
    }

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
