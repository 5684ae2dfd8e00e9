//! Who trains a batch of children: one at a time with the fast single path, on every CPU core
//! side by side, or on CUDA as one batched population (`population.rs`). Every trainer watches
//! a stop flag and gives up a batch it could not finish.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{ChildSettings, CPU_WORKERS, POPULATION_ON_CPU};
use crate::nn::child::{TensorData, TrainOutcome};
use crate::nn::cpu_mlp::train_fresh;
use crate::nn::mlp::MlpSpec;
use crate::outdir::Stop;

/// A child to train: its architecture, how to train it, and the seed of its initial weights,
/// batch order and dropout masks.
#[derive(Clone, Debug)]
pub struct ChildJob {
    pub spec: MlpSpec,
    pub settings: ChildSettings,
    pub seed: u64,
}

/// Trains a batch of children; the outcomes are in the order of the jobs. None when a stop
/// was requested before every child finished: the batch is then given up whole.
pub trait ChildTrainer {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Option<Vec<TrainOutcome>>;
}

/// One child after another, each on the path that applies (`cpu_mlp::train_fresh`: the
/// pure-Rust kernel on a CPU, else libtorch's fast path).
pub struct SingleTrainer<'a> {
    pub data: &'a TensorData,
    pub stop: Stop,
}

impl ChildTrainer for SingleTrainer<'_> {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Option<Vec<TrainOutcome>> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let outcome = train_fresh(&job.spec, self.data, &job.settings, job.seed, &self.stop);
            if self.stop.requested() {
                return None;
            }
            outcomes.push(outcome);
        }
        Some(outcomes)
    }
}

/// Children side by side on several threads, each on the path that applies (on a CPU the
/// pure-Rust kernel): where padded batches cost more arithmetic than they save in
/// per-operation overhead (BENCHMARKS.md).
pub struct ParallelTrainer<'a> {
    pub data: &'a TensorData,
    pub workers: usize,
    pub stop: Stop,
}

impl ChildTrainer for ParallelTrainer<'_> {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Option<Vec<TrainOutcome>> {
        let workers = self.workers.min(jobs.len()).max(1);
        if jobs
            .iter()
            .any(|j| crate::nn::cpu_mlp::applies(self.data, &j.settings))
        {
            self.data.host(); // the kernel's host copy, made once, before the threads share it
        }
        if workers == 1 {
            return SingleTrainer {
                data: self.data,
                stop: self.stop.clone(),
            }
            .train_batch(jobs);
        }
        // Workers take the next job from a shared counter: children differ in epochs.
        let next = AtomicUsize::new(0);
        let mut results: Vec<(usize, TrainOutcome)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let data = self.data.shallow_clone(); // tensors are Send, not Sync
                    let next = &next;
                    let stop = &self.stop;
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        while !stop.requested() {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((
                                i,
                                train_fresh(&job.spec, &data, &job.settings, job.seed, stop),
                            ));
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
        if self.stop.requested() {
            return None;
        }
        results.sort_by_key(|(i, _)| *i);
        Some(results.into_iter().map(|(_, o)| o).collect())
    }
}

/// Children with equal training settings and no dropout train together as one population;
/// the others (dropout needs per-child masks the batched program has not) one by one.
pub struct PopulationTrainer<'a> {
    pub data: &'a TensorData,
    pub stop: Stop,
}

impl ChildTrainer for PopulationTrainer<'_> {
    fn train_batch(&mut self, jobs: &[ChildJob]) -> Option<Vec<TrainOutcome>> {
        let mut outcomes: Vec<Option<TrainOutcome>> = vec![None; jobs.len()];
        let mut groups: Vec<(ChildSettings, Vec<usize>)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            if job.settings.dropout > 0.0 {
                outcomes[i] = Some(train_fresh(
                    &job.spec,
                    self.data,
                    &job.settings,
                    job.seed,
                    &self.stop,
                ));
                continue;
            }
            match groups.iter_mut().find(|(s, _)| *s == job.settings) {
                Some((_, members)) => members.push(i),
                None => groups.push((job.settings.clone(), vec![i])),
            }
        }
        for (settings, members) in groups {
            let specs: Vec<MlpSpec> = members.iter().map(|&i| jobs[i].spec.clone()).collect();
            let seeds: Vec<u64> = members.iter().map(|&i| jobs[i].seed).collect();
            let trained = crate::nn::population::train_population(
                &specs, &seeds, self.data, &settings, &self.stop,
            );
            for (i, o) in members.into_iter().zip(trained) {
                outcomes[i] = Some(o);
            }
        }
        if self.stop.requested() {
            return None;
        }
        // Every job is in a group or was trained alone, so every outcome is there.
        outcomes.into_iter().collect()
    }
}

/// Worker threads for CPU training: `config::CPU_WORKERS`, or one per core when that is 0.
pub fn cpu_workers() -> usize {
    match CPU_WORKERS {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
}

/// The trainer for batches of `batch` children: one at a time when there is one; on CUDA the
/// batched population; on a CPU the single path on every core. All stop when `stop` is set.
pub fn trainer_for<'a>(
    batch: usize,
    data: &'a TensorData,
    stop: &Stop,
) -> Box<dyn ChildTrainer + 'a> {
    let stop = stop.clone();
    if batch <= 1 {
        Box::new(SingleTrainer { data, stop })
    } else if data.device.is_cuda() || POPULATION_ON_CPU {
        Box::new(PopulationTrainer { data, stop })
    } else {
        Box::new(ParallelTrainer {
            data,
            workers: cpu_workers(),
            stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{make_moons, split};
    use crate::space::{MlpSpace, SearchSpace};

    fn single(data: &TensorData) -> SingleTrainer<'_> {
        SingleTrainer {
            data,
            stop: Stop::new(),
        }
    }

    fn jobs(settings: &ChildSettings) -> Vec<ChildJob> {
        let space = MlpSpace::new(&crate::config::Settings::default());
        [
            "[8, Tanh, EOS]",
            "[EOS]",
            "[16, ReLU, 4, Sigmoid, 2, Tanh]",
            "[Tanh, 4, EOS]",
            "[2, EOS]",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| ChildJob {
            spec: crate::space::halfmoon::mlp_spec(&space.parse(t).unwrap(), 2, 2),
            settings: settings.clone(),
            seed: i as u64,
        })
        .collect()
    }

    #[test]
    fn every_trainer_gives_the_sequential_results() {
        let data = TensorData::new(&split(&make_moons(300, 0.2, 0), 0.7, 0.1), tch::Device::Cpu);
        let mut jobs = jobs(&ChildSettings {
            max_epochs: 8,
            ..Default::default()
        });
        // One child with other settings and one with dropout: the population groups them apart.
        jobs[1].settings.lr = 0.05;
        jobs[3].settings.dropout = 0.2;
        let stop = Stop::new();
        let sequential = single(&data).train_batch(&jobs).unwrap();
        let parallel = ParallelTrainer {
            data: &data,
            workers: 3,
            stop: stop.clone(),
        }
        .train_batch(&jobs)
        .unwrap();
        assert_eq!(sequential, parallel);
        let population = PopulationTrainer { data: &data, stop }
            .train_batch(&jobs)
            .unwrap();
        for (a, b) in sequential.iter().zip(&population) {
            assert_eq!(a.epochs, b.epochs);
            assert!((a.accuracy - b.accuracy).abs() < 1e-4);
        }
    }

    #[test]
    fn a_stopped_batch_is_given_up_by_every_trainer() {
        let data = TensorData::new(&split(&make_moons(300, 0.2, 0), 0.7, 0.1), tch::Device::Cpu);
        let mut jobs = jobs(&ChildSettings::default());
        jobs[3].settings.dropout = 0.2;
        let stop = Stop::new();
        stop.request();
        let trainers: Vec<Box<dyn ChildTrainer>> = vec![
            Box::new(SingleTrainer {
                data: &data,
                stop: stop.clone(),
            }),
            Box::new(ParallelTrainer {
                data: &data,
                workers: 2,
                stop: stop.clone(),
            }),
            Box::new(PopulationTrainer {
                data: &data,
                stop: stop.clone(),
            }),
        ];
        for mut trainer in trainers {
            assert!(trainer.train_batch(&jobs).is_none());
        }
    }

    #[test]
    fn dropout_changes_training_and_is_seeded() {
        let data = TensorData::new(&split(&make_moons(300, 0.2, 0), 0.7, 0.1), tch::Device::Cpu);
        let plain = jobs(&ChildSettings {
            max_epochs: 5,
            patience: 100,
            ..Default::default()
        });
        let dropped = jobs(&ChildSettings {
            max_epochs: 5,
            patience: 100,
            dropout: 0.3,
            ..Default::default()
        });
        let a = single(&data).train_batch(&dropped[2..3]).unwrap();
        let b = single(&data).train_batch(&dropped[2..3]).unwrap();
        let c = single(&data).train_batch(&plain[2..3]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a[0].history, c[0].history);
    }
}
