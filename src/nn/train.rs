//! One trainer for any tch network (an `nn::ModuleT`), the child training of the conv searches
//! (ENAS, Pham et al. 2018; DARTS, Liu et al. 2019): autograd, tch's SGD (momentum, Nesterov,
//! weight decay) or Adam, a cosine learning rate per step (SGDR, Loshchilov & Hutter 2017,
//! without restarts), gradient clipping by global norm, train and eval modes, mini-batches from
//! a seeded permutation per epoch, early stopping on dev accuracy keeping the best weights,
//! divergence detection, and a stop flag checked before every step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Kind, Tensor};

use super::tensors::{Part, TrainData};
use crate::config::{Optimizer, TrainerSettings, ADAM_BETAS, ADAM_EPS, GRAD_CLIP_EPS};
use crate::error::UsageError;
use crate::nn::child::permutation;

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochStats {
    /// Learning rate at the epoch's first step.
    pub lr: f64,
    /// Mean cross-entropy and accuracy over the epoch's mini-batches, in train mode.
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Mean cross-entropy and accuracy on the dev split after the epoch, in eval mode.
    pub dev_loss: f64,
    pub dev_accuracy: f64,
    pub seconds: f64,
}

/// Why training ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Every epoch ran.
    Completed,
    /// `patience` epochs in a row did not beat the best dev accuracy.
    EarlyStopped,
    /// A loss or the gradients' norm became NaN or infinite; the last epoch is the partial one
    /// where it happened, with the step's loss as train loss and dev accuracy 0.
    Diverged,
    /// The stop flag was set; the interrupted epoch is not recorded.
    Interrupted,
}

/// How a training went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitOutcome {
    pub epochs: Vec<EpochStats>,
    pub ending: Ending,
    /// The epoch (from 0) of the best dev accuracy: on ties the first one, or the last with
    /// `ties_to_later`.
    pub best_epoch: Option<usize>,
    pub best_dev_accuracy: f64,
    /// Optimiser steps taken.
    pub steps: usize,
}

impl FitOutcome {
    pub fn diverged(&self) -> bool {
        self.ending == Ending::Diverged
    }
}

/// The cosine schedule: `lr_min + (lr - lr_min) (1 + cos(pi step / total)) / 2`, from `lr` at
/// step 0 down to `lr_min` at step `total`.
pub fn cosine_lr(lr: f64, lr_min: f64, step: usize, total: usize) -> f64 {
    let progress = step as f64 / total.max(1) as f64;
    lr_min + 0.5 * (lr - lr_min) * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Scales the gradients of `params` so that their global L2 norm is at most `max_norm` (by
/// `max_norm / (norm + GRAD_CLIP_EPS)` when above); returns the norm before clipping.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let _guard = tch::no_grad_guard();
    let grads: Vec<Tensor> = params
        .iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .collect();
    if grads.is_empty() {
        return 0.0;
    }
    let squares: Vec<Tensor> = grads
        .iter()
        .map(|g| g.to_kind(Kind::Double).square().sum(Kind::Double))
        .collect();
    let norm = Tensor::stack(&squares, 0)
        .sum(Kind::Double)
        .sqrt()
        .double_value(&[]);
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + GRAD_CLIP_EPS);
        for mut g in grads {
            let _ = g.g_mul_scalar_(scale);
        }
    }
    norm
}

/// Mean cross-entropy and accuracy of `model` in eval mode on `part`, `batch` examples at a time.
pub fn evaluate<M: ModuleT>(model: &M, part: &Part, batch: usize) -> (f64, f64) {
    let _guard = tch::no_grad_guard();
    let n = part.len();
    let (mut loss, mut correct) = (0.0, 0i64);
    let mut start = 0;
    while start < n {
        let len = batch.max(1).min(n - start);
        let x = part.x.narrow(0, start as i64, len as i64);
        let y = part.y.narrow(0, start as i64, len as i64);
        let logits = model.forward_t(&x, false);
        loss += logits.cross_entropy_for_logits(&y).double_value(&[]) * len as f64;
        correct += logits
            .argmax(-1, false)
            .eq_tensor(&y)
            .sum(Kind::Int64)
            .int64_value(&[]);
        start += len;
    }
    let n = n.max(1) as f64;
    (loss / n, correct as f64 / n)
}

/// Test accuracy of a trained model.
pub fn test_accuracy<M: ModuleT>(model: &M, data: &TrainData, settings: &TrainerSettings) -> f64 {
    evaluate(model, &data.test, settings.eval_batch_size).1
}

/// Copies of every variable of `vs`, batch-norm statistics included.
fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let _guard = tch::no_grad_guard();
    vs.variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().copy()))
        .collect()
}

fn restore(vs: &nn::VarStore, saved: &[(String, Tensor)]) {
    let _guard = tch::no_grad_guard();
    let mut vars = vs.variables();
    for (name, value) in saved {
        if let Some(var) = vars.get_mut(name) {
            var.copy_(value);
        }
    }
}

/// Mini-batch lengths of an epoch over `n` examples: a last batch of a single example is
/// dropped (batch norm cannot normalise it in train mode).
pub fn batch_lengths(n: usize, batch: usize) -> Vec<usize> {
    let mut lengths = vec![batch; n / batch];
    match n % batch {
        0 => {}
        1 if n > 1 => {}
        rest => lengths.push(rest),
    }
    lengths
}

/// Trains `model`, whose variables are those of `vs`, on `data.train`, judging by `data.dev`;
/// the permutation of every epoch is drawn from a generator seeded with `seed`. Returns the
/// epochs' figures; with `settings.keep_best` the model ends with the best dev epoch's weights.
/// Draws of libtorch's own generator (initial weights, dropout) follow `tch::manual_seed`, which
/// `train_new` sets.
pub fn fit<M: ModuleT>(
    vs: &nn::VarStore,
    model: &M,
    data: &TrainData,
    settings: &TrainerSettings,
    seed: u64,
    stop: &AtomicBool,
) -> Result<FitOutcome> {
    fit_observed(vs, model, data, settings, seed, stop, &mut |_| {})
}

/// `fit`, calling `on_epoch` with every completed epoch's figures while the model holds that
/// epoch's weights (for example to test it after every epoch, as a tabular benchmark does).
pub fn fit_observed<M: ModuleT>(
    vs: &nn::VarStore,
    model: &M,
    data: &TrainData,
    settings: &TrainerSettings,
    seed: u64,
    stop: &AtomicBool,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<FitOutcome> {
    settings.validate().map_err(UsageError::new)?;
    let mut opt = match settings.optimizer {
        Optimizer::Sgd => nn::Sgd {
            momentum: settings.momentum,
            dampening: 0.0,
            wd: settings.weight_decay,
            nesterov: settings.nesterov,
        }
        .build(vs, settings.lr),
        Optimizer::Adam => nn::Adam {
            beta1: ADAM_BETAS.0,
            beta2: ADAM_BETAS.1,
            wd: settings.weight_decay,
            eps: ADAM_EPS,
            amsgrad: false,
        }
        .build(vs, settings.lr),
    }
    .context("cannot build the optimiser")?;
    let params = vs.trainable_variables();
    let mut rng = Pcg64::seed_from_u64(seed);
    let n = data.train.len();
    let lengths = batch_lengths(n, settings.batch_size);
    let total_steps = settings.epochs * lengths.len();
    let mut outcome = FitOutcome {
        epochs: Vec::new(),
        ending: Ending::Completed,
        best_epoch: None,
        best_dev_accuracy: 0.0,
        steps: 0,
    };
    let mut best_weights = None;
    'epochs: for epoch in 0..settings.epochs {
        let started = Instant::now();
        let order = permutation(n, &mut rng, data.device);
        let first_lr = cosine_lr(settings.lr, settings.lr_min, outcome.steps, total_steps);
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        let mut correct = Tensor::zeros([], (Kind::Int64, data.device));
        let mut start = 0i64;
        for &len in &lengths {
            if stop.load(Ordering::Relaxed) {
                outcome.ending = Ending::Interrupted;
                break 'epochs;
            }
            let index = order.narrow(0, start, len as i64);
            start += len as i64;
            let (x, y) = (
                data.train.x.index_select(0, &index),
                data.train.y.index_select(0, &index),
            );
            opt.set_lr(cosine_lr(
                settings.lr,
                settings.lr_min,
                outcome.steps,
                total_steps,
            ));
            let logits = model.forward_t(&x, true);
            let loss = logits.cross_entropy_for_logits(&y);
            opt.zero_grad();
            loss.backward();
            let value = loss.double_value(&[]);
            let norm = if settings.grad_clip > 0.0 {
                clip_grad_norm(&params, settings.grad_clip)
            } else {
                0.0
            };
            if !value.is_finite() || !norm.is_finite() {
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
            opt.step();
            outcome.steps += 1;
            loss_sum += value * len as f64;
            seen += len;
            correct += logits
                .detach()
                .argmax(-1, false)
                .eq_tensor(&y)
                .sum(Kind::Int64);
        }
        let (dev_loss, dev_accuracy) = evaluate(model, &data.dev, settings.eval_batch_size);
        outcome.epochs.push(EpochStats {
            lr: first_lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct.int64_value(&[]) as f64 / seen.max(1) as f64,
            dev_loss,
            dev_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        });
        if let Some(stats) = outcome.epochs.last() {
            on_epoch(stats);
        }
        let better = dev_accuracy > outcome.best_dev_accuracy
            || (settings.ties_to_later && dev_accuracy == outcome.best_dev_accuracy);
        if outcome.best_epoch.is_none() || better {
            outcome.best_epoch = Some(epoch);
            outcome.best_dev_accuracy = dev_accuracy;
            if settings.keep_best {
                best_weights = Some(snapshot(vs));
            }
        } else if settings.patience > 0
            && epoch - outcome.best_epoch.unwrap_or(0) >= settings.patience
        {
            outcome.ending = Ending::EarlyStopped;
            break;
        }
    }
    if let Some(saved) = &best_weights {
        restore(vs, saved);
    }
    Ok(outcome)
}

/// Seeds libtorch with `seed`, builds a model with `build` on `data`'s device, and trains it
/// with `fit`; returns the variables, the model and how training went.
pub fn train_new<M: ModuleT>(
    build: impl FnOnce(&nn::Path) -> M,
    data: &TrainData,
    settings: &TrainerSettings,
    seed: u64,
    stop: &AtomicBool,
) -> Result<(nn::VarStore, M, FitOutcome)> {
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(data.device);
    let model = build(&vs.root());
    let outcome = fit(&vs, &model, data, settings, seed, stop)?;
    Ok((vs, model, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{make_moons, split};
    use std::sync::atomic::AtomicUsize;
    use tch::Device;

    fn moons(n: usize) -> TrainData {
        TrainData::new(&split(&make_moons(n, 0.2, 0), 0.7, 0.1), Device::Cpu)
    }

    fn quick(epochs: usize) -> TrainerSettings {
        TrainerSettings {
            epochs,
            batch_size: 32,
            keep_best: false,
            ..TrainerSettings::default()
        }
    }

    /// A small net with batch norm whose train-mode output flips sign after `flip_after` steps:
    /// from then on training un-learns what eval mode scores, so dev accuracy falls.
    #[derive(Debug)]
    struct FlipsAfter {
        net: nn::SequentialT,
        calls: AtomicUsize,
        flip_after: usize,
    }

    impl FlipsAfter {
        fn new(p: &nn::Path, flip_after: usize) -> FlipsAfter {
            let net = nn::seq_t()
                .add(nn::linear(p / "l1", 2, 16, Default::default()))
                .add(nn::batch_norm1d(p / "bn", 16, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(p / "l2", 16, 2, Default::default()));
            FlipsAfter {
                net,
                calls: AtomicUsize::new(0),
                flip_after,
            }
        }
    }

    impl ModuleT for FlipsAfter {
        fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
            let out = self.net.forward_t(xs, train);
            if train && self.calls.fetch_add(1, Ordering::Relaxed) >= self.flip_after {
                -out
            } else {
                out
            }
        }
    }

    #[test]
    fn the_cosine_schedule_matches_its_closed_form() {
        let (lr, min) = (0.1, 0.02);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(cosine_lr(lr, min, 0, 100), 0.1));
        assert!(close(cosine_lr(lr, min, 100, 100), 0.02));
        assert!(close(cosine_lr(lr, min, 50, 100), 0.06));
        // cos(pi/4) = sqrt(2)/2: a quarter of the way the rate is min + (lr - min)(2 + sqrt 2)/4.
        let root2 = 2f64.sqrt();
        assert!(close(
            cosine_lr(lr, min, 25, 100),
            0.02 + 0.08 * (2.0 + root2) / 4.0
        ));
        assert!(close(
            cosine_lr(lr, min, 75, 100),
            0.02 + 0.08 * (2.0 - root2) / 4.0
        ));
        // cos(pi/3) = 1/2: a third of the way, three quarters of the range remain.
        assert!(close(cosine_lr(lr, min, 1, 3), 0.02 + 0.08 * 0.75));
    }

    #[test]
    fn sgd_steps_follow_the_cosine_schedule() {
        // One batch per epoch (the whole train split) and plain SGD: every step is
        // w -= lr_t * grad, replayed here by hand with autograd.
        let data = moons(100);
        let settings = TrainerSettings {
            optimizer: Optimizer::Sgd,
            lr: 0.5,
            lr_min: 0.1,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            epochs: 5,
            batch_size: 1000,
            grad_clip: 0.0,
            keep_best: false,
            ..TrainerSettings::default()
        };
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = nn::linear(vs.root(), 2, 2, Default::default());
        let (w0, b0) = (
            model.ws.detach().copy(),
            model.bs.as_ref().unwrap().detach().copy(),
        );
        let stop = AtomicBool::new(false);
        let outcome = fit(&vs, &model, &data, &settings, 0, &stop).unwrap();
        assert_eq!((outcome.steps, outcome.ending), (5, Ending::Completed));
        let (mut w, mut b) = (w0, b0);
        for step in 0..5 {
            let (wv, bv) = (w.set_requires_grad(true), b.set_requires_grad(true));
            let loss = data
                .train
                .x
                .matmul(&wv.tr())
                .g_add(&bv)
                .cross_entropy_for_logits(&data.train.y);
            loss.backward();
            let lr = cosine_lr(0.5, 0.1, step, 5);
            assert!((outcome.epochs[step].lr - lr).abs() < 1e-15);
            let _guard = tch::no_grad_guard();
            w = (&wv - wv.grad() * lr).detach();
            b = (&bv - bv.grad() * lr).detach();
        }
        let diff = (&model.ws - &w).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "weights differ from the hand replay by {diff}");
    }

    #[test]
    fn clipping_scales_to_the_global_norm_computed_by_hand() {
        // Gradients (3, 4) and (12): global norm sqrt(9 + 16 + 144) = 13.
        let a = Tensor::zeros([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let b = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let loss =
            (&a * Tensor::from_slice(&[3f32, 4.0])).sum(Kind::Float) + (&b * 12.0).sum(Kind::Float);
        loss.backward();
        let params = [a.shallow_clone(), b.shallow_clone()];
        assert_eq!(clip_grad_norm(&params, 20.0), 13.0);
        assert_eq!(
            Vec::<f32>::try_from(a.grad()).unwrap(),
            [3.0, 4.0],
            "under the limit: unchanged"
        );
        assert_eq!(clip_grad_norm(&params, 6.5), 13.0);
        let scale = (6.5 / (13.0 + 1e-6)) as f32;
        let ga = Vec::<f32>::try_from(a.grad()).unwrap();
        let gb = Vec::<f32>::try_from(b.grad()).unwrap();
        for (got, want) in ga
            .iter()
            .chain(&gb)
            .zip([3.0 * scale, 4.0 * scale, 12.0 * scale])
        {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!(
            (clip_grad_norm(&params, 100.0) - 6.5).abs() < 1e-5,
            "the clipped norm is 6.5"
        );
    }

    #[test]
    fn a_nan_in_the_data_is_reported_as_divergence() {
        let mut splits = split(&make_moons(200, 0.2, 0), 0.7, 0.1);
        splits.train.features[7] = f32::NAN;
        let data = TrainData::new(&splits, Device::Cpu);
        let stop = AtomicBool::new(false);
        let build = |p: &nn::Path| nn::linear(p, 2, 2, Default::default());
        let (_, _, outcome) = train_new(build, &data, &quick(10), 0, &stop).unwrap();
        assert_eq!(outcome.ending, Ending::Diverged);
        assert!(outcome.diverged());
        // Stopped in the first epoch, at the batch holding the point.
        assert_eq!(outcome.epochs.len(), 1);
        assert!(outcome.epochs[0].train_loss.is_nan());
        assert!(outcome.steps < 5, "{} steps", outcome.steps);
    }

    /// Logits `x * sqrt(w)` with `w` starting at 0: a finite loss whose gradient is not.
    #[derive(Debug)]
    struct InfiniteGradient {
        w: Tensor,
    }

    impl ModuleT for InfiniteGradient {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            xs * self.w.sqrt()
        }
    }

    #[test]
    fn an_infinite_gradient_is_caught_before_the_step() {
        let stop = AtomicBool::new(false);
        let build = |p: &nn::Path| InfiniteGradient {
            w: p.zeros("w", &[2]),
        };
        let (vs, _, outcome) = train_new(build, &moons(100), &quick(3), 0, &stop).unwrap();
        assert_eq!((outcome.ending, outcome.steps), (Ending::Diverged, 0));
        // The loss was finite (ln 2: all logits 0); the weights were not touched.
        assert!((outcome.epochs[0].train_loss - 2f64.ln()).abs() < 1e-6);
        assert_eq!(
            vs.trainable_variables()[0]
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn settings_out_of_range_are_refused_before_training() {
        let stop = AtomicBool::new(false);
        let build = |p: &nn::Path| nn::linear(p, 2, 2, Default::default());
        for bad in [
            TrainerSettings {
                lr: 1e38,
                ..quick(1)
            },
            TrainerSettings {
                lr: f64::NAN,
                ..quick(1)
            },
            TrainerSettings {
                batch_size: 0,
                ..quick(1)
            },
            TrainerSettings {
                momentum: 0.0,
                nesterov: true,
                ..quick(1)
            },
        ] {
            let err = train_new(build, &moons(100), &bad, 0, &stop).unwrap_err();
            assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
        }
    }

    #[test]
    fn the_stop_flag_ends_training_before_the_next_step() {
        let stop = AtomicBool::new(true);
        let build = |p: &nn::Path| nn::linear(p, 2, 2, Default::default());
        let (_, _, outcome) = train_new(build, &moons(100), &quick(5), 0, &stop).unwrap();
        assert_eq!(
            (outcome.ending, outcome.steps, outcome.epochs.len()),
            (Ending::Interrupted, 0, 0)
        );
    }

    #[test]
    fn keep_best_ends_with_the_best_dev_epochs_weights_and_statistics() {
        let data = moons(400);
        let settings = TrainerSettings {
            keep_best: true,
            ..quick(8)
        };
        let stop = AtomicBool::new(false);
        // Flip after 3 of 8 epochs (9 steps each): dev accuracy peaks early, then collapses.
        let build = |p: &nn::Path| FlipsAfter::new(p, 27);
        let (_, model, outcome) = train_new(build, &data, &settings, 1, &stop).unwrap();
        let best = outcome.best_epoch.unwrap();
        let accuracies: Vec<f64> = outcome.epochs.iter().map(|e| e.dev_accuracy).collect();
        assert!(
            best < 7 && accuracies[7] < outcome.best_dev_accuracy,
            "{accuracies:?}"
        );
        let top = accuracies.iter().copied().fold(0.0, f64::max);
        assert_eq!(outcome.best_dev_accuracy, top);
        assert_eq!(accuracies.iter().position(|&a| a == top), Some(best));
        // Evaluated again, the restored model scores exactly the best epoch's figures.
        let (loss, accuracy) = evaluate(&model, &data.dev, 1000);
        assert_eq!(accuracy, outcome.best_dev_accuracy);
        assert!((loss - outcome.epochs[best].dev_loss).abs() < 1e-6);
    }

    /// Fixed logits `x W` plus a trainable shift `s` of both classes alike: every epoch scores
    /// the same (all tie), the loss does not depend on `s`, and weight decay shrinks it by
    /// `1 - lr * wd` per step.
    #[derive(Debug)]
    struct Shifted {
        w: Tensor,
        s: Tensor,
    }

    impl ModuleT for Shifted {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            xs.matmul(&self.w) + &self.s
        }
    }

    #[test]
    fn ties_go_to_the_first_or_the_last_epoch_as_asked() {
        let data = moons(100);
        let build = |p: &nn::Path| Shifted {
            w: Tensor::from_slice(&[1f32, -1.0, 0.5, 2.0]).view([2, 2]),
            s: p.var("s", &[1], nn::Init::Const(1.0)),
        };
        let stop = AtomicBool::new(false);
        for (later, epoch) in [(false, 0), (true, 2)] {
            // One step per epoch (batch above the 70 train points) at a constant rate 0.1.
            let settings = TrainerSettings {
                optimizer: Optimizer::Sgd,
                lr: 0.1,
                lr_min: 0.1,
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.5,
                epochs: 3,
                batch_size: 1000,
                grad_clip: 0.0,
                keep_best: true,
                ties_to_later: later,
                ..TrainerSettings::default()
            };
            let (_, model, outcome) = train_new(build, &data, &settings, 0, &stop).unwrap();
            let first = outcome.epochs[0].dev_accuracy;
            assert!(outcome.epochs.iter().all(|e| e.dev_accuracy == first));
            assert_eq!(outcome.best_epoch, Some(epoch));
            let kept = model.s.double_value(&[0]);
            let expected = 0.95f64.powi(epoch as i32 + 1);
            assert!((kept - expected).abs() < 1e-6, "{kept} vs {expected}");
        }
    }

    #[test]
    fn early_stopping_waits_patience_epochs_after_the_best() {
        let settings = TrainerSettings {
            patience: 2,
            ..quick(30)
        };
        let stop = AtomicBool::new(false);
        let build = |p: &nn::Path| FlipsAfter::new(p, 27);
        let (_, _, outcome) = train_new(build, &moons(400), &settings, 1, &stop).unwrap();
        assert_eq!(outcome.ending, Ending::EarlyStopped, "{outcome:?}");
        let best = outcome.best_epoch.unwrap();
        assert_eq!(outcome.epochs.len(), best + 3);
        assert!(outcome.epochs[best + 1..]
            .iter()
            .all(|e| e.dev_accuracy <= outcome.best_dev_accuracy));
    }

    #[test]
    fn the_same_seed_repeats_a_training_and_another_does_not() {
        let data = moons(200);
        let stop = AtomicBool::new(false);
        let run = |seed| {
            let build = |p: &nn::Path| FlipsAfter::new(p, usize::MAX);
            let (_, _, mut o) = train_new(build, &data, &quick(3), seed, &stop).unwrap();
            o.epochs.iter_mut().for_each(|e| e.seconds = 0.0);
            o
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn a_last_batch_of_one_is_dropped() {
        assert_eq!(batch_lengths(65, 32), [32, 32]);
        assert_eq!(batch_lengths(66, 32), [32, 32, 2]);
        assert_eq!(batch_lengths(64, 32), [32, 32]);
        assert_eq!(batch_lengths(1, 32), [1]);
    }
}
