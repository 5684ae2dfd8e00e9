//! The general trainer's `fit` (`nn/train.rs`) for an MLP on `cpu_mlp.rs`'s loops: what the
//! final protocol (`final_training.rs`) runs for MLP children on a CPU. The same algorithm as
//! the libtorch path with Adam (libtorch's `torch::optim::Adam` formulas, its L2 penalty), a
//! cosine learning rate per step (SGDR, Loshchilov & Hutter 2017, without restarts), one seeded
//! permutation per epoch with a last batch of one dropped, optional early stopping, and the
//! weights of the best dev epoch kept; the same random streams, so a seed trains the same net
//! up to float rounding (a test compares the two). Dropout, gradient clipping and SGD stay on
//! libtorch: its dropout draws from libtorch's own generator, and with clipping at 0.5 two of
//! 30 heavily clipped trainings amplified the paths' rounding differences step by step (1e-8
//! to 1e-2 relative in the loss over ten epochs), beyond the 1e-5 the two paths are held to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::Device;

use super::cpu_mlp::{CpuChild, HostData, HostSplit};
use super::tensors::{Part, TrainData};
use super::train::{batch_lengths, cosine_lr, Ending, EpochStats, FitOutcome};
use crate::config::{Optimizer, TrainerSettings};

/// Whether `fit` here trains what the general trainer would: Adam, no gradient clipping, no
/// dropout, on a CPU.
pub fn applies(settings: &TrainerSettings, dropout: f64, device: Device) -> bool {
    settings.optimizer == Optimizer::Adam
        && settings.grad_clip == 0.0
        && dropout == 0.0
        && device == Device::Cpu
}

/// A host copy of the general trainer's splits, every input flattened to a row of features.
pub fn host_data(data: &TrainData) -> HostData {
    let split = |p: &Part| {
        let n = p.len();
        let x = Vec::<f32>::try_from(p.x.to_device(Device::Cpu).contiguous().view(-1))
            .expect("features are a float tensor");
        let y = Vec::<i64>::try_from(p.y.to_device(Device::Cpu).contiguous().view(-1))
            .expect("labels are an int64 tensor");
        (
            HostSplit {
                y: y.into_iter().map(|v| v as usize).collect(),
                x,
            },
            n,
        )
    };
    let (train, n) = split(&data.train);
    let (dev, _) = split(&data.dev);
    let (test, _) = split(&data.test);
    let n_features = data.input_shape().iter().product::<i64>().max(0) as usize;
    debug_assert!(n == 0 || train.x.len() == n * n_features);
    HostData {
        train,
        dev,
        test,
        n_features,
        n_classes: data.n_classes,
    }
}

/// Trains `child` on `data.train` judged by `data.dev`, as `train::fit` trains an `MlpNet` with
/// the same weights: the permutation of every epoch from a generator seeded with `seed`. With
/// `settings.keep_best` the child ends with the best dev epoch's weights. `settings` must be
/// valid and its optimiser Adam (`applies`).
pub fn fit(
    child: &mut CpuChild,
    data: &HostData,
    settings: &TrainerSettings,
    seed: u64,
    stop: &AtomicBool,
) -> FitOutcome {
    #[cfg(target_arch = "x86_64")]
    if super::cpu_mlp::use_avx2() {
        // SAFETY: `use_avx2` checked that the CPU has AVX2.
        return unsafe { fit_avx2(child, data, settings, seed, stop) };
    }
    fit_loop(child, data, settings, seed, stop)
}

/// `fit_loop` compiled with AVX2 enabled for everything it inlines.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fit_avx2(
    child: &mut CpuChild,
    data: &HostData,
    settings: &TrainerSettings,
    seed: u64,
    stop: &AtomicBool,
) -> FitOutcome {
    fit_loop(child, data, settings, seed, stop)
}

#[inline(always)]
fn fit_loop(
    child: &mut CpuChild,
    data: &HostData,
    settings: &TrainerSettings,
    seed: u64,
    stop: &AtomicBool,
) -> FitOutcome {
    let mut rng = Pcg64::seed_from_u64(seed);
    let n = data.train.len();
    let batch = settings.batch_size.max(1);
    let lengths = batch_lengths(n, batch);
    let total_steps = settings.epochs * lengths.len();
    child.reserve(batch.min(n.max(1)), n.max(data.dev.len()));
    let mut outcome = FitOutcome {
        epochs: Vec::new(),
        ending: Ending::Completed,
        best_epoch: None,
        best_dev_accuracy: 0.0,
        steps: 0,
    };
    let mut best_weights: Option<Vec<f32>> = None;
    let mut order: Vec<i64> = Vec::with_capacity(n);
    'epochs: for epoch in 0..settings.epochs {
        let started = Instant::now();
        // `child::permutation`'s draws: a fresh 0..n, shuffled.
        order.clear();
        order.extend(0..n as i64);
        order.shuffle(&mut rng);
        let first_lr = cosine_lr(settings.lr, settings.lr_min, outcome.steps, total_steps);
        let (mut loss_sum, mut seen, mut correct) = (0.0, 0usize, 0usize);
        let mut start = 0;
        for &len in &lengths {
            if stop.load(Ordering::Relaxed) {
                outcome.ending = Ending::Interrupted;
                break 'epochs;
            }
            let indices = &order[start..start + len];
            start += len;
            let lr = cosine_lr(settings.lr, settings.lr_min, outcome.steps, total_steps);
            let s = child.load_rows(&data.train, indices.iter().map(|&i| i as usize));
            child.backward(len, s, None::<(f64, &mut Pcg64)>);
            let (batch_loss, batch_correct) = child.batch_figures(len, s);
            // libtorch computes the batch's mean loss in f32.
            let value = (batch_loss / len as f64) as f32 as f64;
            if !value.is_finite() {
                outcome.epochs.push(EpochStats {
                    lr: first_lr,
                    train_loss: value,
                    train_accuracy: 0.0,
                    dev_loss: f64::NAN,
                    dev_accuracy: 0.0,
                    seconds: started.elapsed().as_secs_f64(),
                });
                outcome.ending = Ending::Diverged;
                break 'epochs;
            }
            child.adam_torch(lr, settings.weight_decay);
            outcome.steps += 1;
            loss_sum += value * len as f64;
            seen += len;
            correct += batch_correct;
        }
        let (dev_loss, dev_accuracy) = child.evaluate(&data.dev, true);
        outcome.epochs.push(EpochStats {
            lr: first_lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            dev_loss,
            dev_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        });
        let better = dev_accuracy > outcome.best_dev_accuracy
            || (settings.ties_to_later && dev_accuracy == outcome.best_dev_accuracy);
        if outcome.best_epoch.is_none() || better {
            outcome.best_epoch = Some(epoch);
            outcome.best_dev_accuracy = dev_accuracy;
            if settings.keep_best {
                best_weights = Some(child.params().to_vec());
            }
        } else if settings.patience > 0
            && epoch - outcome.best_epoch.unwrap_or(0) >= settings.patience
        {
            outcome.ending = Ending::EarlyStopped;
            break;
        }
    }
    if let Some(saved) = &best_weights {
        child.set_params(saved);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FinalSettings;
    use crate::data::{make_moons, split};
    use crate::nn::cpu_mlp::tests::{random_specs, relative};
    use crate::nn::final_training::{train_once, FinalJob};
    use crate::nn::mlp::{Activation, Layer, MlpSpec, ACTIVATIONS};

    fn splits() -> crate::data::Splits {
        split(&make_moons(1000, 0.2, 0), 0.7, 0.1)
    }

    fn moons() -> TrainData {
        TrainData::new(&splits(), Device::Cpu)
    }

    /// The kernel's training of `job` with `seed`, as `final_training` runs it.
    fn ours(job: &FinalJob, host: &HostData, seed: u64) -> (CpuChild, FitOutcome) {
        crate::nn::final_training::train_once_cpu(job, host, seed, &AtomicBool::new(false))
    }

    /// Every epoch's train and dev loss to 1e-5 relative, every accuracy, the best epoch, the
    /// ending and the kept weights the same.
    fn assert_same(what: &str, a: &FitOutcome, b: &FitOutcome) {
        assert_eq!(a.epochs.len(), b.epochs.len(), "{what}: epochs");
        assert_eq!((a.ending, a.steps), (b.ending, b.steps), "{what}");
        for (e, (x, y)) in a.epochs.iter().zip(&b.epochs).enumerate() {
            assert_eq!(x.lr, y.lr, "{what}, epoch {e}: lr");
            assert!(
                relative(x.train_loss, y.train_loss) <= 1e-5,
                "{what}, epoch {e}: train loss {} vs {}",
                x.train_loss,
                y.train_loss
            );
            assert!(
                relative(x.dev_loss, y.dev_loss) <= 1e-5,
                "{what}, epoch {e}: dev loss {} vs {}",
                x.dev_loss,
                y.dev_loss
            );
            assert_eq!(x.train_accuracy, y.train_accuracy, "{what}, epoch {e}");
            assert_eq!(x.dev_accuracy, y.dev_accuracy, "{what}, epoch {e}");
        }
        assert_eq!(
            (a.best_epoch, a.best_dev_accuracy),
            (b.best_epoch, b.best_dev_accuracy),
            "{what}"
        );
    }

    /// The oracle: the libtorch path (`train::fit` on an `MlpNet`, autograd and tch's Adam) from
    /// the same seed gives the same epochs, over random half-moon architectures with every
    /// activation, with the protocol's settings and with weight decay, another batch size and a
    /// floor under the cosine.
    #[test]
    fn final_trainings_match_the_libtorch_path() {
        tch::set_num_threads(crate::config::TORCH_THREADS);
        let data = moons();
        let tensors = crate::nn::child::TensorData::new(&splits(), Device::Cpu);
        let host = host_data(&data);
        let specs = random_specs(30, 21);
        for a in ACTIVATIONS {
            assert!(specs.iter().any(|s| s.layers.contains(&Layer::Act(a))));
        }
        let plain = FinalSettings {
            max_epochs: 25,
            ..FinalSettings::default()
        };
        let penalised = FinalSettings {
            weight_decay: 1e-3,
            batch_size: 29, // 700 = 24 * 29 + 4
            lr_min: 1e-3,
            ..plain.clone()
        };
        for (i, spec) in specs.iter().enumerate() {
            for settings in [&plain, &penalised] {
                let job = FinalJob::new(spec.clone(), settings);
                let seed = 500 + i as u64;
                let (mut child, a) = ours(&job, &host, seed);
                let (_, net, b) = train_once(&job, &data, seed, &AtomicBool::new(false)).unwrap();
                let what = format!("{spec:?}, wd {}", settings.weight_decay);
                assert_same(&what, &a, &b);
                // The kept weights test alike.
                let theirs = net.to_child();
                assert_eq!(
                    child.accuracy(&host.test),
                    theirs.accuracy(&tensors.test),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn the_protocol_trains_here_where_it_applies() {
        use crate::nn::final_training::train_seeds;
        tch::set_num_threads(crate::config::TORCH_THREADS);
        let data = moons();
        let host = host_data(&data);
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![Layer::Linear(5), Layer::Act(Activation::Sigmoid)],
        };
        let settings = FinalSettings {
            max_epochs: 4,
            ..FinalSettings::default()
        };
        let go = AtomicBool::new(false);
        let kept = |o: &FitOutcome| o.epochs[o.best_epoch.unwrap()].dev_loss;
        let job = FinalJob::new(spec.clone(), &settings);
        assert!(job.cpu_kernel && applies(&job.trainer, job.dropout, data.device));
        let here = train_seeds(&job, &data, &[2], &go).unwrap();
        assert_eq!(here.dev_losses, [kept(&ours(&job, &host, 2).1)]);
        // Switched off, or with dropout or clipping: libtorch's trainer.
        let off = FinalJob {
            cpu_kernel: false,
            ..job.clone()
        };
        let there = train_seeds(&off, &data, &[2], &go).unwrap();
        let (_, _, b) = train_once(&off, &data, 2, &go).unwrap();
        assert_eq!(there.dev_losses, [kept(&b)]);
        assert_ne!(
            here.dev_losses, there.dev_losses,
            "rounding differs between the paths"
        );
        let mut clipped = job.clone();
        clipped.trainer.grad_clip = 1.0;
        let dropped = FinalJob {
            dropout: 0.1,
            ..job.clone()
        };
        for j in [&clipped, &dropped] {
            assert!(!applies(&j.trainer, j.dropout, data.device));
        }
        let mut sgd = job.trainer.clone();
        sgd.optimizer = Optimizer::Sgd;
        assert!(!applies(&sgd, 0.0, data.device));
    }

    #[test]
    fn a_last_batch_of_one_is_dropped_and_early_stopping_waits_its_patience() {
        tch::set_num_threads(crate::config::TORCH_THREADS);
        let data = moons();
        let host = host_data(&data);
        assert_eq!(host.train.len(), 700);
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![Layer::Linear(6), Layer::Act(Activation::Tanh)],
        };
        let settings = FinalSettings {
            max_epochs: 60,
            batch_size: 233, // 700 = 3 * 233 + 1
            patience: 3,
            ..FinalSettings::default()
        };
        let job = FinalJob::new(spec, &settings);
        let (_, a) = ours(&job, &host, 3);
        let (_, _, b) = train_once(&job, &data, 3, &AtomicBool::new(false)).unwrap();
        assert_same("patience 3", &a, &b);
        // Three whole batches an epoch; the last point is left out.
        assert_eq!(a.steps, 3 * a.epochs.len());
        assert_eq!(a.ending, Ending::EarlyStopped, "{a:?}");
        assert_eq!(a.epochs.len(), a.best_epoch.unwrap() + 4);
    }

    #[test]
    fn a_stop_ends_training_and_divergence_is_reported() {
        let data = moons();
        let host = host_data(&data);
        let spec = MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![Layer::Linear(8), Layer::Act(Activation::ReLU)],
        };
        let job = FinalJob::new(spec.clone(), &FinalSettings::default());
        let mut child = CpuChild::new(&spec, &mut Pcg64::seed_from_u64(0));
        let stopped = fit(&mut child, &host, &job.trainer, 0, &AtomicBool::new(true));
        assert_eq!((stopped.ending, stopped.steps), (Ending::Interrupted, 0));
        let mut wild = FinalSettings::default().trainer(1e30, 32);
        wild.epochs = 5;
        let mut child = CpuChild::new(&spec, &mut Pcg64::seed_from_u64(0));
        let out = fit(&mut child, &host, &wild, 0, &AtomicBool::new(false));
        assert!(out.diverged(), "{out:?}");
        assert!(!out.epochs.last().unwrap().train_loss.is_finite());
    }
}
