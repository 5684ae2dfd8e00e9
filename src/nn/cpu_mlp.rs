//! A pure-Rust CPU path for small MLP children (issue 15): the whole training step of `child.rs`
//! (forward pass, cross-entropy, hand-written backward pass, dropout, Adam with PyTorch's bias
//! correction), the per-epoch shuffle and early stopping, as tight loops over contiguous `f32`
//! buffers with one preallocated workspace per child and no per-operation dispatch. It draws its
//! random numbers exactly as `child.rs` does (PyTorch's default `nn.Linear` initialisation, one
//! shuffle per epoch, the dropout masks in the same order), so a seed trains the same child as
//! libtorch's path up to float rounding; a test compares the two on 200 architectures. The
//! formulas are PyTorch's (`torch.optim.Adam`, `nn.CrossEntropyLoss`); how the loops, `exp` and
//! `tanh` are computed, and how `archsearch bench` counts FLOPs: docs/cpu-kernel.md.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use tch::{Device, Tensor};

use crate::config::{
    ChildSettings, ADAM_BETAS, ADAM_EPS, CPU_KERNEL_EVAL_POINTS, LEAKY_RELU_SLOPE,
};
use crate::nn::child::{Child, EarlyStopping, TensorData, TensorSplit, TrainOutcome};
use crate::nn::mlp::{Activation, Layer, MlpSpec};
use crate::outdir::Stop;

/// One split's points in host memory: features row-major, labels as class indices.
#[derive(Clone, Debug, Default)]
pub struct HostSplit {
    pub x: Vec<f32>, // [len, n_features]
    pub y: Vec<usize>,
}

impl HostSplit {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Train, dev and test splits in host memory: what the kernel reads.
#[derive(Clone, Debug)]
pub struct HostData {
    pub train: HostSplit,
    pub dev: HostSplit,
    pub test: HostSplit,
    pub n_features: usize,
    pub n_classes: usize,
}

impl HostData {
    /// A host copy of `data`'s splits (from any device).
    pub fn from_tensors(data: &TensorData) -> HostData {
        let split = |s: &TensorSplit| HostSplit {
            x: Vec::<f32>::try_from(s.x.to_device(Device::Cpu).contiguous().view(-1))
                .expect("features are a float tensor"),
            y: Vec::<i64>::try_from(s.y.to_device(Device::Cpu).contiguous().view(-1))
                .expect("labels are an int64 tensor")
                .into_iter()
                .map(|v| v as usize)
                .collect(),
        };
        HostData {
            train: split(&data.train),
            dev: split(&data.dev),
            test: split(&data.test),
            n_features: data.n_features,
            n_classes: data.n_classes,
        }
    }
}

/// Whether the kernel trains children with `settings` on `data`: on a CPU, unless
/// `child.cpu_kernel` is off. (Every child of this crate's MLP spaces is an MLP; conv nets and
/// CUDA stay with libtorch.)
pub fn applies(data: &TensorData, settings: &ChildSettings) -> bool {
    settings.cpu_kernel && data.device == Device::Cpu
}

/// Trains a freshly initialised child of `spec` from `seed` on the path that applies (this
/// kernel, else `child::train_child`) and returns how training went.
pub fn train_fresh(
    spec: &MlpSpec,
    data: &TensorData,
    settings: &ChildSettings,
    seed: u64,
    stop: &Stop,
) -> TrainOutcome {
    if applies(data, settings) {
        train_child(spec, data.host(), settings, seed, stop).1
    } else {
        crate::nn::child::train_child(spec, data, settings, seed, stop).1
    }
}

/// As `train_fresh`, also returning the trained child as a libtorch `Child` (for testing it and
/// drawing its decision boundary).
pub fn train_fresh_child(
    spec: &MlpSpec,
    data: &TensorData,
    settings: &ChildSettings,
    seed: u64,
    stop: &Stop,
) -> (Child, TrainOutcome) {
    if applies(data, settings) {
        let (child, outcome) = train_child(spec, data.host(), settings, seed, stop);
        (child.to_child(data.device), outcome)
    } else {
        crate::nn::child::train_child(spec, data, settings, seed, stop)
    }
}

/// One operation of the forward pass.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Weight `[n_in, n_out]` at offset `w` of the flat parameters, its bias `[n_out]` right after.
    Linear {
        w: usize,
        n_in: usize,
        n_out: usize,
    },
    Act(Activation),
}

/// Points are processed in blocks of this many, one 8-wide vector (or two 4-wide ones) each.
const LANES: usize = 8;

/// `n` rounded up to a whole number of lanes.
fn padded(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// Buffers of one child, sized once. A buffer of `w` units for `s` points (`s` a multiple of
/// `LANES`) is laid out unit-major, `[w, s]`: each unit's values over the points are contiguous,
/// so every loop runs over points in whole vectors whatever the layer widths.
#[derive(Default)]
struct Workspace {
    /// Points a training step holds (the batch, padded).
    train_rows: usize,
    /// Points an evaluation pass holds at a time (padded).
    eval_rows: usize,
    /// `values[i]`: the input of op `i`, `[widths[i], s]`; the last one holds the logits.
    values: Vec<Vec<f32>>,
    /// Per activation op, with dropout: its output before the mask, and the mask.
    before: Vec<Vec<f32>>,
    masks: Vec<Vec<f32>>,
    /// The gradient flowing backward and the next one, `[widest, s]`.
    grad: Vec<f32>,
    grad_next: Vec<f32>,
    /// The gradient of a linear layer's output point-major, `[rows, n_out]`.
    grad_t: Vec<f32>,
    /// Per point: its label, and scratch for the loss (row maximum, sum of exponentials).
    labels: Vec<u32>,
    row_max: Vec<f32>,
    row_sum: Vec<f32>,
    best: Vec<u32>,
}

/// A child network with its flat weights (laid out as `MlpSpec::init_params`), gradient, Adam
/// state and workspace.
pub struct CpuChild {
    pub spec: MlpSpec,
    ops: Vec<Op>,
    widths: Vec<usize>,
    first_linear: usize,
    params: Vec<f32>,
    grads: Vec<f32>,
    /// Each weight transposed, `[n_out, n_in]`, at the weight's own offset (the forward pass's
    /// coefficients, contiguous per output).
    transposed: Vec<f32>,
    adam_m: Vec<f32>,
    adam_v: Vec<f32>,
    adam_step: i32,
    ws: Workspace,
}

impl CpuChild {
    /// A child with PyTorch's default initialisation drawn from `rng` (the draws of `Child::new`).
    pub fn new(spec: &MlpSpec, rng: &mut impl rand::Rng) -> CpuChild {
        CpuChild::from_params(spec, spec.init_params(rng))
    }

    /// A child whose flat weights are `params` (laid out as `MlpSpec::init_params`).
    pub fn from_params(spec: &MlpSpec, params: Vec<f32>) -> CpuChild {
        assert_eq!(params.len(), spec.n_params(), "weights of the wrong length");
        let mut ops = Vec::with_capacity(spec.layers.len() + 1);
        let mut widths = vec![spec.n_in];
        let mut shapes = spec.linear_shapes().into_iter();
        let mut offset = 0;
        let mut linear = |ops: &mut Vec<Op>, widths: &mut Vec<usize>| {
            let (n_in, n_out) = shapes.next().expect("a shape per linear layer");
            ops.push(Op::Linear {
                w: offset,
                n_in,
                n_out,
            });
            widths.push(n_out);
            offset += n_in * n_out + n_out;
        };
        for layer in &spec.layers {
            match *layer {
                Layer::Linear(_) => linear(&mut ops, &mut widths),
                Layer::Act(a) => {
                    ops.push(Op::Act(a));
                    widths.push(*widths.last().expect("the input width"));
                }
            }
        }
        linear(&mut ops, &mut widths); // the output layer
        let first_linear = ops
            .iter()
            .position(|op| matches!(op, Op::Linear { .. }))
            .expect("output layer");
        let n = params.len();
        let mut child = CpuChild {
            spec: spec.clone(),
            ops,
            widths,
            first_linear,
            grads: vec![0.0; n],
            transposed: vec![0.0; n],
            adam_m: vec![0.0; n],
            adam_v: vec![0.0; n],
            adam_step: 0,
            params,
            ws: Workspace::default(),
        };
        child.transpose_weights();
        child
    }

    /// Refreshes the transposed copy of every weight.
    #[inline(always)]
    fn transpose_weights(&mut self) {
        for op in &self.ops {
            if let Op::Linear { w, n_in, n_out } = *op {
                let src = &self.params[w..w + n_in * n_out];
                let dst = &mut self.transposed[w..w + n_in * n_out];
                for (k, row) in src.chunks_exact(n_out).enumerate() {
                    for (o, &v) in row.iter().enumerate() {
                        dst[o * n_in + k] = v;
                    }
                }
            }
        }
    }

    /// The flat weights.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The same network as a libtorch `Child` on `device` (fresh Adam state).
    pub fn to_child(&self, device: Device) -> Child {
        Child::from_params(
            &self.spec,
            Tensor::from_slice(&self.params).to_device(device),
        )
    }

    /// Sizes the workspace for training steps of `batch` points and evaluation passes of up to
    /// `CPU_KERNEL_EVAL_POINTS` (allocates only when a size grows).
    pub(super) fn reserve(&mut self, batch: usize, largest_split: usize) {
        let train_rows = padded(batch.max(1));
        let eval_rows = padded(largest_split.clamp(1, CPU_KERNEL_EVAL_POINTS)).max(train_rows);
        if train_rows <= self.ws.train_rows && eval_rows <= self.ws.eval_rows {
            return;
        }
        let (train_rows, eval_rows) = (
            train_rows.max(self.ws.train_rows),
            eval_rows.max(self.ws.eval_rows),
        );
        let widest = self.widths.iter().copied().max().unwrap_or(1);
        let per_act = |rows: usize| -> Vec<Vec<f32>> {
            self.ops
                .iter()
                .zip(&self.widths)
                .map(|(op, w)| match op {
                    Op::Act(_) => vec![0.0; rows * w],
                    Op::Linear { .. } => Vec::new(),
                })
                .collect()
        };
        self.ws = Workspace {
            train_rows,
            eval_rows,
            values: self
                .widths
                .iter()
                .map(|w| vec![0.0; eval_rows * w])
                .collect(),
            before: per_act(train_rows),
            masks: per_act(train_rows),
            grad: vec![0.0; eval_rows * widest], // also the loss pass's scratch
            grad_next: vec![0.0; eval_rows * widest],
            grad_t: vec![0.0; train_rows * widest],
            labels: vec![0; eval_rows],
            row_max: vec![0.0; eval_rows],
            row_sum: vec![0.0; eval_rows],
            best: vec![0; eval_rows],
        };
    }

    /// Copies the points `indices` of `split` into the input buffer (`[n_in, s]`, the padding
    /// points zero) and the label buffer; returns `s`.
    #[inline(always)]
    pub(super) fn load_rows(
        &mut self,
        split: &HostSplit,
        indices: impl ExactSizeIterator<Item = usize>,
    ) -> usize {
        let f = self.spec.n_in;
        let rows = indices.len();
        let s = padded(rows);
        let input = &mut self.ws.values[0][..f * s];
        for (r, i) in indices.enumerate() {
            for (k, &v) in split.x[i * f..(i + 1) * f].iter().enumerate() {
                input[k * s + r] = v;
            }
            self.ws.labels[r] = split.y[i] as u32;
        }
        for k in 0..f {
            input[k * s + rows..(k + 1) * s].fill(0.0);
        }
        s
    }

    /// The forward pass over `s` loaded points, logits in the last value buffer. With
    /// `dropout` (`p > 0`), every activation's output is multiplied by a fresh mask of 0
    /// (probability `p`) and `1 / (1 - p)`, drawn point by point, unit by unit, as `child.rs`
    /// draws its `[rows, units]` mask; only the first `rows` points get draws.
    #[inline(always)]
    fn forward(&mut self, rows: usize, s: usize, mut dropout: Option<(f64, &mut impl rand::Rng)>) {
        let ws = &mut self.ws;
        for (i, op) in self.ops.iter().enumerate() {
            let (done, next) = ws.values.split_at_mut(i + 1);
            let (input, output) = (&done[i], &mut next[0]);
            match *op {
                Op::Linear { w, n_in, n_out } => {
                    let weight_t = &self.transposed[w..w + n_in * n_out];
                    let bias = &self.params[w + n_in * n_out..w + n_in * n_out + n_out];
                    // out[o] = b[o] + Σ_k W[k, o] · in[k]
                    combine(input, n_in, weight_t, Some(bias), output, n_out, s);
                }
                Op::Act(a) => {
                    let width = self.widths[i];
                    let n = width * s;
                    act_forward(a, &input[..n], &mut output[..n]);
                    if let Some((p, rng)) = dropout.as_mut() {
                        let keep = (1.0 / (1.0 - *p)) as f32;
                        let mask = &mut ws.masks[i][..n];
                        for r in 0..rows {
                            for u in 0..width {
                                mask[u * s + r] = if rng.random::<f64>() < *p { 0.0 } else { keep };
                            }
                        }
                        ws.before[i][..n].copy_from_slice(&output[..n]);
                        for (out, m) in output[..n].iter_mut().zip(mask.iter()) {
                            *out *= m;
                        }
                    }
                }
            }
        }
    }

    /// One training step on the loaded batch of `rows` points: forward, the mean cross-entropy's
    /// gradient by hand, Adam.
    #[inline(always)]
    fn step(
        &mut self,
        rows: usize,
        s: usize,
        dropout: Option<(f64, &mut impl rand::Rng)>,
        lr: f64,
    ) {
        self.backward(rows, s, dropout);
        self.adam(lr);
    }

    /// Fills `grads` with the gradient of the mean cross-entropy on the loaded batch of `rows`
    /// points (`s` padded), forward pass included.
    #[inline(always)]
    pub(super) fn backward(
        &mut self,
        rows: usize,
        s: usize,
        dropout: Option<(f64, &mut impl rand::Rng)>,
    ) {
        let with_dropout = dropout.is_some();
        self.forward(rows, s, dropout);
        let classes = self.spec.n_out;
        let ws = &mut self.ws;
        // d(mean cross-entropy)/d logits = (softmax - one_hot) / rows, 0 for padding points.
        let logits = &ws.values[self.ops.len()][..classes * s];
        let g = &mut ws.grad[..classes * s];
        softmax_numerators(logits, classes, s, &mut ws.row_max[..s], g);
        let sums = &mut ws.row_sum[..s];
        column_sums_into(g, classes, s, sums);
        let inv_batch = (1.0 / rows as f64) as f32;
        for v in sums.iter_mut() {
            *v = 1.0 / *v;
        }
        let labels = &ws.labels[..s];
        for (c, gc) in g.chunks_exact_mut(s).enumerate() {
            for (r, ((v, &inv_sum), &label)) in
                gc.iter_mut().zip(sums.iter()).zip(labels).enumerate()
            {
                let hot = if label == c as u32 { 1.0 } else { 0.0 };
                let value = (*v * inv_sum - hot) * inv_batch;
                *v = if r < rows { value } else { 0.0 };
            }
        }
        // Backward, op by op; `ws.grad` holds d loss / d output of the current op.
        for (i, op) in self.ops.iter().enumerate().rev() {
            let input = &ws.values[i];
            match *op {
                Op::Linear { w, n_in, n_out } => {
                    let g = &ws.grad[..n_out * s];
                    let (gw, gb) =
                        self.grads[w..w + n_in * n_out + n_out].split_at_mut(n_in * n_out);
                    // dW[k, o] = Σ_r in[k, r] · g[o, r];  db[o] = Σ_r g[o, r], each sum over
                    // the batch's points in order (as libtorch's kernels add them), from `g`
                    // laid out point-major.
                    let g_t = &mut ws.grad_t[..rows * n_out];
                    transpose(g, n_out, s, rows, g_t);
                    weight_gradient(&input[..n_in * s], n_in, s, g_t, n_out, rows, gw, gb);
                    // Nothing upstream of the first linear layer needs a gradient.
                    if i <= self.first_linear {
                        break;
                    }
                    // d in[k] = Σ_o W[k, o] · g[o]
                    let weight = &self.params[w..w + n_in * n_out];
                    combine(g, n_out, weight, None, &mut ws.grad_next, n_in, s);
                    std::mem::swap(&mut ws.grad, &mut ws.grad_next);
                }
                Op::Act(a) => {
                    let n = self.widths[i] * s;
                    let g = &mut ws.grad[..n];
                    let output = if with_dropout {
                        for (g, m) in g.iter_mut().zip(&ws.masks[i][..n]) {
                            *g *= m;
                        }
                        &ws.before[i][..n]
                    } else {
                        &ws.values[i + 1][..n]
                    };
                    act_backward(a, g, &input[..n], output, &mut ws.grad_next[..n]);
                    std::mem::swap(&mut ws.grad, &mut ws.grad_next);
                }
            }
        }
    }

    /// Adam as `adam.rs` computes it (PyTorch's formulas), element by element in f32.
    #[inline(always)]
    fn adam(&mut self, lr: f64) {
        let (b1, b2) = ADAM_BETAS;
        self.adam_step += 1;
        let bc1 = 1.0 - b1.powi(self.adam_step);
        let bc2 = 1.0 - b2.powi(self.adam_step);
        let (w1, w2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        let eps = (ADAM_EPS * bc2.sqrt()) as f32;
        let scale = (-lr * bc2.sqrt() / bc1) as f32;
        for (((p, &g), m), v) in self
            .params
            .iter_mut()
            .zip(&self.grads)
            .zip(self.adam_m.iter_mut())
            .zip(self.adam_v.iter_mut())
        {
            *m += w1 * (g - *m);
            *v += w2 * (g * g - *v);
            *p += (*m * scale) / (v.sqrt() + eps);
        }
        self.transpose_weights();
    }

    /// Mean cross-entropy (if `with_loss`, else 0) and fraction classified correctly on a whole
    /// split, `eval_rows` points at a time. The loss is NaN or infinite when a logit is.
    #[inline(always)]
    pub(super) fn evaluate(&mut self, split: &HostSplit, with_loss: bool) -> (f64, f64) {
        let classes = self.spec.n_out;
        let (mut loss, mut correct) = (0.0f64, 0usize);
        let mut start = 0;
        while start < split.len() {
            let rows = self.ws.eval_rows.min(split.len() - start);
            let s = self.load_rows(split, start..start + rows);
            self.forward(rows, s, None::<(f64, &mut Pcg64)>);
            let ws = &mut self.ws;
            let logits = &ws.values[self.ops.len()][..classes * s];
            argmax_columns(logits, classes, s, &mut ws.row_max[..s], &mut ws.best[..s]);
            correct += ws.best[..rows]
                .iter()
                .zip(&ws.labels[..rows])
                .filter(|(b, l)| b == l)
                .count();
            if with_loss {
                // A point's loss is max + ln(Σ_c e^(logit_c - max)) - logit[label]. The logs
                // of the sums (each in [1, classes]) are taken of their running product, in f64.
                let e = &mut ws.grad[..classes * s];
                softmax_numerators(logits, classes, s, &mut ws.row_max[..s], e);
                column_sums_into(e, classes, s, &mut ws.row_sum[..s]);
                let mut product = 1.0f64;
                for r in 0..rows {
                    let label = ws.labels[r] as usize;
                    loss += ws.row_max[r] as f64 - logits[label * s + r] as f64;
                    product *= ws.row_sum[r] as f64;
                    if product > 1e250 {
                        loss += product.ln();
                        product = 1.0;
                    }
                }
                loss += product.ln();
            }
            start += rows;
        }
        let n = split.len().max(1) as f64;
        (loss / n, correct as f64 / n)
    }

    /// After `backward` on `rows` loaded points: the sum of their cross-entropies (f64, as
    /// `evaluate` adds them) and how many the logits classify correctly.
    #[inline(always)]
    pub(super) fn batch_figures(&mut self, rows: usize, s: usize) -> (f64, usize) {
        let classes = self.spec.n_out;
        let ws = &mut self.ws;
        let logits = &ws.values[self.ops.len()][..classes * s];
        argmax_columns(logits, classes, s, &mut ws.row_max[..s], &mut ws.best[..s]);
        let correct = ws.best[..rows]
            .iter()
            .zip(&ws.labels[..rows])
            .filter(|(b, l)| b == l)
            .count();
        let e = &mut ws.grad_next[..classes * s];
        softmax_numerators(logits, classes, s, &mut ws.row_max[..s], e);
        column_sums_into(e, classes, s, &mut ws.row_sum[..s]);
        let mut loss = 0.0f64;
        for r in 0..rows {
            let label = ws.labels[r] as usize;
            loss +=
                ws.row_max[r] as f64 - logits[label * s + r] as f64 + (ws.row_sum[r] as f64).ln();
        }
        (loss, correct)
    }

    /// Replaces the weights (same length), keeping Adam's state.
    pub(super) fn set_params(&mut self, params: &[f32]) {
        self.params.copy_from_slice(params);
        self.transpose_weights();
    }

    /// Adam as libtorch's C++ `torch::optim::Adam` (what tch's `nn::Adam` runs) computes it, with
    /// its L2 penalty `weight_decay` added to the gradient: `m = b1 m + (1 - b1) g`,
    /// `v = b2 v + (1 - b2) g g`, `p += (-lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)`, element by
    /// element in f32.
    #[inline(always)]
    pub(super) fn adam_torch(&mut self, lr: f64, weight_decay: f64) {
        let (b1, b2) = ADAM_BETAS;
        self.adam_step += 1;
        let bc1 = 1.0 - b1.powi(self.adam_step);
        let bc2 = 1.0 - b2.powi(self.adam_step);
        let (b1f, b2f, w1, w2) = (b1 as f32, b2 as f32, (1.0 - b1) as f32, (1.0 - b2) as f32);
        let (root_bc2, eps) = (bc2.sqrt() as f32, ADAM_EPS as f32);
        let step = (-lr / bc1) as f32;
        let wd = weight_decay as f32;
        for (((p, &g), m), v) in self
            .params
            .iter_mut()
            .zip(&self.grads)
            .zip(self.adam_m.iter_mut())
            .zip(self.adam_v.iter_mut())
        {
            let g = if weight_decay != 0.0 { g + wd * *p } else { g };
            *m = *m * b1f + w1 * g;
            *v = *v * b2f + w2 * g * g;
            *p += step * *m / (v.sqrt() / root_bc2 + eps);
        }
        self.transpose_weights();
    }

    /// Fraction of `split`'s points classified correctly.
    pub fn accuracy(&mut self, split: &HostSplit) -> f64 {
        evaluate_best(self, split, false).1
    }

    /// Mean cross-entropy of the current weights on a whole split.
    pub fn loss(&mut self, split: &HostSplit) -> f64 {
        evaluate_best(self, split, true).0
    }
}

/// Whether to run the AVX2 copies of the loops: `config::CPU_KERNEL_AVX2` and a CPU that has
/// AVX2. The loops never fuse a multiply and an add and never reorder a sum, so both copies give
/// bit-for-bit the same numbers; only the speed differs (a test checks this).
#[inline(always)]
pub(super) fn use_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::config::CPU_KERNEL_AVX2 && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the kernel runs its AVX2 loops on this machine.
pub fn uses_avx2() -> bool {
    use_avx2()
}

/// `train_loop` compiled with AVX2 enabled for everything it inlines.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn train_loop_avx2(
    child: &mut CpuChild,
    data: &HostData,
    settings: &ChildSettings,
    rng: &mut impl rand::Rng,
    stop: &Stop,
) -> TrainOutcome {
    train_loop(child, data, settings, rng, stop)
}

/// `CpuChild::evaluate` compiled with AVX2 enabled.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn evaluate_avx2(child: &mut CpuChild, split: &HostSplit, with_loss: bool) -> (f64, f64) {
    child.evaluate(split, with_loss)
}

/// `child.evaluate(split, with_loss)` with the widest loops this CPU runs.
fn evaluate_best(child: &mut CpuChild, split: &HostSplit, with_loss: bool) -> (f64, f64) {
    child.reserve(1, split.len());
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: `use_avx2` checked that the CPU has AVX2.
        return unsafe { evaluate_avx2(child, split, with_loss) };
    }
    child.evaluate(split, with_loss)
}

/// Trains a freshly initialised child of `spec`; every random draw (initial weights, one
/// shuffle of the train split per epoch, dropout masks) comes from a generator seeded with
/// `seed`, in `child::train_child`'s order.
pub fn train_child(
    spec: &MlpSpec,
    data: &HostData,
    settings: &ChildSettings,
    seed: u64,
    stop: &Stop,
) -> (CpuChild, TrainOutcome) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut child = CpuChild::new(spec, &mut rng);
    let outcome = train(&mut child, data, settings, &mut rng, stop);
    (child, outcome)
}

/// Trains `child` with early stopping, exactly as `child::train` does; returns what the search
/// needs to know. Like `child::train` it looks at `stop` before every mini-batch; an outcome
/// returned after a stop was requested is incomplete, and the caller drops it.
pub fn train(
    child: &mut CpuChild,
    data: &HostData,
    settings: &ChildSettings,
    rng: &mut impl rand::Rng,
    stop: &Stop,
) -> TrainOutcome {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: `use_avx2` checked that the CPU has AVX2.
        return unsafe { train_loop_avx2(child, data, settings, rng, stop) };
    }
    train_loop(child, data, settings, rng, stop)
}

#[inline(always)]
fn train_loop(
    child: &mut CpuChild,
    data: &HostData,
    settings: &ChildSettings,
    rng: &mut impl rand::Rng,
    stop: &Stop,
) -> TrainOutcome {
    let n = data.train.len();
    let batch = settings.batch_size.max(1);
    child.reserve(batch.min(n.max(1)), n.max(data.dev.len()));
    let p = settings.dropout;
    let mut order: Vec<i64> = Vec::with_capacity(n);
    let mut stopping = EarlyStopping::new(settings.patience);
    let mut history = Vec::new();
    let mut accuracy = 0.0;
    let mut diverged = false;
    for _epoch in 0..settings.max_epochs {
        // `child::permutation`'s draws: a fresh 0..n, shuffled.
        order.clear();
        order.extend(0..n as i64);
        order.shuffle(rng);
        for indices in order.chunks(batch) {
            if stop.requested() {
                return TrainOutcome {
                    accuracy,
                    epochs: history.len(),
                    diverged,
                    history,
                };
            }
            let s = child.load_rows(&data.train, indices.iter().map(|&i| i as usize));
            let dropout = (p > 0.0).then_some((p, &mut *rng));
            child.step(indices.len(), s, dropout, settings.lr);
        }
        let loss = child.evaluate(&data.train, true).0;
        if !loss.is_finite() {
            diverged = true;
            accuracy = 0.0;
            history.push((loss, 0.0));
            break;
        }
        accuracy = child.evaluate(&data.dev, false).1;
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

// --- The loops: arrays `[units, s]`, `s` a multiple of LANES; each inner loop over points ---

/// `out[i] = init[i] + Σ_j m[i, j] · input[j]` for `i < n_out`, `j < n_in`, `m` `[n_out, n_in]`
/// row-major, each row a vector over `s` points, the sum in order of `j` from `init` (a bias) or
/// 0. With `m` a weight transposed it is a linear layer's forward pass; with `m` the weight
/// itself, its input gradient. Four blocks of points at a time keep four sums in flight.
#[inline(always)]
fn combine(
    input: &[f32],
    n_in: usize,
    m: &[f32],
    init: Option<&[f32]>,
    out: &mut [f32],
    n_out: usize,
    s: usize,
) {
    let input = &input[..n_in * s];
    let m = &m[..n_out * n_in];
    for (i, (out_i, m_i)) in out[..n_out * s]
        .chunks_exact_mut(s)
        .zip(m.chunks_exact(n_in))
        .enumerate()
    {
        let start = init.map_or(0.0, |b| b[i]);
        let out_i = blocks_mut(out_i);
        let whole = out_i.len() / 4 * 4;
        let (fours, rest) = out_i.split_at_mut(whole);
        for (g, out_g) in fours.chunks_exact_mut(4).enumerate() {
            let mut acc = [[start; LANES]; 4];
            for (&c, in_j) in m_i.iter().zip(input.chunks_exact(s)) {
                let x = &blocks(in_j)[4 * g..4 * g + 4];
                for (acc_q, x_q) in acc.iter_mut().zip(x) {
                    for l in 0..LANES {
                        acc_q[l] += c * x_q[l];
                    }
                }
            }
            out_g.copy_from_slice(&acc);
        }
        for (b, out_b) in rest.iter_mut().enumerate() {
            let mut acc = [start; LANES];
            for (&c, in_j) in m_i.iter().zip(input.chunks_exact(s)) {
                let x = &blocks(in_j)[whole + b];
                for l in 0..LANES {
                    acc[l] += c * x[l];
                }
            }
            *out_b = acc;
        }
    }
}

/// `out[r, o] = g[o, r]` for the first `rows` points: `[n, s]` to `[rows, n]`.
#[inline(always)]
fn transpose(g: &[f32], n: usize, s: usize, rows: usize, out: &mut [f32]) {
    let (g, out) = (&g[..n * s], &mut out[..rows * n]);
    // Whole 8 × 8 tiles with AVX2 shuffles where the CPU has them (moving values only, so the
    // result is the same), the rest one value at a time.
    let (tile_o, tile_r) = (n / 8 * 8, rows / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if tile_o > 0 && tile_r > 0 && use_avx2() {
        // SAFETY: `use_avx2` checked the CPU; the tiles lie within `g` (`n * s` values, `s >=
        // rows`) and `out` (`rows * n`).
        unsafe { transpose_tiles_avx2(g, n, s, tile_o, tile_r, out) };
        for r in tile_r..rows {
            for o in 0..tile_o {
                out[r * n + o] = g[o * s + r];
            }
        }
        for (r, out_r) in out.chunks_exact_mut(n).enumerate() {
            for (o, v) in out_r.iter_mut().enumerate().skip(tile_o) {
                *v = g[o * s + r];
            }
        }
        return;
    }
    for (r, out_r) in out.chunks_exact_mut(n).enumerate() {
        for (o, v) in out_r.iter_mut().enumerate() {
            *v = g[o * s + r];
        }
    }
}

/// `out[r, o] = g[o, r]` for `o < tile_o`, `r < tile_r` (both multiples of 8), in 8 × 8 tiles.
///
/// # Safety
/// The CPU must have AVX2, `g` must hold `tile_o` rows of stride `s >= tile_r`, and `out`
/// `tile_r` rows of stride `n >= tile_o`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn transpose_tiles_avx2(
    g: &[f32],
    n: usize,
    s: usize,
    tile_o: usize,
    tile_r: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    assert!(tile_o <= n && tile_r <= s && g.len() >= tile_o * s && out.len() >= tile_r * n);
    let (src, dst) = (g.as_ptr(), out.as_mut_ptr());
    for o in (0..tile_o).step_by(8) {
        for r in (0..tile_r).step_by(8) {
            let row = |i: usize| _mm256_loadu_ps(src.add((o + i) * s + r));
            let (r0, r1, r2, r3, r4, r5, r6, r7) = (
                row(0),
                row(1),
                row(2),
                row(3),
                row(4),
                row(5),
                row(6),
                row(7),
            );
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let columns = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (i, c) in columns.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add((r + i) * n + o), c);
            }
        }
    }
}

/// A linear layer's weight and bias gradients: `dw[k, o] = Σ_r a[k, r] · g_t[r, o]` and
/// `db[o] = Σ_r g_t[r, o]`, for `a` `[n_in, s]` and `g_t` `[rows, n_out]`, the sums over the
/// `rows` points in order, each row of `dw` a vector over `o`. Common widths get a copy whose
/// row lives in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn weight_gradient(
    a: &[f32],
    n_in: usize,
    s: usize,
    g_t: &[f32],
    n_out: usize,
    rows: usize,
    dw: &mut [f32],
    db: &mut [f32],
) {
    match n_out {
        1 => weight_gradient_n::<1>(a, n_in, s, g_t, rows, dw, db),
        2 => weight_gradient_n::<2>(a, n_in, s, g_t, rows, dw, db),
        3 => weight_gradient_n::<3>(a, n_in, s, g_t, rows, dw, db),
        4 => weight_gradient_n::<4>(a, n_in, s, g_t, rows, dw, db),
        8 => weight_gradient_n::<8>(a, n_in, s, g_t, rows, dw, db),
        16 => weight_gradient_n::<16>(a, n_in, s, g_t, rows, dw, db),
        32 => weight_gradient_n::<32>(a, n_in, s, g_t, rows, dw, db),
        _ => {
            dw[..n_in * n_out].fill(0.0);
            db[..n_out].fill(0.0);
            for (r, g_r) in g_t[..rows * n_out].chunks_exact(n_out).enumerate() {
                for (k, dw_k) in dw[..n_in * n_out].chunks_exact_mut(n_out).enumerate() {
                    let x = a[k * s + r];
                    for (d, &g) in dw_k.iter_mut().zip(g_r) {
                        *d += x * g;
                    }
                }
                for (d, &g) in db[..n_out].iter_mut().zip(g_r) {
                    *d += g;
                }
            }
        }
    }
}

#[inline(always)]
fn weight_gradient_n<const N: usize>(
    a: &[f32],
    n_in: usize,
    s: usize,
    g_t: &[f32],
    rows: usize,
    dw: &mut [f32],
    db: &mut [f32],
) {
    let g_t = arrays::<N>(&g_t[..rows * N]);
    let a = &a[..n_in * s];
    let dw = &mut dw[..n_in * N];
    // Four rows of `dw` at a time: four independent sums in flight.
    let fours = n_in / 4 * 4;
    for (a_4, dw_4) in a[..fours * s]
        .chunks_exact(4 * s)
        .zip(dw[..fours * N].chunks_exact_mut(4 * N))
    {
        let (a0, a1, a2, a3) = (
            &a_4[..rows],
            &a_4[s..s + rows],
            &a_4[2 * s..2 * s + rows],
            &a_4[3 * s..3 * s + rows],
        );
        let mut acc = [[0f32; N]; 4];
        for ((((g_r, &x0), &x1), &x2), &x3) in g_t.iter().zip(a0).zip(a1).zip(a2).zip(a3) {
            for o in 0..N {
                acc[0][o] += x0 * g_r[o];
                acc[1][o] += x1 * g_r[o];
                acc[2][o] += x2 * g_r[o];
                acc[3][o] += x3 * g_r[o];
            }
        }
        for (dw_k, acc_k) in dw_4.chunks_exact_mut(N).zip(acc) {
            dw_k.copy_from_slice(&acc_k);
        }
    }
    for (a_k, dw_k) in a[fours * s..]
        .chunks_exact(s)
        .zip(dw[fours * N..].chunks_exact_mut(N))
    {
        let mut acc = [0f32; N];
        for (&x, g_r) in a_k[..rows].iter().zip(g_t) {
            for o in 0..N {
                acc[o] += x * g_r[o];
            }
        }
        dw_k.copy_from_slice(&acc);
    }
    let mut acc = [0f32; N];
    for g_r in g_t {
        for o in 0..N {
            acc[o] += g_r[o];
        }
    }
    db[..N].copy_from_slice(&acc);
}

/// `v` as arrays of `N` values (its length is a multiple of `N`).
#[inline(always)]
fn arrays<const N: usize>(v: &[f32]) -> &[[f32; N]] {
    debug_assert_eq!(v.len() % N, 0);
    // SAFETY: `[f32; N]` has the alignment of f32 and the size of N of them, and the arrays
    // cover the first `len / N * N` values of `v`, borrowed for as long as `v`.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), v.len() / N) }
}

/// `v` as blocks of `LANES` values (its length is a multiple of `LANES`: a padded row).
#[inline(always)]
fn blocks(v: &[f32]) -> &[[f32; LANES]] {
    arrays::<LANES>(v)
}

/// `blocks` for a mutable row.
#[inline(always)]
fn blocks_mut(v: &mut [f32]) -> &mut [[f32; LANES]] {
    debug_assert_eq!(v.len() % LANES, 0);
    // SAFETY: as in `blocks`, and the mutable borrow of `v` is passed on.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), v.len() / LANES) }
}

/// `out[r] = Σ_c e[c, r]` for every point `r`, the sum in order of `c`.
#[inline(always)]
fn column_sums_into(e: &[f32], classes: usize, s: usize, out: &mut [f32]) {
    out.fill(0.0);
    for e_c in e[..classes * s].chunks_exact(s) {
        for (o, &v) in out.iter_mut().zip(e_c) {
            *o += v;
        }
    }
}

/// The activation of every element of `z`.
#[inline(always)]
fn act_forward(a: Activation, z: &[f32], out: &mut [f32]) {
    let slope = LEAKY_RELU_SLOPE as f32;
    let pairs = out.iter_mut().zip(z);
    match a {
        Activation::Sigmoid => pairs.for_each(|(o, &z)| *o = 1.0 / (1.0 + exp(-z))),
        Activation::Tanh => pairs.for_each(|(o, &z)| *o = tanh(z)),
        // Written so NaN passes through, as in PyTorch.
        Activation::ReLU => pairs.for_each(|(o, &z)| *o = if z < 0.0 { 0.0 } else { z }),
        Activation::LeakyReLU => pairs.for_each(|(o, &z)| *o = if z > 0.0 { z } else { z * slope }),
    }
}

/// `out = g · df/dz`, from the activation's input `z` and output `a` (PyTorch's
/// `sigmoid_backward`, `tanh_backward`, `threshold_backward` and `leaky_relu_backward`).
/// Written to another buffer than `g`: an in-place "keep or replace" would compile to masked
/// stores, which are slow on some CPUs.
#[inline(always)]
fn act_backward(act: Activation, g: &[f32], z: &[f32], a: &[f32], out: &mut [f32]) {
    let slope = LEAKY_RELU_SLOPE as f32;
    let out = out.iter_mut().zip(g);
    match act {
        Activation::Sigmoid => {
            for ((o, &g), &a) in out.zip(a) {
                *o = g * (1.0 - a) * a;
            }
        }
        Activation::Tanh => {
            for ((o, &g), &a) in out.zip(a) {
                *o = g * (1.0 - a * a);
            }
        }
        Activation::ReLU => {
            for ((o, &g), &a) in out.zip(a) {
                *o = if a <= 0.0 { 0.0 } else { g };
            }
        }
        Activation::LeakyReLU => {
            for ((o, &g), &z) in out.zip(z) {
                *o = if z > 0.0 { g } else { g * slope };
            }
        }
    }
}

/// `u32::MAX` if `condition`, else 0.
#[inline(always)]
fn all_ones_if(condition: bool) -> u32 {
    0u32.wrapping_sub(u32::from(condition))
}

/// `e[c, r] = exp(logits[c, r] - max_c logits[c, r])` (softmax's numerators), the maxima in
/// `max` (a NaN only if a point's logits are all NaN; then its numerators are NaN too).
#[inline(always)]
fn softmax_numerators(logits: &[f32], classes: usize, s: usize, max: &mut [f32], e: &mut [f32]) {
    max.fill(f32::NEG_INFINITY);
    for l_c in logits[..classes * s].chunks_exact(s) {
        for (m, &v) in max.iter_mut().zip(l_c) {
            *m = m.max(v); // a NaN `v` leaves `m`, as `v > m` would
        }
    }
    for (e_c, l_c) in e.chunks_exact_mut(s).zip(logits.chunks_exact(s)) {
        for ((e, &v), &m) in e_c.iter_mut().zip(l_c).zip(max.iter()) {
            *e = exp(v - m);
        }
    }
}

/// Per point, the index of its largest logit, the first on ties, a NaN counting as the largest
/// (PyTorch's `argmax`); `best_value` is scratch.
#[inline(always)]
fn argmax_columns(
    logits: &[f32],
    classes: usize,
    s: usize,
    best_value: &mut [f32],
    best: &mut [u32],
) {
    best_value.copy_from_slice(&logits[..s]);
    best.fill(0);
    for (c, l_c) in logits[..classes * s].chunks_exact(s).enumerate().skip(1) {
        for ((b, bv), &v) in best.iter_mut().zip(best_value.iter_mut()).zip(l_c) {
            let better = v > *bv || (v.is_nan() && !bv.is_nan());
            let keep = !all_ones_if(better);
            *b = (*b & keep) | (c as u32 & !keep);
            *bv = f32::from_bits((bv.to_bits() & keep) | (v.to_bits() & !keep));
        }
    }
}

/// ln 2 split into a head with 12 significant bits (so `n · LN2_HI` is exact for the
/// exponents `exp` meets) and the rest.
const LN2_HI: f32 = 2839.0 / 4096.0;
const LN2_LO: f32 = (std::f64::consts::LN_2 - 2839.0 / 4096.0) as f32;
/// 1.5 · 2²³: adding it rounds an f32 below 2²² to an integer, which lands in the low bits.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` for f32, within about 2 units in the last place: `x = n ln 2 + r` with `|r| <= ln 2 / 2`,
/// `e^r` by its Taylor series to `r⁷` (error below 1e-8), times `2^n` built from the exponent
/// bits. Branch-free so the compiler vectorises it; arguments are clamped to the normal range
/// (`e^x` of at most about 2.2e38 and at least 1.2e-38) and NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = if x > 88.3 { 88.3 } else { x };
    let x = if x < -87.3 { -87.3 } else { x };
    let t = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = t - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let n_bits = (t.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let scale = f32::from_bits((n_bits.wrapping_add(127) as u32).wrapping_shl(23));
    p * scale
}

/// `tanh x` for f32, within a few units in the last place: below |x| = 0.4 its Taylor series to
/// x¹³ (error below 2e-9), above `1 - 2 / (e^{2|x|} + 1)` with the sign of x. Branch-free, both
/// computed and one kept, so the compiler vectorises it; NaN stays NaN. (A cheaper
/// `expm1(2x) / (expm1(2x) + 2)` is as accurate against f64 but further from PyTorch's tanh:
/// two of the oracle test's 400 trainings then drifted past 1e-5 in the loss.)
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let z = x * x;
    let series = x + x
        * z
        * (-1.0 / 3.0
            + z * (2.0 / 15.0
                + z * (-17.0 / 315.0
                    + z * (62.0 / 2835.0
                        + z * (-1382.0 / 155_925.0 + z * (21_844.0 / 6_081_075.0))))));
    let ax = x.abs();
    let far = (1.0 - 2.0 / (exp(2.0 * ax) + 1.0)).copysign(x);
    if ax < 0.4 {
        series
    } else {
        far
    }
}

/// FLOPs of one training step of `spec` on `rows` points, counted from the algorithm: every
/// add, multiply, divide, square root, comparison-select, `exp` and `tanh` is one (see
/// docs/cpu-kernel.md).
pub fn step_flops(spec: &MlpSpec, rows: usize, dropout: bool) -> u64 {
    let child = CpuChild::from_params(spec, vec![0.0; spec.n_params()]);
    let b = rows as u64;
    let c = spec.n_out as u64;
    let mut flops = 0u64;
    for (i, op) in child.ops.iter().enumerate() {
        match *op {
            Op::Linear { n_in, n_out, .. } => {
                let (k, n) = (n_in as u64, n_out as u64);
                flops += 2 * b * k * n; // forward: products and sums from the bias
                flops += 2 * b * k * n + b * n; // weight and bias gradients
                if i > child.first_linear {
                    flops += 2 * b * k * n; // gradient of the input
                }
            }
            Op::Act(a) => {
                let w = child.widths[i] as u64;
                flops += b * w * act_cost(a, i > child.first_linear);
                if dropout {
                    flops += 2 * b * w; // mask on the way forward and back
                }
            }
        }
    }
    // Softmax gradient: max and subtract (2c), exp (c), sum (c), reciprocal, scale, subtract
    // one-hot, divide by the batch (3c).
    flops += b * (7 * c + 1);
    flops + ADAM_FLOPS * spec.n_params() as u64
}

/// FLOPs of evaluating a split of `rows` points (forward, plus the loss's exp and log).
pub fn eval_flops(spec: &MlpSpec, rows: usize, with_loss: bool) -> u64 {
    let child = CpuChild::from_params(spec, vec![0.0; spec.n_params()]);
    let b = rows as u64;
    let c = spec.n_out as u64;
    let mut flops = 0u64;
    for (i, op) in child.ops.iter().enumerate() {
        match *op {
            Op::Linear { n_in, n_out, .. } => flops += 2 * b * (n_in * n_out) as u64,
            Op::Act(_) => flops += b * child.widths[i] as u64,
        }
    }
    flops += b * (c - 1); // argmax
    if with_loss {
        flops += b * (5 * c + 2); // max, subtract, exp, sum, log, add, subtract
    }
    flops
}

/// Adam per weight: two moment updates (3 and 4), square root, add, multiply, divide, add.
const ADAM_FLOPS: u64 = 12;

/// Per element, the activation forward and, when a gradient flows through it, backward.
fn act_cost(a: Activation, backward: bool) -> u64 {
    let back = match a {
        Activation::Sigmoid => 3,
        Activation::Tanh => 3,
        Activation::ReLU | Activation::LeakyReLU => 1,
    };
    1 + if backward { back } else { 0 }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::{make_moons, split};
    use crate::nn::mlp::Activation::*;
    use crate::nn::mlp::ACTIVATIONS;
    use crate::space::{MlpSpace, SearchSpace};

    fn moons() -> TensorData {
        TensorData::new(&split(&make_moons(1000, 0.2, 0), 0.7, 0.1), Device::Cpu)
    }

    fn spec(layers: Vec<Layer>) -> MlpSpec {
        MlpSpec {
            n_in: 2,
            n_out: 2,
            layers,
        }
    }

    /// `n` architectures of the half-moon space, every action drawn uniformly.
    pub(crate) fn random_specs(n: usize, seed: u64) -> Vec<MlpSpec> {
        let space = MlpSpace::new(&crate::config::Settings::default());
        let mut rng = Pcg64::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut d = Vec::new();
                while !space.is_complete(&d) {
                    d.push(rng.random_range(0..space.vocabulary()));
                }
                crate::space::halfmoon::mlp_spec(&d, 2, 2)
            })
            .collect()
    }

    pub(crate) fn relative(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs()).max(1e-30)
    }

    #[test]
    fn exp_and_tanh_are_within_a_few_ulps_of_f64() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.3e-4; // -86 .. 86
            let e = exp(x) as f64;
            worst.0 = worst.0.max(relative(e, (x as f64).exp()));
            let t = x / 8.0; // -10.75 .. 10.75, dense around 0
            let th = tanh(t) as f64;
            let want = (t as f64).tanh();
            if want != 0.0 {
                worst.1 = worst.1.max(relative(th, want));
            }
        }
        // 2^-23 is about 1.2e-7: within 3 units in the last place.
        assert!(worst.0 < 3.6e-7, "exp: worst relative error {}", worst.0);
        assert!(worst.1 < 3.6e-7, "tanh: worst relative error {}", worst.1);
        assert!(exp(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert!(exp(-1000.0) < 1.3e-38 && exp(1000.0) > 1e38);
        assert_eq!((tanh(50.0), tanh(-50.0), tanh(0.0)), (1.0, -1.0, 0.0));
    }

    #[test]
    fn the_epoch_shuffle_draws_as_child_rs() {
        let (mut a, mut b) = (Pcg64::seed_from_u64(9), Pcg64::seed_from_u64(9));
        for n in [700, 31, 1] {
            let ours = {
                let mut order: Vec<i64> = (0..n as i64).collect();
                order.shuffle(&mut a);
                order
            };
            let theirs =
                Vec::<i64>::try_from(crate::nn::child::permutation(n, &mut b, Device::Cpu))
                    .unwrap();
            assert_eq!(ours, theirs);
        }
        assert_eq!(
            a.random::<u64>(),
            b.random::<u64>(),
            "the same number of draws"
        );
    }

    #[test]
    fn gradient_matches_the_libtorch_path_for_every_activation() {
        let data = moons();
        let host = data.host();
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
            spec(vec![Layer::Linear(3), Layer::Linear(5), Layer::Act(Tanh)]),
            spec(vec![]),
        ];
        let indices: Vec<i64> = (0..32).map(|i| (i * 7) % 700).collect();
        let rows = indices.len() as i64;
        let order = Tensor::from_slice(&indices);
        for sp in &specs {
            let mut ours = CpuChild::new(sp, &mut Pcg64::seed_from_u64(3));
            let mut theirs = Child::new(sp, Device::Cpu, &mut Pcg64::seed_from_u64(3));
            let init = Vec::<f32>::try_from(theirs.params()).unwrap();
            assert_eq!(ours.params(), &init[..], "{sp:?}: the same initial weights");
            ours.reserve(32, 700);
            let s = ours.load_rows(&host.train, indices.iter().map(|&i| i as usize));
            ours.backward(indices.len(), s, None::<(f64, &mut Pcg64)>);
            let g = theirs.gradient(
                &data.train.x.index_select(0, &order),
                &data.train.one_hot.index_select(0, &order),
            );
            let g = Vec::<f32>::try_from(g).unwrap();
            assert_eq!(g.len(), ours.grads.len());
            for (i, (a, b)) in ours.grads.iter().zip(&g).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                    "{sp:?}, weight {i}: {a} vs {b}"
                );
            }
            assert_eq!(rows, 32);
        }
    }

    /// The oracle: from the same seed (so the same initial weights, batch order and
    /// dropout masks), the kernel and libtorch's fast path give every epoch's loss to 1e-5
    /// relative and every dev accuracy exactly, over whole trainings of 200 random
    /// architectures of the half-moon space, with and without dropout.
    #[test]
    fn whole_trainings_match_the_libtorch_path_on_200_architectures() {
        // As runs do: tiny tensors, one intra-op thread (the results do not depend on it).
        tch::set_num_threads(crate::config::TORCH_THREADS);
        let data = moons();
        let specs = random_specs(200, 15);
        for a in ACTIVATIONS {
            assert!(
                specs.iter().any(|s| s.layers.contains(&Layer::Act(a))),
                "{a:?} drawn"
            );
        }
        let plain = ChildSettings::default();
        let dropped = ChildSettings {
            dropout: 0.2,
            ..ChildSettings::default()
        };
        let mut epochs = 0;
        for (i, s) in specs.iter().enumerate() {
            for settings in [&plain, &dropped] {
                let seed = 1000 + i as u64;
                let (_, ours) = train_child(s, data.host(), settings, seed, &Stop::new());
                let (_, theirs) =
                    crate::nn::child::train_child(s, &data, settings, seed, &Stop::new());
                let what = format!("{s:?}, dropout {}", settings.dropout);
                assert_eq!(ours.epochs, theirs.epochs, "{what}: {ours:?} vs {theirs:?}");
                assert_eq!(ours.diverged, theirs.diverged, "{what}");
                for (e, (a, b)) in ours.history.iter().zip(&theirs.history).enumerate() {
                    assert!(
                        relative(a.0, b.0) <= 1e-5,
                        "{what}, epoch {e}: loss {} vs {}",
                        a.0,
                        b.0
                    );
                    assert_eq!(a.1, b.1, "{what}, epoch {e}: dev accuracy");
                }
                epochs += ours.epochs;
            }
        }
        assert!(
            epochs > 400 * 11,
            "early stopping ran every child past its patience"
        );
    }

    #[test]
    fn one_epoch_leaves_the_same_weights_as_the_libtorch_path() {
        let data = moons();
        let settings = ChildSettings {
            max_epochs: 1,
            dropout: 0.1,
            ..ChildSettings::default()
        };
        for (i, s) in random_specs(20, 4).iter().enumerate() {
            let (ours, _) = train_child(s, data.host(), &settings, i as u64, &Stop::new());
            let (theirs, _) =
                crate::nn::child::train_child(s, &data, &settings, i as u64, &Stop::new());
            let theirs = Vec::<f32>::try_from(theirs.params()).unwrap();
            for (a, b) in ours.params().iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{s:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn avx2_and_baseline_loops_agree_bit_for_bit() {
        if !use_avx2() {
            return; // nothing to compare on this CPU
        }
        let data = moons();
        let settings = ChildSettings {
            max_epochs: 5,
            dropout: 0.1,
            ..ChildSettings::default()
        };
        for (i, s) in random_specs(10, 8).iter().enumerate() {
            let run = |avx2: bool| {
                let mut rng = Pcg64::seed_from_u64(i as u64);
                let mut child = CpuChild::new(s, &mut rng);
                let outcome = if avx2 {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `use_avx2` said the CPU has AVX2.
                    unsafe {
                        train_loop_avx2(&mut child, data.host(), &settings, &mut rng, &Stop::new())
                    }
                } else {
                    train_loop(&mut child, data.host(), &settings, &mut rng, &Stop::new())
                };
                (child.params().to_vec(), outcome)
            };
            assert_eq!(run(true), run(false), "{s:?}");
        }
    }

    #[test]
    fn transpose_moves_every_value_once() {
        for (n, s, rows) in [
            (8, 32, 32),
            (16, 32, 28),
            (4, 16, 13),
            (24, 40, 37),
            (2, 8, 8),
        ] {
            let g: Vec<f32> = (0..n * s).map(|i| i as f32).collect();
            let mut out = vec![-1.0; rows * n];
            transpose(&g, n, s, rows, &mut out);
            for r in 0..rows {
                for o in 0..n {
                    assert_eq!(
                        out[r * n + o],
                        g[o * s + r],
                        "n {n}, rows {rows}: ({r}, {o})"
                    );
                }
            }
        }
    }

    #[test]
    fn a_seed_repeats_and_a_diverging_child_scores_zero() {
        let data = moons();
        let s = spec(vec![Layer::Linear(16), Layer::Act(ReLU)]);
        let settings = ChildSettings {
            max_epochs: 5,
            dropout: 0.3,
            ..ChildSettings::default()
        };
        let a = train_child(&s, data.host(), &settings, 1, &Stop::new());
        let b = train_child(&s, data.host(), &settings, 1, &Stop::new());
        assert_eq!((a.0.params(), &a.1), (b.0.params(), &b.1));
        let wild = ChildSettings {
            lr: 1e30,
            max_epochs: 20,
            ..ChildSettings::default()
        };
        let (_, outcome) = train_child(&s, data.host(), &wild, 1, &Stop::new());
        assert!(outcome.diverged, "{outcome:?}");
        assert_eq!(outcome.accuracy, 0.0);
    }

    #[test]
    fn the_switch_chooses_the_path() {
        let data = moons();
        let s = spec(vec![Layer::Linear(4), Layer::Act(Tanh)]);
        let on = ChildSettings {
            max_epochs: 3,
            ..ChildSettings::default()
        };
        let off = ChildSettings {
            cpu_kernel: false,
            ..on.clone()
        };
        assert!(applies(&data, &on) && !applies(&data, &off));
        let mut settings = crate::config::Settings::default();
        assert!(settings.child.cpu_kernel, "on by default");
        settings.set("child.cpu_kernel=false").unwrap();
        assert!(
            !applies(&data, &settings.child),
            "--set child.cpu_kernel=false"
        );
        assert_eq!(
            train_fresh(&s, &data, &on, 2, &Stop::new()),
            train_child(&s, data.host(), &on, 2, &Stop::new()).1
        );
        assert_eq!(
            train_fresh(&s, &data, &off, 2, &Stop::new()),
            crate::nn::child::train_child(&s, &data, &off, 2, &Stop::new()).1
        );
        // The libtorch copy of a kernel-trained child computes the same accuracy.
        let (child, _) = train_fresh_child(&s, &data, &on, 2, &Stop::new());
        let (mut ours, _) = train_child(&s, data.host(), &on, 2, &Stop::new());
        assert_eq!(child.accuracy(&data.test), ours.accuracy(&data.host().test));
    }

    #[test]
    fn flops_of_a_tiny_net_by_hand() {
        // 2-3-2 with a tanh, 4 rows. Forward: 2*4*(2*3) + 2*4*(3*2) = 96. Gradients of weights
        // and biases: 48 + 12 and 48 + 8; of the hidden values: 48 (not of the inputs). Tanh:
        // 4*3 forward, 3 each backward: 12 + 36. Softmax gradient: 4 * (7*2 + 1) = 60. Adam:
        // 12 per weight, 9 + 8 = 17 weights: 204.
        let s = spec(vec![Layer::Linear(3), Layer::Act(Tanh)]);
        let expected = 96 + 60 + 56 + 48 + 48 + 60 + 204;
        assert_eq!(step_flops(&s, 4, false), expected);
        // Dropout adds a multiply forward and back for each of the 12 tanh outputs.
        assert_eq!(step_flops(&s, 4, true), expected + 24);
        // Evaluating 4 points: forward 96, tanh 12, argmax 4, loss 4 * 12.
        assert_eq!(eval_flops(&s, 4, false), 96 + 12 + 4);
        assert_eq!(eval_flops(&s, 4, true), 96 + 12 + 4 + 48);
    }
}
