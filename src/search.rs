//! The search loop of Zoph & Le (2016) as the half-moon demo runs it: sample architectures from
//! the controller, train each child, reward = shaping + dev accuracy, one REINFORCE update.
//! It sees a space only through `SearchSpace` and children only through `ChildTrainer`.

use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use rand_pcg::Pcg64;

use crate::child::{train_child, TensorData, TrainOutcome};
use crate::config::Settings;
use crate::controller::{Baseline, Controller};
use crate::mlp::MlpSpec;
use crate::space::SearchSpace;

/// A child to train: its architecture and the seed of its initial weights and batch order.
#[derive(Clone, Debug)]
pub struct ChildJob {
    pub spec: MlpSpec,
    pub seed: u64,
}

/// Trains a batch of children; implementations may train them one by one or all together.
pub trait ChildTrainer {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Vec<TrainOutcome>;
}

/// Trains children one after another with the fast single-child path.
pub struct SingleTrainer<'a> {
    pub data: &'a TensorData,
    pub settings: &'a crate::config::ChildSettings,
}

impl ChildTrainer for SingleTrainer<'_> {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Vec<TrainOutcome> {
        jobs.iter()
            .map(|job| train_child(&job.spec, self.data, self.settings, job.seed).1)
            .collect()
    }
}

/// Trains each batch of children together as one population (`population.rs`).
pub struct PopulationTrainer<'a> {
    pub data: &'a TensorData,
    pub settings: &'a crate::config::ChildSettings,
}

impl ChildTrainer for PopulationTrainer<'_> {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Vec<TrainOutcome> {
        let specs: Vec<MlpSpec> = jobs.iter().map(|j| j.spec.clone()).collect();
        let seeds: Vec<u64> = jobs.iter().map(|j| j.seed).collect();
        crate::population::train_population(&specs, &seeds, self.data, self.settings)
    }
}

/// Trains children with the fast single-child path on several threads at once: on a CPU, where
/// padded batches cost more arithmetic than they save in per-operation overhead.
pub struct ParallelTrainer<'a> {
    pub data: &'a TensorData,
    pub settings: &'a crate::config::ChildSettings,
    pub workers: usize,
}

impl ChildTrainer for ParallelTrainer<'_> {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Vec<TrainOutcome> {
        let workers = self.workers.min(jobs.len()).max(1);
        if workers == 1 {
            return SingleTrainer {
                data: self.data,
                settings: self.settings,
            }
            .train_batch(jobs);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let settings = self.settings;
        let mut results: Vec<(usize, TrainOutcome)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let data = self.data.shallow_clone();
                    let next = &next;
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((i, train_child(&job.spec, &data, settings, job.seed).1));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a training thread failed"))
                .collect()
        });
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, o)| o).collect()
    }
}

/// Worker threads for CPU training: `config::CPU_WORKERS`, or one per core when that is 0.
pub fn cpu_workers() -> usize {
    match crate::config::CPU_WORKERS {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
}

/// The trainer for batches of `batch` children: one at a time when there is one; on CUDA the
/// batched population; on a CPU the single path on every core.
pub fn trainer_for<'a>(
    batch: usize,
    data: &'a TensorData,
    settings: &'a crate::config::ChildSettings,
) -> Box<dyn ChildTrainer + 'a> {
    if batch <= 1 {
        Box::new(SingleTrainer { data, settings })
    } else if data.device.is_cuda() || crate::config::POPULATION_ON_CPU {
        Box::new(PopulationTrainer { data, settings })
    } else {
        Box::new(ParallelTrainer {
            data,
            settings,
            workers: cpu_workers(),
        })
    }
}

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
    pub fn checkpoint(&self) -> Vec<crate::checkpoint::SearchCheckpoint> {
        (0..self.controllers.len())
            .map(|s| {
                let (controller, adam_m, adam_v, adam_step) = self.controllers[s].state();
                crate::checkpoint::SearchCheckpoint {
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
        saved: &crate::checkpoint::Checkpoint,
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
/// stop; `on_update` gets each update's records (all searches) after the controllers learned.
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
        let mut sequences = Vec::with_capacity(settings.searches);
        let mut jobs = Vec::with_capacity(settings.searches * k);
        for s in 0..settings.searches {
            let seqs = state.controllers[s].sample(space, k, &mut state.rngs[s]);
            for (j, seq) in seqs.iter().enumerate() {
                let spec = space.decode(seq, data.n_features, data.n_classes);
                jobs.push(ChildJob {
                    spec,
                    seed: child_seed(search_seed(settings.seed, s), state.done + j + 1),
                });
            }
            sequences.push(seqs);
        }
        let outcomes = trainer.train_batch(&jobs);
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
            let stats = state.controllers[s].reinforce(
                seqs,
                &advantages,
                state.beta,
                settings.gamma,
                settings.controller_lr,
                settings.grad_clip,
            );
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
    fn parallel_training_gives_the_sequential_results() {
        use crate::data::{make_moons, split};
        let data = TensorData::new(&split(&make_moons(300, 0.2, 0), 0.7, 0.1), tch::Device::Cpu);
        let settings = crate::config::ChildSettings {
            max_epochs: 8,
            ..Default::default()
        };
        let space = crate::space::MlpSpace::new(&Settings::default());
        let jobs: Vec<ChildJob> = [
            "[8, Tanh, EOS]",
            "[EOS]",
            "[16, ReLU, 4, Sigmoid, 2, Tanh]",
            "[Tanh, 4, EOS]",
            "[2, EOS]",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| ChildJob {
            spec: space.decode(&space.parse(t).unwrap(), 2, 2),
            seed: i as u64,
        })
        .collect();
        let sequential = SingleTrainer {
            data: &data,
            settings: &settings,
        }
        .train_batch(&jobs);
        let parallel = ParallelTrainer {
            data: &data,
            settings: &settings,
            workers: 3,
        }
        .train_batch(&jobs);
        assert_eq!(sequential, parallel);
    }

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
