//! Several trainings of one cell run as one: the seeds' networks stacked side by side in a
//! grouped `CellNet` (src/cells/network.rs) and trained together, each exactly as
//! `nn::train::fit_observed` trains a single network with NAS-Bench-201's protocol (Dong & Yang
//! 2020): its own seeded permutation every epoch, SGD with Nesterov momentum and weight decay, a
//! cosine learning rate per step, its own cross-entropy, accuracies and divergence.
//!
//! The copies share no value: every convolution is grouped, batch norm, pooling, ReLU and sums
//! work per channel, the head is one matrix per copy, and momentum and weight decay work per
//! element; the loss is the sum of the copies' losses, so copy `g`'s gradient is that of its own
//! loss. A stacked training therefore follows the single ones up to the order of floating-point
//! sums, at about half the cost per seed: these networks are so small (4 to 16 channels, 8x8 to
//! 2x2 maps) that libtorch's fixed cost per operation, not arithmetic, dominates their time.
//! The stack's images are fed channels-last, where oneDNN's grouped convolutions on maps this
//! small run faster than in the default layout (BENCHMARKS.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Kind, Tensor};

use super::config::BUILD_CHANNELS_LAST;
use super::network::CellNet;
use crate::config::{Optimizer, TrainerSettings};
use crate::error::UsageError;
use crate::nn::child::permutation;
use crate::nn::tensors::{Part, TrainData};
use crate::nn::train::{batch_lengths, cosine_lr};

/// One epoch of one copy.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyEpoch {
    /// Mean cross-entropy and accuracy over the epoch's mini-batches, in train mode.
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// Mean cross-entropy and accuracy after the epoch, in eval mode.
    pub dev_loss: f64,
    pub dev_accuracy: f64,
    pub test_accuracy: f64,
    /// The stack's seconds for the epoch (training and dev evaluation) divided by the copies.
    pub seconds: f64,
}

/// How one copy's training went.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyOutcome {
    /// Every completed epoch.
    pub epochs: Vec<CopyEpoch>,
    /// When a loss became NaN or infinite: that epoch's seconds so far (per copy), and the copy
    /// trained no further.
    pub diverged: Option<f64>,
}

/// Trains the `seeds.len()` copies of `net` (whose variables are those of `vs`) on `data`;
/// copy `g` draws its permutations from a generator seeded with `seeds[g]`, as `fit_observed`
/// does with its seed. Returns `None` when `stop` cut the training short.
pub fn fit_stack(
    vs: &nn::VarStore,
    net: &CellNet,
    data: &TrainData,
    settings: &TrainerSettings,
    seeds: &[u64],
    stop: &AtomicBool,
) -> Result<Option<Vec<CopyOutcome>>> {
    settings.validate().map_err(UsageError::new)?;
    let g = seeds.len();
    anyhow::ensure!(
        g as i64 == net.groups(),
        "{g} seeds for a stack of {} networks",
        net.groups()
    );
    anyhow::ensure!(
        settings.optimizer == Optimizer::Sgd && settings.grad_clip == 0.0,
        "a stacked training runs SGD without gradient clipping (the table's protocol)"
    );
    let mut opt = nn::Sgd {
        momentum: settings.momentum,
        dampening: 0.0,
        wd: settings.weight_decay,
        nesterov: settings.nesterov,
    }
    .build(vs, settings.lr)
    .context("cannot build the optimiser")?;
    let mut rngs: Vec<Pcg64> = seeds.iter().map(|&s| Pcg64::seed_from_u64(s)).collect();
    let n = data.train.len();
    let lengths = batch_lengths(n, settings.batch_size);
    let total_steps = settings.epochs * lengths.len();
    let mut steps = 0;
    let mut outcomes: Vec<CopyOutcome> = (0..g)
        .map(|_| CopyOutcome {
            epochs: Vec::new(),
            diverged: None,
        })
        .collect();
    for _ in 0..settings.epochs {
        let started = Instant::now();
        // Every copy draws its epoch's permutation, diverged or not, as the single ones would.
        let orders: Vec<Tensor> = rngs
            .iter_mut()
            .map(|rng| permutation(n, rng, data.device))
            .collect();
        let live: Vec<usize> = (0..g).filter(|&c| outcomes[c].diverged.is_none()).collect();
        if live.is_empty() {
            break;
        }
        let mut loss_sums = vec![0.0; g];
        let mut seen = 0usize;
        let mut correct = Tensor::zeros([g as i64], (Kind::Int64, data.device));
        let mut start = 0i64;
        for &len in &lengths {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let indices: Vec<Tensor> = orders
                .iter()
                .map(|o| o.narrow(0, start, len as i64))
                .collect();
            start += len as i64;
            let x = Tensor::cat(
                &indices
                    .iter()
                    .map(|i| data.train.x.index_select(0, i))
                    .collect::<Vec<_>>(),
                1,
            );
            let y = Tensor::stack(
                &indices
                    .iter()
                    .map(|i| data.train.y.index_select(0, i))
                    .collect::<Vec<_>>(),
                1,
            ); // [len, g]
            opt.set_lr(cosine_lr(settings.lr, settings.lr_min, steps, total_steps));
            let x = layout(x);
            let logits = net.forward_t(&x, true).view([len as i64, g as i64, -1]);
            let losses = copy_losses(&logits, &y); // [g]
            let values = Vec::<f64>::try_from(&losses.detach().to_kind(Kind::Double))
                .context("cannot read the losses")?;
            let live: Vec<usize> = (0..g).filter(|&c| outcomes[c].diverged.is_none()).collect();
            let finite: Vec<usize> = live
                .iter()
                .copied()
                .filter(|&c| values[c].is_finite())
                .collect();
            for &c in &live {
                if !values[c].is_finite() {
                    // as `fit_observed`: the copy stops before this step, its epoch unfinished
                    outcomes[c].diverged = Some(started.elapsed().as_secs_f64() / g as f64);
                }
            }
            if finite.is_empty() {
                break;
            }
            let loss = if finite.len() == g {
                losses.sum(Kind::Float)
            } else {
                let index =
                    Tensor::from_slice(&finite.iter().map(|&c| c as i64).collect::<Vec<_>>())
                        .to_device(data.device);
                losses.index_select(0, &index).sum(Kind::Float)
            };
            opt.zero_grad();
            loss.backward();
            opt.step();
            steps += 1;
            for c in 0..g {
                loss_sums[c] += values[c] * len as f64;
            }
            seen += len;
            correct += logits
                .detach()
                .argmax(-1, false)
                .eq_tensor(&y)
                .sum_dim_intlist(0, false, Kind::Int64);
        }
        let (dev_loss, dev_accuracy) = evaluate_stack(net, &data.dev, settings.eval_batch_size);
        let seconds = started.elapsed().as_secs_f64() / g as f64;
        let (_, test_accuracy) = evaluate_stack(net, &data.test, settings.eval_batch_size);
        let correct = Vec::<i64>::try_from(&correct).context("cannot read the accuracies")?;
        for c in 0..g {
            if outcomes[c].diverged.is_some() {
                continue;
            }
            outcomes[c].epochs.push(CopyEpoch {
                train_loss: loss_sums[c] / seen.max(1) as f64,
                train_accuracy: correct[c] as f64 / seen.max(1) as f64,
                dev_loss: dev_loss[c],
                dev_accuracy: dev_accuracy[c],
                test_accuracy: test_accuracy[c],
                seconds,
            });
        }
    }
    Ok(Some(outcomes))
}

/// Each copy's mean cross-entropy, `[g]`, from logits `[B, g, classes]` and labels `[B, g]`.
fn copy_losses(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .log_softmax(-1, Kind::Float)
        .gather(2, &y.unsqueeze(2), false)
        .squeeze_dim(2)
        .mean_dim([0i64].as_slice(), false, Kind::Float)
        .neg()
}

/// Each copy's mean cross-entropy and accuracy in eval mode on `part`, `batch` examples at a
/// time: every copy sees the same images.
pub fn evaluate_stack(net: &CellNet, part: &Part, batch: usize) -> (Vec<f64>, Vec<f64>) {
    let _guard = tch::no_grad_guard();
    let g = net.groups();
    let n = part.len();
    let mut loss = vec![0.0; g as usize];
    let mut correct = vec![0i64; g as usize];
    let mut start = 0;
    while start < n {
        let len = batch.max(1).min(n - start);
        let x = part.x.narrow(0, start as i64, len as i64);
        let y = part.y.narrow(0, start as i64, len as i64);
        let logits = net
            .forward_t(&layout(x.repeat([1, g, 1, 1])), false)
            .view([len as i64, g, -1]);
        let ys = y.unsqueeze(1).expand([len as i64, g], false);
        let losses = copy_losses(&logits, &ys).to_kind(Kind::Double);
        let hits = logits
            .argmax(-1, false)
            .eq_tensor(&ys)
            .sum_dim_intlist(0, false, Kind::Int64);
        for c in 0..g as usize {
            loss[c] += losses.double_value(&[c as i64]) * len as f64;
            correct[c] += hits.int64_value(&[c as i64]);
        }
        start += len;
    }
    let n = n.max(1) as f64;
    (
        loss.iter().map(|l| l / n).collect(),
        correct.iter().map(|&c| c as f64 / n).collect(),
    )
}

/// `x` stored channels-last when `BUILD_CHANNELS_LAST` (the layers keep the layout they are
/// given).
fn layout(x: Tensor) -> Tensor {
    if BUILD_CHANNELS_LAST {
        crate::nn::tensors::channels_last(&x)
    } else {
        x
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cells::build::trainer;
    use crate::cells::cell::Cell;
    use crate::cells::network::{copy_into_stack, CellNetShape};
    use crate::nn::train::{evaluate, fit_observed, EpochStats};
    use tch::Device;

    /// `n` random 8x8 images labelled by their brightest quadrant: 4 classes a network learns.
    /// Drawn from their own generator, whatever other tests draw from libtorch's.
    fn toy_part(n: i64, seed: u64) -> Part {
        use rand::RngExt;
        let mut rng = Pcg64::seed_from_u64(seed);
        let pixels: Vec<f32> = (0..n * 64).map(|_| rng.random::<f32>()).collect();
        let x = Tensor::from_slice(&pixels).view([n, 1, 8, 8]);
        let y = x
            .view([n, 2, 4, 2, 4])
            .mean_dim([2i64, 4].as_slice(), false, Kind::Float)
            .view([n, 4])
            .argmax(-1, false);
        Part { x, y }
    }

    /// 200 training images (batches of 128 and 72), 90 dev, 90 test.
    pub(crate) fn toy_data() -> TrainData {
        TrainData {
            train: toy_part(200, 1),
            dev: toy_part(90, 2),
            test: toy_part(90, 3),
            n_classes: 4,
            device: Device::Cpu,
        }
    }

    /// The table's protocol for `epochs` epochs, evaluating 50 images at a time.
    pub(crate) fn settings(epochs: usize) -> TrainerSettings {
        TrainerSettings {
            eval_batch_size: 50,
            ..trainer(epochs)
        }
    }

    pub(crate) fn toy_cell() -> Cell {
        Cell::parse(
            "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
        )
        .unwrap()
    }

    pub(crate) const SHAPE: CellNetShape = CellNetShape {
        channels: 4,
        cells_per_stage: 1,
    };

    /// `copies` single networks of `cell`, a stack holding copies of them, and the stack's
    /// variables.
    fn singles_and_stack(
        cell: &Cell,
        copies: i64,
    ) -> (Vec<(nn::VarStore, CellNet)>, nn::VarStore, CellNet) {
        let singles = singles(cell, copies);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CellNet::stacked(&vs.root(), cell, SHAPE, 1, 4, copies);
        copy_into_stack(&vs, &singles.iter().map(|(v, _)| v).collect::<Vec<_>>()).unwrap();
        (singles, vs, net)
    }

    /// `copies` single networks of `cell` for 4 classes, their weights drawn from their own
    /// generator (uniform within +-1/sqrt(fan-in); batch norms as built), whatever other tests
    /// draw from libtorch's.
    pub(crate) fn singles(cell: &Cell, copies: i64) -> Vec<(nn::VarStore, CellNet)> {
        use rand::RngExt;
        let mut rng = Pcg64::seed_from_u64(5);
        (0..copies)
            .map(|_| {
                let vs = nn::VarStore::new(Device::Cpu);
                let net = CellNet::new(&vs.root(), cell, SHAPE, 1, 4);
                let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
                vars.sort_by(|a, b| a.0.cmp(&b.0));
                let _guard = tch::no_grad_guard();
                for (_, mut t) in vars.into_iter().filter(|(_, t)| t.dim() >= 2) {
                    let bound = 1.0 / ((t.numel() as i64 / t.size()[0]) as f32).sqrt();
                    let values: Vec<f32> = (0..t.numel())
                        .map(|_| bound * (2.0 * rng.random::<f32>() - 1.0))
                        .collect();
                    t.copy_(&Tensor::from_slice(&values).view(t.size().as_slice()));
                }
                (vs, net)
            })
            .collect()
    }

    /// `fit_observed`'s epochs of one single network, with its test accuracy after each.
    fn single_run(
        vs: &nn::VarStore,
        net: &CellNet,
        data: &TrainData,
        settings: &TrainerSettings,
        seed: u64,
    ) -> Vec<(EpochStats, f64)> {
        let mut epochs = Vec::new();
        let outcome = fit_observed(
            vs,
            net,
            data,
            settings,
            seed,
            &AtomicBool::new(false),
            &mut |s| {
                epochs.push((s.clone(), evaluate(net, &data.test, 50).1));
            },
        )
        .unwrap();
        assert!(!outcome.diverged());
        epochs
    }

    /// Asserts that a copy's epochs follow the single training's. They differ only in the order
    /// of floating-point sums (the grouped convolutions add in another order), ~1e-7 relative
    /// after one step; training magnifies that, more so with several libtorch threads: measured
    /// up to 9e-5 relative in the losses after four steps, and one training prediction flipped.
    /// Bounds: losses to 1e-3 relative (a real difference, such as another learning rate or
    /// another permutation, moves them by 1e-2 or more), accuracies within two examples.
    fn assert_follows(copy: &CopyOutcome, single: &[(EpochStats, f64)], data: &TrainData) {
        assert_eq!(copy.epochs.len(), single.len());
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs();
        for (e, (mine, (theirs, test))) in copy.epochs.iter().zip(single).enumerate() {
            let why = format!("epoch {e}: {mine:?} {theirs:?}");
            assert!(close(mine.train_loss, theirs.train_loss, 1e-3), "{why}");
            assert!(close(mine.dev_loss, theirs.dev_loss, 1e-3), "{why}");
            let within_two = |a: f64, b: f64, n: usize| (a - b).abs() <= 2.0 / n as f64 + 1e-12;
            assert!(within_two(
                mine.train_accuracy,
                theirs.train_accuracy,
                data.train.len()
            ));
            assert!(within_two(
                mine.dev_accuracy,
                theirs.dev_accuracy,
                data.dev.len()
            ));
            assert!(within_two(mine.test_accuracy, *test, data.test.len()));
        }
    }

    #[test]
    fn a_stacked_training_follows_the_single_trainings() {
        let data = toy_data();
        let settings = settings(2);
        let (singles, vs, net) = singles_and_stack(&toy_cell(), 2);
        let seeds = [11u64, 12];
        let outcomes = fit_stack(&vs, &net, &data, &settings, &seeds, &AtomicBool::new(false))
            .unwrap()
            .unwrap();
        for (g, (svs, snet)) in singles.iter().enumerate() {
            let single = single_run(svs, snet, &data, &settings, seeds[g]);
            assert_eq!(outcomes[g].diverged, None);
            assert_follows(&outcomes[g], &single, &data);
        }
        // the copies did learn, and differently (their seeds and weights differ)
        assert!(outcomes[0].epochs[1].train_loss < outcomes[0].epochs[0].train_loss);
        assert_ne!(
            outcomes[0].epochs[1].train_loss,
            outcomes[1].epochs[1].train_loss
        );
    }

    #[test]
    fn a_diverged_copy_stops_alone() {
        let data = toy_data();
        let settings = settings(2);
        let (singles, vs, net) = singles_and_stack(&toy_cell(), 2);
        // copy 0's stem all NaN: its first loss is NaN
        let _ = vs.variables()["stem.weight"]
            .narrow(0, 0, SHAPE.channels)
            .detach()
            .fill_(f64::NAN);
        let seeds = [11u64, 12];
        let outcomes = fit_stack(&vs, &net, &data, &settings, &seeds, &AtomicBool::new(false))
            .unwrap()
            .unwrap();
        assert!(outcomes[0].epochs.is_empty());
        assert!(outcomes[0].diverged.is_some());
        let (svs, snet) = &singles[1];
        assert_follows(
            &outcomes[1],
            &single_run(svs, snet, &data, &settings, seeds[1]),
            &data,
        );
    }

    #[test]
    fn a_stop_returns_nothing() {
        let data = toy_data();
        let (_, vs, net) = singles_and_stack(&toy_cell(), 2);
        let stopped = fit_stack(
            &vs,
            &net,
            &data,
            &settings(1),
            &[1, 2],
            &AtomicBool::new(true),
        );
        assert!(stopped.unwrap().is_none());
    }
}
