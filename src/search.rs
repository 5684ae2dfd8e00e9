//! The search loop of Zoph & Le (2016) as the half-moon demo runs it: sample architectures from
//! the controller, train each child, reward = shaping + dev accuracy, one REINFORCE update.
//! It sees a space only through `SearchSpace` and children only through `ChildTrainer`.

use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::config::Settings;
use crate::nn::child::TensorData;
use crate::nn::trainer::{ChildJob, ChildTrainer};
use crate::space::SearchSpace;
use crate::strategy::controller::{Baseline, Controller};

/// One finished rollout, as written to rollouts.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutRecord {
    /// Which of the searches run in lockstep (0 when there is one).
    pub search: usize,
    /// 1-based rollout number within its search.
    pub rollout: usize,
    pub decisions: Vec<usize>,
    pub architecture: String,
    /// Dev accuracy of the child's last epoch (0 if it diverged).
    pub accuracy: f64,
    /// Shaping terms plus accuracy.
    pub reward: f64,
    /// Entropy weight used in the update that learned from this rollout.
    pub beta: f64,
    /// REINFORCE loss of that update.
    pub loss: f64,
    pub epochs: usize,
    /// Wall seconds of this rollout (its share of the update when several train together).
    pub seconds: f64,
    pub diverged: bool,
}

/// Everything a search needs to continue: one controller, generator and baseline per search.
pub struct SearchState {
    pub controllers: Vec<Controller>,
    pub rngs: Vec<Pcg64>,
    pub baselines: Vec<Baseline>,
    /// Entropy weight for the next update.
    pub beta: f64,
    /// Rollouts done per search.
    pub done: usize,
}

impl SearchState {
    /// A fresh state: search `s` uses seed `settings.seed + s` for its controller and sampling.
    pub fn new(space: &dyn SearchSpace, settings: &Settings, device: tch::Device) -> Self {
        let mut controllers = Vec::new();
        let mut rngs = Vec::new();
        for s in 0..settings.searches {
            let mut rng = Pcg64::seed_from_u64(search_seed(settings.seed, s));
            controllers.push(Controller::new(
                space.vocabulary(),
                settings.controller_hidden,
                settings.feed_previous_action,
                device,
                &mut rng,
            ));
            rngs.push(rng);
        }
        SearchState {
            controllers,
            rngs,
            baselines: vec![
                Baseline::new(
                    settings.use_baseline,
                    settings.baseline_decay,
                    settings.normalise_advantage
                );
                settings.searches
            ],
            beta: settings.entropy_beta,
            done: 0,
        }
    }
}

impl SearchState {
    /// What a checkpoint keeps of each search.
    pub fn checkpoint(&self) -> Vec<crate::output::checkpoint::SearchCheckpoint> {
        (0..self.controllers.len())
            .map(|s| {
                let (controller, adam_m, adam_v, adam_step) = self.controllers[s].state();
                crate::output::checkpoint::SearchCheckpoint {
                    controller,
                    adam_m,
                    adam_v,
                    adam_step,
                    rng: self.rngs[s].clone(),
                    baseline: self.baselines[s].clone(),
                }
            })
            .collect()
    }

    /// The state a checkpoint describes.
    pub fn from_checkpoint(
        space: &dyn SearchSpace,
        settings: &Settings,
        device: tch::Device,
        saved: &crate::output::checkpoint::Checkpoint,
    ) -> Result<Self> {
        let mut state = SearchState::new(space, settings, device);
        if saved.searches.len() != settings.searches {
            anyhow::bail!(
                "the checkpoint holds {} searches, the settings {}",
                saved.searches.len(),
                settings.searches
            );
        }
        for (s, c) in saved.searches.iter().enumerate() {
            state.controllers[s]
                .restore(&c.controller, &c.adam_m, &c.adam_v, c.adam_step)
                .map_err(anyhow::Error::msg)?;
            state.rngs[s] = c.rng.clone();
            state.baselines[s] = c.baseline.clone();
        }
        state.beta = saved.beta;
        state.done = saved.done;
        Ok(state)
    }
}

/// The seed of search `s` of a run seeded `seed`.
pub fn search_seed(seed: u64, s: usize) -> u64 {
    seed.wrapping_add(s as u64)
}

/// The seed of the child of a rollout (1-based), independent of how rollouts are batched.
pub fn child_seed(search_seed: u64, rollout: usize) -> u64 {
    splitmix64(splitmix64(search_seed) ^ rollout as u64)
}

/// SplitMix64's finaliser: a cheap bijective mixer for deriving independent seeds.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs updates until `settings.rollouts` rollouts per search are done or `keep_going` says
/// stop (or the trainer gives a batch up on a stop); `on_update` gets each update's records
/// (all searches) after the controllers learned.
pub fn run(
    space: &dyn SearchSpace,
    data: &TensorData,
    settings: &Settings,
    trainer: &mut dyn ChildTrainer,
    state: &mut SearchState,
    on_update: &mut dyn FnMut(&[RolloutRecord], &SearchState) -> Result<()>,
    keep_going: &dyn Fn() -> bool,
) -> Result<()> {
    while state.done < settings.rollouts && keep_going() {
        let started = Instant::now();
        let k = settings
            .rollouts_per_update
            .min(settings.rollouts - state.done);
        // Kept to forget the batch if a stop cuts its training short.
        let rngs_before = state.rngs.clone();
        let mut sequences = Vec::with_capacity(settings.searches);
        let mut jobs = Vec::with_capacity(settings.searches * k);
        for s in 0..settings.searches {
            let seqs = state.controllers[s].sample(space, k, &mut state.rngs[s]);
            for (j, seq) in seqs.iter().enumerate() {
                let spec = space.decode(seq, data.n_features, data.n_classes);
                jobs.push(ChildJob {
                    spec,
                    settings: settings.child.clone(),
                    seed: child_seed(search_seed(settings.seed, s), state.done + j + 1),
                });
            }
            sequences.push(seqs);
        }
        let Some(outcomes) = trainer.train_batch(&jobs) else {
            // Stopped mid-batch: the state is as if the batch had never been sampled, so the
            // checkpoint written next resumes exactly.
            state.rngs = rngs_before;
            return Ok(());
        };
        let seconds = started.elapsed().as_secs_f64() / jobs.len() as f64;
        let mut records = Vec::with_capacity(jobs.len());
        for (s, seqs) in sequences.iter().enumerate() {
            let outcomes = &outcomes[s * k..(s + 1) * k];
            let rewards: Vec<f64> = seqs
                .iter()
                .zip(outcomes)
                .map(|(seq, o)| shaping(space, seq) + o.accuracy)
                .collect();
            let advantages = state.baselines[s].advantages(&rewards);
            let stats = state.controllers[s]
                .reinforce(space, seqs, &advantages, state.beta, settings)
                .map_err(|why| diverged(s, state.done + k, &why))?;
            for (j, ((seq, o), reward)) in seqs.iter().zip(outcomes).zip(&rewards).enumerate() {
                records.push(RolloutRecord {
                    search: s,
                    rollout: state.done + j + 1,
                    decisions: seq.clone(),
                    architecture: space.describe(seq),
                    accuracy: o.accuracy,
                    reward: *reward,
                    beta: state.beta,
                    loss: stats.loss,
                    epochs: o.epochs,
                    seconds,
                    diverged: o.diverged,
                });
            }
        }
        // The entropy schedule stays per rollout: k rollouts decay beta k times.
        state.beta =
            (state.beta * settings.entropy_decay.powi(k as i32)).max(settings.entropy_floor);
        state.done += k;
        on_update(&records, state)?;
    }
    Ok(())
}

/// The error that stops a search whose controller update would leave finite numbers.
pub fn diverged(search: usize, rollout: usize, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the controller of search {search} diverged at rollout {rollout} ({why}); the search stopped \
         without applying that update, so what was written (checkpoint included) holds finite \
         numbers and resumes. For a new run, lower controller_lr, entropy_beta or the penalties"
    )
}

/// The sum of a sequence's shaping terms, each computed as its decision was sampled.
pub fn shaping(space: &dyn SearchSpace, decisions: &[usize]) -> f64 {
    (1..=decisions.len())
        .map(|n| space.step_reward(&decisions[..n]))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_seeds_differ_across_rollouts_and_searches() {
        let mut seen = std::collections::HashSet::new();
        for s in 0..4 {
            for r in 1..=1000 {
                assert!(seen.insert(child_seed(search_seed(7, s), r)));
            }
        }
    }
}
