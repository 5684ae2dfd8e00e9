//! The final training of a chosen architecture (docs/algorithms.md §3), separate from the
//! search's brief child training: the general trainer (`nn::train`) runs every epoch of a long
//! cosine schedule (SGDR, Loshchilov & Hutter 2017, without restarts) with the children's Adam,
//! and keeps the weights of the last epoch that reached the best dev accuracy. Each seed gives
//! one training; the trained nets come back as fast-path children for testing and plots.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::nn;

use super::cpu_fit;
use super::cpu_mlp::{CpuChild, HostData};
use super::mlp_net::MlpNet;
use super::tensors::{Part, TrainData};
use super::train::{train_new, Ending, FitOutcome};
use crate::config::{ChildSettings, FinalSettings, TrainerSettings};
use crate::error::UsageError;
use crate::nn::child::{Child, TensorData, TensorSplit};
use crate::nn::mlp::MlpSpec;
use crate::selection::Trained;

/// An architecture and how the final protocol trains it.
#[derive(Clone, Debug)]
pub struct FinalJob {
    pub spec: MlpSpec,
    /// Dropout after every activation (a choice-list configuration may ask for it).
    pub dropout: f64,
    pub trainer: TrainerSettings,
    /// On a CPU, train with `cpu_fit.rs` (Adam, no dropout) instead of libtorch
    /// (`child.cpu_kernel`).
    pub cpu_kernel: bool,
}

impl FinalJob {
    /// The protocol's own settings: a half-moon architecture.
    pub fn new(spec: MlpSpec, settings: &FinalSettings) -> FinalJob {
        FinalJob {
            spec,
            dropout: 0.0,
            trainer: settings.trainer(settings.lr, settings.batch_size),
            cpu_kernel: crate::config::CPU_KERNEL,
        }
    }

    /// A child that sets its own learning rate, batch size and dropout (a choice-list
    /// configuration, read with `child_defaults` as defaults); the schedule, the epochs and the
    /// choice of weights stay the protocol's.
    pub fn with_child(spec: MlpSpec, settings: &FinalSettings, child: &ChildSettings) -> FinalJob {
        FinalJob {
            spec,
            dropout: child.dropout,
            trainer: settings.trainer(child.lr, child.batch_size),
            cpu_kernel: child.cpu_kernel,
        }
    }
}

/// The child settings a configuration's keys override in the final training: the protocol's
/// learning rate and batch size, no dropout.
pub fn child_defaults(settings: &FinalSettings, child: &ChildSettings) -> ChildSettings {
    ChildSettings {
        lr: settings.lr,
        batch_size: settings.batch_size,
        dropout: 0.0,
        ..child.clone()
    }
}

/// The fast path's tensors as the general trainer takes them (the same tensors, not copies).
pub fn train_data(tensors: &TensorData) -> TrainData {
    let part = |s: &TensorSplit| Part {
        x: s.x.shallow_clone(),
        y: s.y.shallow_clone(),
    };
    TrainData {
        train: part(&tensors.train),
        dev: part(&tensors.dev),
        test: part(&tensors.test),
        n_classes: tensors.n_classes,
        device: tensors.device,
    }
}

/// One final training of `job` with `seed`: the initial weights come from a generator seeded
/// from `seed` (drawn as `Child::new` draws them), the batch order from the trainer's.
pub fn train_once(
    job: &FinalJob,
    data: &TrainData,
    seed: u64,
    stop: &AtomicBool,
) -> Result<(nn::VarStore, MlpNet, FitOutcome)> {
    let init_seed = crate::seeds::splitmix64(seed ^ INIT_STREAM);
    let build = |p: &nn::Path| {
        MlpNet::new(
            p,
            &job.spec,
            job.dropout,
            &mut Pcg64::seed_from_u64(init_seed),
        )
    };
    train_new(build, data, &job.trainer, seed, stop)
}

/// `train_once` on `cpu_fit.rs`'s loops, from the same draws (for an Adam job without dropout
/// on a CPU: `cpu_fit::applies`).
pub fn train_once_cpu(
    job: &FinalJob,
    data: &HostData,
    seed: u64,
    stop: &AtomicBool,
) -> (CpuChild, FitOutcome) {
    let init_seed = crate::seeds::splitmix64(seed ^ INIT_STREAM);
    let mut child = CpuChild::new(&job.spec, &mut Pcg64::seed_from_u64(init_seed));
    let outcome = cpu_fit::fit(&mut child, data, &job.trainer, seed, stop);
    (child, outcome)
}

/// Keeps the initial weights' generator apart from the batch order's, which uses `seed` itself.
const INIT_STREAM: u64 = 0x1417_1417_1417_1417;

/// What the final trainings of one architecture produced: per seed, the trained child (with the
/// weights it kept) and how training went.
pub struct Trainings {
    pub children: Vec<Child>,
    pub outcomes: Vec<FitOutcome>,
}

/// Trains `job` once per seed; the dev accuracy and loss of each are those of the weights it
/// kept. An interrupted training is dropped and ends the series (`interrupted` set).
pub fn train_seeds(
    job: &FinalJob,
    data: &TrainData,
    seeds: &[u64],
    stop: &AtomicBool,
) -> Result<Trained<Trainings>> {
    let mut out = Trained {
        dev_accuracies: Vec::new(),
        dev_losses: Vec::new(),
        payload: Trainings {
            children: Vec::new(),
            outcomes: Vec::new(),
        },
        interrupted: false,
    };
    let kernel = job.cpu_kernel && cpu_fit::applies(&job.trainer, job.dropout, data.device);
    if kernel {
        job.trainer.validate().map_err(UsageError::new)?;
    }
    let host = kernel.then(|| cpu_fit::host_data(data));
    for &seed in seeds {
        if stop.load(Ordering::Relaxed) {
            out.interrupted = true;
            break;
        }
        let (child, outcome) = match &host {
            Some(host) => {
                // Leaves libtorch's generator as the libtorch path (`train_new`) leaves it.
                tch::manual_seed(seed as i64);
                let (child, outcome) = train_once_cpu(job, host, seed, stop);
                (child.to_child(data.device), outcome)
            }
            None => {
                let (_vs, net, outcome) = train_once(job, data, seed, stop)?;
                (net.to_child(), outcome)
            }
        };
        if outcome.ending == Ending::Interrupted {
            out.interrupted = true;
            break;
        }
        // Without a finished epoch (diverged in the first) nothing was kept: it scores 0.
        let (dev, loss) = match outcome.best_epoch {
            Some(e) => (outcome.best_dev_accuracy, outcome.epochs[e].dev_loss),
            None => (0.0, f64::INFINITY),
        };
        out.dev_accuracies.push(dev);
        out.dev_losses.push(loss);
        out.payload.children.push(child);
        out.payload.outcomes.push(outcome);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{make_moons, split, Dataset, Splits};
    use crate::nn::mlp::{Activation, Layer};
    use tch::Device;

    fn quick(epochs: usize) -> FinalSettings {
        FinalSettings {
            max_epochs: epochs,
            ..FinalSettings::default()
        }
    }

    /// Points in the square [-1, 1]^2 labelled by the side of the line x1 = x2 they lie on,
    /// none closer to it than 0.3 along an axis: a linear map separates them exactly.
    fn separable(n: usize) -> Dataset {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        let mut i = 0u64;
        while labels.len() < n {
            i += 1;
            // A fixed low-discrepancy sequence: no generator involved.
            let (a, b) = (
                2.0 * ((i as f64 * 0.618_034) % 1.0) - 1.0,
                2.0 * ((i as f64 * 0.754_877) % 1.0) - 1.0,
            );
            if (a - b).abs() < 0.3 {
                continue;
            }
            features.extend([a as f32, b as f32]);
            labels.push(i64::from(a > b));
        }
        Dataset {
            features,
            labels,
            n_features: 2,
            n_classes: 2,
        }
    }

    fn tensors(splits: &Splits) -> TensorData {
        TensorData::new(splits, Device::Cpu)
    }

    #[test]
    fn a_linearly_separable_toy_is_learned_exactly() {
        let splits = split(&separable(400), 0.7, 0.1);
        let t = tensors(&splits);
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![],
        };
        let job = FinalJob::new(spec, &quick(60));
        let stop = AtomicBool::new(false);
        let trained = train_seeds(&job, &train_data(&t), &[1, 2], &stop).unwrap();
        assert_eq!(trained.dev_accuracies, [1.0, 1.0]);
        for child in &trained.payload.children {
            assert_eq!(child.accuracy(&t.test), 1.0);
            assert_eq!(child.accuracy(&t.train), 1.0);
        }
        assert!(!trained.interrupted);
    }

    #[test]
    fn the_kept_weights_are_the_last_epoch_with_the_best_dev_accuracy() {
        let splits = split(&make_moons(300, 0.3, 4), 0.7, 0.1);
        let t = tensors(&splits);
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![Layer::Linear(8), Layer::Act(Activation::Tanh)],
        };
        let job = FinalJob::new(spec, &quick(30));
        let stop = AtomicBool::new(false);
        let trained = train_seeds(&job, &train_data(&t), &[7], &stop).unwrap();
        let outcome = &trained.payload.outcomes[0];
        let dev: Vec<f64> = outcome.epochs.iter().map(|e| e.dev_accuracy).collect();
        assert_eq!(dev.len(), 30, "every epoch runs");
        let top = dev.iter().copied().fold(0.0, f64::max);
        let last_top = dev.iter().rposition(|&a| a == top);
        assert_eq!(outcome.best_epoch, last_top);
        assert_eq!(trained.dev_accuracies, [top]);
        let child = &trained.payload.children[0];
        let loss = child
            .forward(&t.dev.x)
            .cross_entropy_for_logits(&t.dev.y)
            .double_value(&[]);
        assert!((trained.dev_losses[0] - loss).abs() < 1e-6);
        // The returned child scores that on dev, recomputed by its own forward pass.
        assert_eq!(trained.payload.children[0].accuracy(&t.dev), top);
        // The cosine runs down to lr_min: the last epoch starts near it.
        assert!(outcome.epochs[29].lr < 0.01 * 0.01);
    }

    #[test]
    fn a_seed_repeats_a_training_and_the_stop_flag_ends_the_series() {
        let splits = split(&make_moons(200, 0.2, 1), 0.7, 0.1);
        let t = tensors(&splits);
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![Layer::Linear(4), Layer::Act(Activation::ReLU)],
        };
        let job = FinalJob::new(spec, &quick(5));
        let data = train_data(&t);
        let go = AtomicBool::new(false);
        let run = |seed| train_seeds(&job, &data, &[seed], &go).unwrap();
        let (a, b, c) = (run(3), run(3), run(4));
        let params = |t: &Trained<Trainings>| {
            Vec::<f32>::try_from(t.payload.children[0].params().shallow_clone()).unwrap()
        };
        assert_eq!(params(&a), params(&b));
        assert_ne!(params(&a), params(&c));
        let stop = AtomicBool::new(true);
        let stopped = train_seeds(&job, &data, &[1, 2], &stop).unwrap();
        assert!(stopped.interrupted && stopped.dev_accuracies.is_empty());
    }

    #[test]
    fn a_configuration_sets_its_own_rate_batch_and_dropout() {
        let settings = FinalSettings::default();
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![],
        };
        let defaults = child_defaults(&settings, &ChildSettings::default());
        assert_eq!(
            (defaults.lr, defaults.batch_size, defaults.dropout),
            (settings.lr, settings.batch_size, 0.0)
        );
        let child = ChildSettings {
            lr: 0.03,
            batch_size: 16,
            dropout: 0.2,
            max_epochs: 7,
            patience: 2,
            ..ChildSettings::default()
        };
        let job = FinalJob::with_child(spec, &settings, &child);
        assert_eq!((job.trainer.lr, job.trainer.batch_size), (0.03, 16));
        assert_eq!(job.dropout, 0.2);
        assert_eq!(job.trainer.epochs, settings.max_epochs);
        assert!(job.trainer.keep_best && job.trainer.ties_to_later);
    }
}
