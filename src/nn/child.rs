//! Training one child network fast (docs/algorithms.md §1: Adam, cross-entropy, batches of 32,
//! early stopping on dev accuracy). Per-operation overhead dominates tiny MLPs, so the weights
//! live in one flat tensor, gradients are written by a hand-written backward pass with autograd
//! off, and Adam updates the flat tensor in a handful of operations.

use std::sync::{Arc, OnceLock};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::config::ChildSettings;
use crate::data::Splits;
use crate::nn::adam::Adam;
use crate::nn::cpu_mlp::HostData;
use crate::nn::mlp::{Activation, Layer, MlpSpec};
use crate::outdir::Stop;

/// A split's tensors on the training device; the labels also one-hot for the loss gradient.
pub struct TensorSplit {
    pub x: Tensor,       // [n, features]
    pub y: Tensor,       // [n] int64
    pub one_hot: Tensor, // [n, classes]
}

/// Train, dev and test tensors on one device.
pub struct TensorData {
    pub train: TensorSplit,
    pub dev: TensorSplit,
    pub test: TensorSplit,
    pub n_features: usize,
    pub n_classes: usize,
    pub device: Device,
    /// A host copy of the splits for `cpu_mlp.rs`, made on first use and shared by clones.
    host: Arc<OnceLock<HostData>>,
}

impl TensorData {
    pub fn new(splits: &Splits, device: Device) -> Self {
        let n_classes = splits.train.n_classes;
        let make = |d: &crate::data::Dataset| {
            let (x, y) = d.tensors(device);
            let one_hot = y.one_hot(n_classes as i64).to_kind(Kind::Float);
            TensorSplit { x, y, one_hot }
        };
        TensorData {
            train: make(&splits.train),
            dev: make(&splits.dev),
            test: make(&splits.test),
            n_features: splits.train.n_features,
            n_classes,
            device,
            host: Arc::default(),
        }
    }

    /// The splits in host memory (copied once, on first use).
    pub fn host(&self) -> &HostData {
        self.host.get_or_init(|| HostData::from_tensors(self))
    }
}

impl TensorData {
    /// Another handle to the same tensors, for a worker thread (tensors are `Send`, not `Sync`).
    pub fn shallow_clone(&self) -> TensorData {
        let split = |s: &TensorSplit| TensorSplit {
            x: s.x.shallow_clone(),
            y: s.y.shallow_clone(),
            one_hot: s.one_hot.shallow_clone(),
        };
        TensorData {
            train: split(&self.train),
            dev: split(&self.dev),
            test: split(&self.test),
            n_features: self.n_features,
            n_classes: self.n_classes,
            device: self.device,
            host: Arc::clone(&self.host),
        }
    }
}

/// The reference's early stopping: stop when `patience` epochs in a row do not beat the best
/// dev accuracy so far (which starts at 0).
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    best: f64,
    since_best: usize,
    patience: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            best: 0.0,
            since_best: 0,
            patience,
        }
    }

    /// Records an epoch's dev accuracy; true when training should stop.
    pub fn should_stop(&mut self, accuracy: f64) -> bool {
        if accuracy > self.best {
            self.best = accuracy;
            self.since_best = 0;
            false
        } else {
            self.since_best += 1;
            self.since_best >= self.patience
        }
    }
}

/// How a child's training went.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    /// Dev accuracy of the last epoch run (the reward's accuracy term); 0 if diverged.
    pub accuracy: f64,
    /// Epochs run.
    pub epochs: usize,
    /// The loss became NaN or infinite.
    pub diverged: bool,
    /// Per epoch: training loss (mean cross-entropy on the whole train split after the epoch),
    /// and dev accuracy.
    pub history: Vec<(f64, f64)>,
}

/// One operation of a child's forward pass.
#[derive(Clone, Copy, Debug)]
enum Op {
    Linear(usize), // index into `linears`
    Act(Activation),
}

/// A child network with its weights (one flat tensor) and Adam state.
pub struct Child {
    pub spec: MlpSpec,
    ops: Vec<Op>,
    params: Tensor,
    grads: Tensor,
    adam: Adam,
    linears: Vec<(Tensor, Tensor)>, // views into `params`: W [in, out], b [out]
    transposed: Vec<Tensor>,        // W^T [out, in], views too
    first_linear: usize,            // index in `ops` of the first linear layer
    grad_linears: Vec<(Tensor, Tensor)>, // the same views into `grads`
}

impl Child {
    /// A child with PyTorch's default initialisation drawn from `rng` (see `MlpSpec::init_params`).
    pub fn new(spec: &MlpSpec, device: Device, rng: &mut impl rand::Rng) -> Child {
        let values = spec.init_params(rng);
        let params = Tensor::from_slice(&values).to_device(device);
        Child::from_params(spec, params)
    }

    /// A child whose flat weights are `params` (laid out as `MlpSpec::init_params`).
    pub fn from_params(spec: &MlpSpec, params: Tensor) -> Child {
        let grads = params.zeros_like();
        let views = |flat: &Tensor| {
            let mut out = Vec::new();
            let mut offset = 0i64;
            for (fan_in, fan_out) in spec.linear_shapes() {
                let (i, o) = (fan_in as i64, fan_out as i64);
                let w = flat.narrow(0, offset, i * o).view([i, o]);
                let b = flat.narrow(0, offset + i * o, o);
                offset += i * o + o;
                out.push((w, b));
            }
            out
        };
        let mut ops = Vec::new();
        let mut linear = 0;
        for layer in &spec.layers {
            match *layer {
                Layer::Linear(_) => {
                    ops.push(Op::Linear(linear));
                    linear += 1;
                }
                Layer::Act(a) => ops.push(Op::Act(a)),
            }
        }
        ops.push(Op::Linear(linear));
        let linears = views(&params);
        let transposed = linears.iter().map(|(w, _)| w.tr()).collect();
        let first_linear = ops
            .iter()
            .position(|op| matches!(op, Op::Linear(_)))
            .expect("output layer");
        Child {
            spec: spec.clone(),
            ops,
            linears,
            transposed,
            first_linear,
            grad_linears: views(&grads),
            adam: Adam::new(&params),
            params,
            grads,
        }
    }

    /// The flat weights.
    pub fn params(&self) -> &Tensor {
        &self.params
    }

    /// Logits `[n, classes]` for inputs `[n, features]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        let mut h = x.shallow_clone();
        for op in &self.ops {
            h = match *op {
                Op::Linear(k) => {
                    let (w, b) = &self.linears[k];
                    b.addmm(&h, w)
                }
                Op::Act(a) => a.apply(&h),
            };
        }
        h
    }

    /// Fraction of `split`'s points classified correctly.
    pub fn accuracy(&self, split: &TensorSplit) -> f64 {
        let _guard = tch::no_grad_guard();
        let predicted = self.forward(&split.x).argmax(1, false);
        let correct = predicted
            .eq_tensor(&split.y)
            .sum(Kind::Int64)
            .int64_value(&[]);
        correct as f64 / split.y.size()[0] as f64
    }

    /// Fills `grads` with the gradient of the mean cross-entropy on one batch and returns the
    /// batch's summed loss as a tensor (no synchronisation).
    fn backward(
        &mut self,
        x: &Tensor,
        one_hot: &Tensor,
        dropout: Option<(f64, &mut dyn rand::Rng)>,
    ) {
        // Forward, keeping every op's input and output; with dropout, each activation's output
        // is multiplied by a mask of 0 and 1/(1-p) (inverted dropout), kept for the backward.
        let mut values: Vec<Tensor> = Vec::with_capacity(self.ops.len() + 1);
        let mut dropped: Vec<Option<(Tensor, Tensor)>> = Vec::with_capacity(self.ops.len()); // (mask, output before it)
        let mut dropout = dropout.filter(|(p, _)| *p > 0.0);
        values.push(x.shallow_clone());
        for op in &self.ops {
            let h = &values[values.len() - 1];
            let (out, drop) = match *op {
                Op::Linear(k) => {
                    let (w, b) = &self.linears[k];
                    (b.addmm(h, w), None)
                }
                Op::Act(a) => {
                    let out = a.apply(h);
                    match dropout.as_mut() {
                        Some((p, rng)) => {
                            let mask =
                                dropout_mask(&out.size(), *p, &mut **rng).to_device(out.device());
                            (&out * &mask, Some((mask, out)))
                        }
                        None => (out, None),
                    }
                }
            };
            values.push(out);
            dropped.push(drop);
        }
        // d(mean cross-entropy)/d logits = (softmax - one_hot) / B
        let batch = x.size()[0] as f64;
        let mut g = values[values.len() - 1].softmax(1, Kind::Float);
        let _ = g.g_sub_(one_hot);
        let _ = g.g_mul_scalar_(1.0 / batch);
        for (i, op) in self.ops.iter().enumerate().rev() {
            let (input, output) = (&values[i], &values[i + 1]);
            if let Op::Linear(k) = *op {
                let (gw, gb) = &self.grad_linears[k];
                let _ = input.tr().mm_out(gw, &g); // [in, out]
                let _ = g.sum_intlist_out(gb, [0i64].as_slice(), false, None); // [out]
            }
            // Nothing upstream of the first linear layer needs a gradient.
            if i <= self.first_linear {
                break;
            }
            g = match (*op, &dropped[i]) {
                (Op::Linear(k), _) => g.mm(&self.transposed[k]),
                (Op::Act(a), None) => a.backward(&g, input, output),
                (Op::Act(a), Some((mask, before))) => a.backward(&(&g * mask), input, before),
            };
        }
    }

    /// Mean cross-entropy of the current weights on a whole split (one forward pass).
    pub fn loss(&self, split: &TensorSplit) -> f64 {
        let _guard = tch::no_grad_guard();
        self.forward(&split.x)
            .cross_entropy_for_logits(&split.y)
            .double_value(&[])
    }

    /// Gradient of the mean cross-entropy on `(x, one_hot)` at the current weights (for tests
    /// and the population trainer's equivalence check).
    pub fn gradient(&mut self, x: &Tensor, one_hot: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        self.backward(x, one_hot, None);
        self.grads.copy()
    }
}

/// Trains a freshly initialised child of `spec`; every random draw (initial weights, then one
/// shuffle of the train split per epoch) comes from a generator seeded with `seed`. A `stop`
/// cuts the training short (see `train`).
pub fn train_child(
    spec: &MlpSpec,
    data: &TensorData,
    settings: &ChildSettings,
    seed: u64,
    stop: &Stop,
) -> (Child, TrainOutcome) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut child = Child::new(spec, data.device, &mut rng);
    let outcome = train(&mut child, data, settings, &mut rng, stop);
    (child, outcome)
}

/// An inverted-dropout mask: each entry 0 with probability `p`, else `1 / (1 - p)`.
fn dropout_mask(size: &[i64], p: f64, rng: &mut dyn rand::Rng) -> Tensor {
    let n: i64 = size.iter().product();
    let keep = (1.0 / (1.0 - p)) as f32;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            if rand::RngExt::random::<f64>(rng) < p {
                0.0
            } else {
                keep
            }
        })
        .collect();
    Tensor::from_slice(&values).view(size)
}

/// A shuffled order of `n` indices, as an int64 tensor on `device`.
pub fn permutation(n: usize, rng: &mut impl rand::Rng, device: Device) -> Tensor {
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.shuffle(rng);
    Tensor::from_slice(&order).to_device(device)
}

/// Trains `child` with early stopping; returns what the search needs to know. It looks at
/// `stop` before every mini-batch and returns at once when it is set: an outcome returned after
/// a stop was requested is incomplete, and the caller drops it.
pub fn train(
    child: &mut Child,
    data: &TensorData,
    settings: &ChildSettings,
    rng: &mut impl rand::Rng,
    stop: &Stop,
) -> TrainOutcome {
    let _guard = tch::no_grad_guard();
    let n = data.train.x.size()[0];
    let batch = settings.batch_size as i64;
    let mut stopping = EarlyStopping::new(settings.patience);
    let mut history = Vec::new();
    let mut accuracy = 0.0;
    let mut diverged = false;
    for _epoch in 0..settings.max_epochs {
        let order = permutation(n as usize, rng, data.device);
        let xs = data.train.x.index_select(0, &order).split(batch, 0);
        let ys = data.train.one_hot.index_select(0, &order).split(batch, 0);
        for (x, y) in xs.iter().zip(&ys) {
            if stop.requested() {
                return TrainOutcome {
                    accuracy,
                    epochs: history.len(),
                    diverged,
                    history,
                };
            }
            child.backward(x, y, Some((settings.dropout, &mut *rng)));
            child
                .adam
                .step(&mut child.params, &child.grads, settings.lr);
        }
        // The epoch's loss on the whole train split: catches divergence for one pass, not 22.
        let loss = child.loss(&data.train);
        if !loss.is_finite() {
            diverged = true;
            accuracy = 0.0;
            history.push((loss, 0.0));
            break;
        }
        accuracy = child.accuracy(&data.dev);
        history.push((loss, accuracy));
        if stopping.should_stop(accuracy) {
            break;
        }
    }
    TrainOutcome {
        accuracy,
        epochs: history.len(),
        diverged,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{make_moons, split};
    use crate::nn::mlp::Activation::*;
    use proptest::prelude::*;

    fn moons_data() -> TensorData {
        TensorData::new(&split(&make_moons(1000, 0.2, 0), 0.7, 0.1), Device::Cpu)
    }

    fn spec(layers: Vec<Layer>) -> MlpSpec {
        MlpSpec {
            n_in: 2,
            n_out: 2,
            layers,
        }
    }

    /// The same network and loss through libtorch's autograd: the oracle for `backward`.
    fn autograd_gradient(child: &Child, x: &Tensor, y: &Tensor) -> Tensor {
        let p = child.params().detach().set_requires_grad(true);
        let mut h = x.shallow_clone();
        let mut offset = 0;
        let shapes = child.spec.linear_shapes();
        let mut next_linear = 0;
        let mut apply_linear = |h: &Tensor, k: usize| {
            let (i, o) = (shapes[k].0 as i64, shapes[k].1 as i64);
            let w = p.narrow(0, offset, i * o).view([i, o]);
            let b = p.narrow(0, offset + i * o, o);
            offset += i * o + o;
            h.matmul(&w) + b
        };
        for layer in &child.spec.layers {
            h = match *layer {
                Layer::Linear(_) => {
                    next_linear += 1;
                    apply_linear(&h, next_linear - 1)
                }
                Layer::Act(a) => a.apply(&h),
            };
        }
        let logits = apply_linear(&h, next_linear);
        logits.cross_entropy_for_logits(y).backward();
        p.grad()
    }

    #[test]
    fn hand_written_gradient_matches_autograd_for_every_activation() {
        let data = moons_data();
        let (x, y, oh) = (
            data.train.x.narrow(0, 0, 32),
            data.train.y.narrow(0, 0, 32),
            data.train.one_hot.narrow(0, 0, 32),
        );
        let specs = [
            spec(vec![
                Layer::Linear(8),
                Layer::Act(Tanh),
                Layer::Linear(8),
                Layer::Act(ReLU),
                Layer::Linear(4),
                Layer::Act(ReLU),
            ]),
            spec(vec![
                Layer::Act(Sigmoid),
                Layer::Linear(16),
                Layer::Act(LeakyReLU),
                Layer::Act(Sigmoid),
            ]),
            spec(vec![
                Layer::Linear(4),
                Layer::Linear(2),
                Layer::Act(LeakyReLU),
            ]),
            spec(vec![]),
        ];
        for s in &specs {
            let mut child = Child::new(s, Device::Cpu, &mut Pcg64::seed_from_u64(3));
            let ours = child.gradient(&x, &oh);
            let oracle = autograd_gradient(&child, &x, &y);
            let diff = (&ours - &oracle).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{s:?}: max gradient difference {diff}");
        }
    }

    #[test]
    fn adam_matches_pytorchs_closed_form_first_step() {
        // After one step from zero moments, Adam moves every weight by lr * g / (|g| + eps').
        let s = spec(vec![Layer::Linear(4), Layer::Act(Tanh)]);
        let data = moons_data();
        let mut child = Child::new(&s, Device::Cpu, &mut Pcg64::seed_from_u64(5));
        let before = child.params().copy();
        let g = child.gradient(
            &data.train.x.narrow(0, 0, 32),
            &data.train.one_hot.narrow(0, 0, 32),
        );
        child.adam.step(&mut child.params, &child.grads, 0.01);
        let expected = &before - (&g * 0.01) / (g.abs() + 1e-8);
        let diff = (child.params() - expected).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "difference {diff}");
    }

    #[test]
    fn early_stopping_stops_at_the_right_epoch() {
        // Best 0.8 at epoch 3 (1-based); 10 epochs without beating it: stop after epoch 13.
        let mut scripted = vec![0.5, 0.7, 0.8];
        scripted.extend(std::iter::repeat_n(0.8, 5));
        scripted.extend(std::iter::repeat_n(0.75, 5));
        scripted.extend([0.9, 0.95]);
        let mut stopping = EarlyStopping::new(10);
        let stop_epoch = scripted
            .iter()
            .position(|&a| stopping.should_stop(a))
            .map(|i| i + 1);
        assert_eq!(stop_epoch, Some(13));
        // An improvement resets the count.
        let mut stopping = EarlyStopping::new(3);
        let seq = [0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6];
        let stop_epoch = seq
            .iter()
            .position(|&a| stopping.should_stop(a))
            .map(|i| i + 1);
        assert_eq!(stop_epoch, Some(7));
    }

    #[test]
    fn a_good_architecture_learns_the_moons() {
        let data = moons_data();
        let s = spec(vec![
            Layer::Linear(16),
            Layer::Act(ReLU),
            Layer::Linear(16),
            Layer::Act(Tanh),
        ]);
        let (child, outcome) = train_child(&s, &data, &ChildSettings::default(), 11, &Stop::new());
        assert!(!outcome.diverged);
        assert!(
            outcome.accuracy >= 0.95,
            "dev accuracy {}",
            outcome.accuracy
        );
        assert!(
            child.accuracy(&data.test) >= 0.93,
            "test accuracy {}",
            child.accuracy(&data.test)
        );
        assert_eq!(outcome.epochs, outcome.history.len());
        // Training loss falls from the first epoch to the last.
        assert!(outcome.history.last().unwrap().0 < outcome.history[0].0);
    }

    #[test]
    fn training_is_reproducible_with_a_seed() {
        let data = moons_data();
        let s = spec(vec![Layer::Linear(8), Layer::Act(Sigmoid)]);
        let settings = ChildSettings {
            max_epochs: 5,
            ..ChildSettings::default()
        };
        let (_, a) = train_child(&s, &data, &settings, 1, &Stop::new());
        let (_, b) = train_child(&s, &data, &settings, 1, &Stop::new());
        assert_eq!(a, b);
    }

    #[test]
    fn a_diverging_child_scores_zero() {
        let data = moons_data();
        let s = spec(vec![Layer::Linear(16), Layer::Act(ReLU)]);
        let settings = ChildSettings {
            lr: 1e30,
            max_epochs: 20,
            ..ChildSettings::default()
        };
        let (_, outcome) = train_child(&s, &data, &settings, 1, &Stop::new());
        assert!(outcome.diverged, "{outcome:?}");
        assert_eq!(outcome.accuracy, 0.0);
    }

    #[test]
    fn a_stop_ends_even_an_endless_training() {
        let data = moons_data();
        let s = spec(vec![Layer::Linear(8), Layer::Act(Tanh)]);
        let endless = ChildSettings {
            max_epochs: usize::MAX,
            patience: usize::MAX,
            ..ChildSettings::default()
        };
        let stop = Stop::new();
        stop.request();
        let (_, outcome) = train_child(&s, &data, &endless, 1, &stop);
        assert_eq!(outcome.epochs, 0);
        // Asked from another thread while it trains: it returns (without the stop, never).
        let stop = Stop::new();
        let asker = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                stop.request();
            })
        };
        let _ = train_child(&s, &data, &endless, 1, &stop);
        asker.join().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_sequence_builds_a_net_with_the_right_outputs(actions in proptest::collection::vec(0usize..10, 0..=6)) {
            let spec = crate::space::halfmoon::mlp_spec(&actions, 2, 2);
            let child = Child::new(&spec, Device::Cpu, &mut Pcg64::seed_from_u64(0));
            let out = child.forward(&Tensor::zeros([7, 2], (Kind::Float, Device::Cpu)));
            prop_assert_eq!(out.size(), vec![7, 2]);
            prop_assert_eq!(child.params().size()[0] as usize, spec.n_params());
        }
    }
}
