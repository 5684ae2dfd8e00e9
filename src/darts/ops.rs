//! The operations of a DARTS cell by Katib's names (Liu, Simonyan & Yang 2019; Katib's DARTS
//! trial): ReLU-conv-batch-norm blocks, separable convolutions applied twice, dilated
//! convolutions, 3x3 pools followed by batch norm, the skip connection (a factorized reduce at
//! stride 2) and `none`; and the mixed operation, the weighted sum of them all. Every network
//! here is functional: its parameters are a list of tensors the forward pass takes, so the
//! architect can run it on unrolled weights `w'` and differentiate through them.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Init};
use tch::Tensor;

use super::config::{BN_EPS, BN_MOMENTUM};

/// Katib's name of the zero operation, always the last primitive.
pub const NONE: &str = "none";

/// The primitives, by Katib's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Primitive {
    SepConv3,
    SepConv5,
    DilConv3,
    DilConv5,
    AvgPool3,
    MaxPool3,
    Skip,
    None,
}

impl Primitive {
    pub fn all() -> [Primitive; 8] {
        use Primitive::*;
        [
            SepConv3, SepConv5, DilConv3, DilConv5, AvgPool3, MaxPool3, Skip, None,
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Primitive::SepConv3 => "separable_convolution_3x3",
            Primitive::SepConv5 => "separable_convolution_5x5",
            Primitive::DilConv3 => "dilated_convolution_3x3",
            Primitive::DilConv5 => "dilated_convolution_5x5",
            Primitive::AvgPool3 => "avg_pooling_3x3",
            Primitive::MaxPool3 => "max_pooling_3x3",
            Primitive::Skip => "skip_connection",
            Primitive::None => NONE,
        }
    }

    pub fn from_name(name: &str) -> Option<Primitive> {
        Primitive::all().into_iter().find(|p| p.name() == name)
    }

    /// A short label for drawings.
    pub fn short(self) -> &'static str {
        match self {
            Primitive::SepConv3 => "sep 3x3",
            Primitive::SepConv5 => "sep 5x5",
            Primitive::DilConv3 => "dil 3x3",
            Primitive::DilConv5 => "dil 5x5",
            Primitive::AvgPool3 => "avg 3x3",
            Primitive::MaxPool3 => "max 3x3",
            Primitive::Skip => "skip",
            Primitive::None => "none",
        }
    }

    /// True for the operations without weights of their own (pools, skip, none): the ones
    /// DARTS is known to collapse to.
    pub fn parameter_free(self) -> bool {
        matches!(
            self,
            Primitive::AvgPool3 | Primitive::MaxPool3 | Primitive::Skip | Primitive::None
        )
    }

    /// The operation on `c` channels with this stride; batch norm with learnt scale and shift
    /// when `affine` (the discrete network), without during the search.
    pub fn build(self, b: &mut Builder, c: i64, stride: i64, affine: bool) -> Op {
        match self {
            Primitive::SepConv3 => Op::sep(b, c, 3, stride, affine),
            Primitive::SepConv5 => Op::sep(b, c, 5, stride, affine),
            Primitive::DilConv3 => Op::Dil(DilConv::new(b, c, 3, stride, 2, 2, affine)),
            Primitive::DilConv5 => Op::Dil(DilConv::new(b, c, 5, stride, 4, 2, affine)),
            Primitive::AvgPool3 => Op::Pool {
                max: false,
                stride,
                bn: b.bn(c, false),
            },
            Primitive::MaxPool3 => Op::Pool {
                max: true,
                stride,
                bn: b.bn(c, false),
            },
            Primitive::Skip if stride == 1 => Op::Identity,
            Primitive::Skip => Op::Reduce(FactorizedReduce::new(b, c, c, affine)),
            Primitive::None => Op::Zero { stride },
        }
    }
}

/// Allocates the parameters (trainable) and buffers (batch-norm statistics) of a network in a
/// variable store, in order; the network refers to them by index.
pub struct Builder<'a> {
    path: nn::Path<'a>,
    pub params: Vec<Tensor>,
    pub buffers: Vec<Tensor>,
}

impl<'a> Builder<'a> {
    pub fn new(path: nn::Path<'a>) -> Builder<'a> {
        Builder {
            path,
            params: Vec::new(),
            buffers: Vec::new(),
        }
    }

    fn param(&mut self, dims: &[i64], init: Init) -> usize {
        let name = format!("p{}", self.params.len());
        self.params.push(self.path.var(&name, dims, init));
        self.params.len() - 1
    }

    fn buffer(&mut self, dims: &[i64], value: f64) -> usize {
        let name = format!("b{}", self.buffers.len());
        let t = if value == 0.0 {
            self.path.zeros_no_train(&name, dims)
        } else {
            self.path.ones_no_train(&name, dims)
        };
        self.buffers.push(t);
        self.buffers.len() - 1
    }

    /// A convolution's weight `[out, in, k, k]`, initialised as PyTorch does (uniform within
    /// 1/sqrt(fan in)).
    pub fn conv(&mut self, c_out: i64, c_in: i64, k: i64) -> usize {
        let bound = 1.0 / ((c_in * k * k) as f64).sqrt();
        self.param(
            &[c_out, c_in, k, k],
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )
    }

    /// A linear layer's weight and bias, initialised as PyTorch does.
    pub fn linear(&mut self, c_in: i64, c_out: i64) -> (usize, usize) {
        let bound = 1.0 / (c_in as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        (self.param(&[c_out, c_in], init), self.param(&[c_out], init))
    }

    pub fn bn(&mut self, c: i64, affine: bool) -> Bn {
        let scale = affine.then(|| {
            (
                self.param(&[c], Init::Const(1.0)),
                self.param(&[c], Init::Const(0.0)),
            )
        });
        Bn {
            scale,
            mean: self.buffer(&[c], 0.0),
            var: self.buffer(&[c], 1.0),
        }
    }
}

/// The tensors a forward pass runs with: the parameters (the network's own, or unrolled ones),
/// the batch-norm statistics to update (train) or use (eval), and the mode.
pub struct Ctx<'a> {
    pub w: &'a [Tensor],
    /// None: batch statistics only, nothing updated (the architect's passes).
    pub bufs: Option<&'a [Tensor]>,
    pub train: bool,
}

/// Batch norm; `scale` holds the indices of its weight and bias when affine.
#[derive(Clone, Copy, Debug)]
pub struct Bn {
    scale: Option<(usize, usize)>,
    mean: usize,
    var: usize,
}

impl Bn {
    /// A batch norm without scale whose statistics are `bufs[mean]` and `bufs[var]`.
    pub fn at(mean: usize, var: usize) -> Bn {
        Bn {
            scale: None,
            mean,
            var,
        }
    }

    /// This batch norm's statistics, channels `from..from + len`, appended to `bufs`, as a
    /// batch norm without scale over them.
    fn slice(&self, bufs: &mut Vec<Tensor>, from: i64, len: i64) -> Bn {
        let mean = bufs[self.mean].narrow(0, from, len);
        let var = bufs[self.var].narrow(0, from, len);
        bufs.push(mean);
        bufs.push(var);
        Bn::at(bufs.len() - 2, bufs.len() - 1)
    }

    pub fn forward(&self, ctx: &Ctx, x: &Tensor) -> Tensor {
        let (weight, bias) = match self.scale {
            Some((w, b)) => (Some(&ctx.w[w]), Some(&ctx.w[b])),
            None => (None, None),
        };
        let (mean, var) = match ctx.bufs {
            Some(bufs) => (Some(&bufs[self.mean]), Some(&bufs[self.var])),
            None => (None, None),
        };
        // Without statistics there is nothing to evaluate with: batch statistics then.
        let train = ctx.train || ctx.bufs.is_none();
        x.batch_norm(weight, bias, mean, var, train, BN_MOMENTUM, BN_EPS, false)
    }
}

/// ReLU, convolution, batch norm (the cell's input preprocessing, 1x1).
#[derive(Debug)]
pub struct ReluConvBn {
    w: usize,
    bn: Bn,
}

impl ReluConvBn {
    pub fn new(b: &mut Builder, c_in: i64, c_out: i64, affine: bool) -> ReluConvBn {
        ReluConvBn {
            w: b.conv(c_out, c_in, 1),
            bn: b.bn(c_out, affine),
        }
    }

    pub fn forward(&self, ctx: &Ctx, x: &Tensor) -> Tensor {
        let h = x
            .relu()
            .conv2d(&ctx.w[self.w], None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1);
        self.bn.forward(ctx, &h)
    }
}

/// ReLU, a depthwise (optionally dilated) convolution, a pointwise one, batch norm.
#[derive(Clone, Debug)]
pub struct DilConv {
    depthwise: usize,
    pointwise: usize,
    bn: Bn,
    c: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
}

impl DilConv {
    pub fn new(
        b: &mut Builder,
        c: i64,
        k: i64,
        stride: i64,
        padding: i64,
        dilation: i64,
        affine: bool,
    ) -> DilConv {
        DilConv {
            depthwise: b.conv(c, 1, k),
            pointwise: b.conv(c, c, 1),
            bn: b.bn(c, affine),
            c,
            stride,
            padding,
            dilation,
        }
    }

    pub fn forward(&self, ctx: &Ctx, x: &Tensor) -> Tensor {
        self.forward_relu(ctx, &x.relu())
    }

    /// The forward pass on an input already through the ReLU (shared by the edges and
    /// operations that read the same node).
    pub fn forward_relu(&self, ctx: &Ctx, r: &Tensor) -> Tensor {
        let h = r
            .conv2d(
                &ctx.w[self.depthwise],
                None::<&Tensor>,
                [self.stride, self.stride],
                [self.padding, self.padding],
                [self.dilation, self.dilation],
                self.c,
            )
            .conv2d(
                &ctx.w[self.pointwise],
                None::<&Tensor>,
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            );
        self.bn.forward(ctx, &h)
    }
}

/// Halves the height and width with two 1x1 stride-2 convolutions, the second shifted by one
/// pixel, concatenated on channels; ReLU before, batch norm after.
#[derive(Clone, Debug)]
pub struct FactorizedReduce {
    a: usize,
    b: usize,
    bn: Bn,
}

impl FactorizedReduce {
    pub fn new(b: &mut Builder, c_in: i64, c_out: i64, affine: bool) -> FactorizedReduce {
        FactorizedReduce {
            a: b.conv(c_out / 2, c_in, 1),
            b: b.conv(c_out - c_out / 2, c_in, 1),
            bn: b.bn(c_out, affine),
        }
    }

    pub fn forward(&self, ctx: &Ctx, x: &Tensor) -> Tensor {
        self.forward_relu(ctx, &x.relu())
    }

    /// The forward pass on an input already through the ReLU.
    pub fn forward_relu(&self, ctx: &Ctx, h: &Tensor) -> Tensor {
        let (a, b) = reduce_halves(h, &ctx.w[self.a], &ctx.w[self.b]);
        self.bn.forward(ctx, &Tensor::cat(&[a, b], 1))
    }
}

/// The two halves of a factorized reduce of `h` (already through the ReLU): 1x1 convolutions
/// `wa` and `wb` at stride 2 (one edge's, or every edge's stacked), the second on `h` shifted by one pixel; on a
/// single row or column the second is padded so both halves keep one size.
fn reduce_halves(h: &Tensor, wa: &Tensor, wb: &Tensor) -> (Tensor, Tensor) {
    let size = h.size();
    let (height, width) = (size[2], size[3]);
    let a = h.conv2d(wa, None::<&Tensor>, [2, 2], [0, 0], [1, 1], 1);
    let shifted = if height > 1 && width > 1 {
        h.narrow(2, 1, height - 1).narrow(3, 1, width - 1)
    } else {
        h.shallow_clone()
    };
    let b = shifted.conv2d(wb, None::<&Tensor>, [2, 2], [0, 0], [1, 1], 1);
    let b = if b.size()[2..] != a.size()[2..] {
        let (da, db) = (a.size(), b.size());
        b.constant_pad_nd([0, da[3] - db[3], 0, da[2] - db[2]])
    } else {
        b
    };
    (a, b)
}

/// One operation of a cell edge.
#[derive(Clone, Debug)]
pub enum Op {
    Zero { stride: i64 },
    Pool { max: bool, stride: i64, bn: Bn },
    Identity,
    Reduce(FactorizedReduce),
    Dil(DilConv),
    Sep(DilConv, DilConv),
}

impl Op {
    /// A separable convolution: a depthwise-separable convolution applied twice, the first
    /// with the stride.
    fn sep(b: &mut Builder, c: i64, k: i64, stride: i64, affine: bool) -> Op {
        let first = DilConv::new(b, c, k, stride, k / 2, 1, affine);
        let second = DilConv::new(b, c, k, 1, k / 2, 1, affine);
        Op::Sep(first, second)
    }

    pub fn forward(&self, ctx: &Ctx, x: &Tensor) -> Tensor {
        match self {
            Op::Zero { stride } => {
                if *stride == 1 {
                    x.zeros_like()
                } else {
                    x.slice(2, 0, None, *stride)
                        .slice(3, 0, None, *stride)
                        .zeros_like()
                }
            }
            Op::Pool { max, stride, bn } => {
                let h = if *max {
                    x.max_pool2d([3, 3], [*stride, *stride], [1, 1], [1, 1], false)
                } else {
                    // count_include_pad = false, as Katib and DARTS pool.
                    x.avg_pool2d([3, 3], [*stride, *stride], [1, 1], false, false, None)
                };
                bn.forward(ctx, &h)
            }
            Op::Identity => x.shallow_clone(),
            Op::Reduce(r) => r.forward(ctx, x),
            Op::Dil(d) => d.forward(ctx, x),
            Op::Sep(a, b) => b.forward(ctx, &a.forward(ctx, x)),
        }
    }
}

/// The mixed operation of one edge: every primitive's output weighted by the edge's softmax
/// weights. `none` adds zero and so is not computed (its weight still shares the softmax).
#[derive(Debug)]
pub struct MixedOp {
    ops: Vec<(usize, Op)>,
}

impl MixedOp {
    pub fn new(
        b: &mut Builder,
        primitives: &[Primitive],
        c: i64,
        stride: i64,
        affine: bool,
    ) -> MixedOp {
        let ops = primitives
            .iter()
            .enumerate()
            .filter(|(_, p)| **p != Primitive::None)
            .map(|(i, p)| (i, p.build(b, c, stride, affine)))
            .collect();
        MixedOp { ops }
    }

    /// The mixed operation of the given operations, by primitive index.
    pub fn from_ops(ops: Vec<(usize, Op)>) -> MixedOp {
        MixedOp { ops }
    }

    /// `weights`: this edge's softmax weights, one per primitive.
    pub fn forward(&self, ctx: &Ctx, x: &Tensor, weights: &Tensor) -> Tensor {
        let mut sum: Option<Tensor> = None;
        for (i, op) in &self.ops {
            let term = op.forward(ctx, x) * weights.get(*i as i64);
            sum = Some(match sum {
                Some(s) => s + term,
                None => term,
            });
        }
        sum.unwrap_or_else(|| x.zeros_like())
    }
}

/// Rows `from..from + len` of parameter `index`, appended to `w`; returns their index.
fn rows(w: &mut Vec<Tensor>, index: usize, from: i64, len: i64) -> usize {
    let t = w[index].narrow(0, from, len);
    w.push(t);
    w.len() - 1
}

/// ReLU (done by the caller), a depthwise convolution and a pointwise one, batch norm, for
/// the `edges` edges leaving one node at once: the input's ReLU repeated once per edge
/// (channels edge by edge), the depthwise convolution with one group per channel, the
/// pointwise one with one group per edge, batch norm over every channel. Each edge has its
/// own weights (its rows of the grouped ones) and its own statistics (batch norm works per
/// channel), so this computes what `edges` separate `DilConv`s compute, in three operations.
#[derive(Clone, Debug)]
pub struct GroupedDil {
    depthwise: usize,
    pointwise: usize,
    bn: Bn,
    edges: i64,
    c: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
}

impl GroupedDil {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        b: &mut Builder,
        edges: i64,
        c: i64,
        k: i64,
        stride: i64,
        padding: i64,
        dilation: i64,
    ) -> GroupedDil {
        GroupedDil {
            depthwise: b.conv(edges * c, 1, k),
            pointwise: b.conv(edges * c, c, 1),
            bn: b.bn(edges * c, false),
            edges,
            c,
            stride,
            padding,
            dilation,
        }
    }

    /// `r`: the ReLU of the input, `[n, edges x c, h, w]`, edge by edge.
    pub fn forward_relu(&self, ctx: &Ctx, r: &Tensor) -> Tensor {
        let h = r
            .conv2d(
                &ctx.w[self.depthwise],
                None::<&Tensor>,
                [self.stride, self.stride],
                [self.padding, self.padding],
                [self.dilation, self.dilation],
                self.edges * self.c,
            )
            .conv2d(
                &ctx.w[self.pointwise],
                None::<&Tensor>,
                [1, 1],
                [0, 0],
                [1, 1],
                self.edges,
            );
        self.bn.forward(ctx, &h)
    }

    /// Edge `e`'s own `DilConv`, its weights and statistics appended to `w` and `bufs` as
    /// views of the grouped ones.
    fn edge(&self, e: i64, w: &mut Vec<Tensor>, bufs: &mut Vec<Tensor>) -> DilConv {
        DilConv {
            depthwise: rows(w, self.depthwise, e * self.c, self.c),
            pointwise: rows(w, self.pointwise, e * self.c, self.c),
            bn: self.bn.slice(bufs, e * self.c, self.c),
            c: self.c,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }
}

/// The factorized reduce (the skip connection at stride 2) of the `edges` edges leaving one
/// node at once: both halves' 1x1 convolutions for every edge in one convolution each, the
/// halves interleaved edge by edge, one batch norm.
#[derive(Clone, Debug)]
pub struct GroupedReduce {
    a: usize,
    b: usize,
    bn: Bn,
    edges: i64,
    c: i64,
}

impl GroupedReduce {
    pub fn new(b: &mut Builder, edges: i64, c: i64) -> GroupedReduce {
        GroupedReduce {
            a: b.conv(edges * (c / 2), c, 1),
            b: b.conv(edges * (c - c / 2), c, 1),
            bn: b.bn(edges * c, false),
            edges,
            c,
        }
    }

    /// `h`: the ReLU of the input, `[n, c, h, w]` (not repeated).
    pub fn forward_relu(&self, ctx: &Ctx, h: &Tensor) -> Tensor {
        let n = h.size()[0];
        let (a, b) = reduce_halves(h, &ctx.w[self.a], &ctx.w[self.b]);
        let (oh, ow) = (a.size()[2], a.size()[3]);
        let half = self.c / 2;
        let both = Tensor::cat(
            &[
                a.view([n, self.edges, half, oh, ow]),
                b.view([n, self.edges, self.c - half, oh, ow]),
            ],
            2,
        )
        .view([n, self.edges * self.c, oh, ow]);
        self.bn.forward(ctx, &both)
    }

    /// Edge `e`'s own `FactorizedReduce` over views of the grouped weights and statistics.
    fn edge(&self, e: i64, w: &mut Vec<Tensor>, bufs: &mut Vec<Tensor>) -> FactorizedReduce {
        let half = self.c / 2;
        FactorizedReduce {
            a: rows(w, self.a, e * half, half),
            b: rows(w, self.b, e * (self.c - half), self.c - half),
            bn: self.bn.slice(bufs, e * self.c, self.c),
        }
    }
}

/// One primitive on every edge leaving a node, computed once for them all: the
/// parameter-free ones (pools with their batch norm, identity) give the same output on every
/// edge (batch norm without scale, same input, same statistics) and are computed once; the
/// others are grouped by edge.
#[derive(Clone, Debug)]
pub enum Grouped {
    /// One output shared by every edge.
    Shared(Op),
    Dil(GroupedDil),
    Sep(GroupedDil, GroupedDil),
    Reduce(GroupedReduce),
}

impl Grouped {
    /// The primitive on `c` channels for `edges` edges with this stride.
    pub fn build(b: &mut Builder, p: Primitive, edges: i64, c: i64, stride: i64) -> Grouped {
        let sep = |b: &mut Builder, k: i64| {
            Grouped::Sep(
                GroupedDil::new(b, edges, c, k, stride, k / 2, 1),
                GroupedDil::new(b, edges, c, k, 1, k / 2, 1),
            )
        };
        match p {
            Primitive::SepConv3 => sep(b, 3),
            Primitive::SepConv5 => sep(b, 5),
            Primitive::DilConv3 => Grouped::Dil(GroupedDil::new(b, edges, c, 3, stride, 2, 2)),
            Primitive::DilConv5 => Grouped::Dil(GroupedDil::new(b, edges, c, 5, stride, 4, 2)),
            Primitive::Skip if stride != 1 => Grouped::Reduce(GroupedReduce::new(b, edges, c)),
            _ => Grouped::Shared(p.build(b, c, stride, false)),
        }
    }

    /// True when the output holds every edge's channels, edge by edge (false: one output
    /// for all edges).
    pub fn per_edge(&self) -> bool {
        !matches!(self, Grouped::Shared(_))
    }

    /// True when the operation reads the repeated ReLU of the input.
    pub fn reads_repeated(&self) -> bool {
        matches!(self, Grouped::Dil(_) | Grouped::Sep(..))
    }

    /// The output on input `x`, given its ReLU `relu` and that ReLU repeated once per edge
    /// `repeated` (either may be unused).
    pub fn forward(&self, ctx: &Ctx, x: &Tensor, relu: &Tensor, repeated: &Tensor) -> Tensor {
        match self {
            Grouped::Shared(op) => op.forward(ctx, x),
            Grouped::Dil(d) => d.forward_relu(ctx, repeated),
            Grouped::Sep(a, b) => b.forward_relu(ctx, &a.forward_relu(ctx, repeated).relu()),
            Grouped::Reduce(r) => r.forward_relu(ctx, relu),
        }
    }

    /// Edge `e`'s own operation, over views of the grouped weights and statistics appended to
    /// `w` and `bufs` (a shared operation is itself).
    pub fn edge(&self, e: i64, w: &mut Vec<Tensor>, bufs: &mut Vec<Tensor>) -> Op {
        match self {
            Grouped::Shared(op) => op.clone(),
            Grouped::Dil(d) => Op::Dil(d.edge(e, w, bufs)),
            Grouped::Sep(a, b) => Op::Sep(a.edge(e, w, bufs), b.edge(e, w, bufs)),
            Grouped::Reduce(r) => Op::Reduce(r.edge(e, w, bufs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn names_round_trip_and_none_is_parameter_free() {
        for p in Primitive::all() {
            assert_eq!(Primitive::from_name(p.name()), Some(p));
        }
        assert_eq!(Primitive::from_name("conv_3x3"), None);
        assert!(Primitive::None.parameter_free() && Primitive::Skip.parameter_free());
        assert!(!Primitive::SepConv3.parameter_free());
    }

    #[test]
    fn a_mixed_op_with_one_hot_alphas_equals_its_primitive() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut b = Builder::new(vs.root());
        let prims = Primitive::all();
        let c = 4;
        for stride in [1, 2] {
            let mixed = MixedOp::new(&mut b, &prims, c, stride, false);
            let x = Tensor::randn([3, c, 8, 8], (Kind::Float, Device::Cpu));
            let ctx = Ctx {
                w: &b.params,
                bufs: None,
                train: true,
            };
            for (k, prim) in prims.iter().enumerate() {
                // Softmax of a one-hot alpha scaled by 1000 is exactly one-hot in f32.
                let alpha = Tensor::zeros([prims.len() as i64], (Kind::Float, Device::Cpu));
                let _ = alpha.get(k as i64).fill_(1000.0);
                let weights = alpha.softmax(-1, Kind::Float);
                let got = mixed.forward(&ctx, &x, &weights);
                let side = if stride == 1 { 8 } else { 4 };
                assert_eq!(got.size(), [3, c, side, side], "{}", prim.name());
                let want = match mixed.ops.iter().find(|(i, _)| *i == k) {
                    Some((_, op)) => op.forward(&ctx, &x),
                    None => Tensor::zeros([3, c, side, side], (Kind::Float, Device::Cpu)),
                };
                let diff = (&got - &want).abs().max().double_value(&[]);
                assert_eq!(diff, 0.0, "{} at stride {stride}", prim.name());
            }
            // A separate primitive built alone maps the input to the same shape.
            let skip = Primitive::Skip.build(&mut b, c, stride, false);
            let ctx = Ctx {
                w: &b.params,
                bufs: None,
                train: true,
            };
            assert_eq!(
                skip.forward(&ctx, &x).size()[2],
                if stride == 1 { 8 } else { 4 }
            );
        }
    }

    #[test]
    fn operations_compute_what_they_name() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut b = Builder::new(vs.root());
        let x = Tensor::randn([2, 2, 5, 5], (Kind::Float, Device::Cpu));
        let skip = Primitive::Skip.build(&mut b, 2, 1, false);
        let zero = Primitive::None.build(&mut b, 2, 2, false);
        let max = Primitive::MaxPool3.build(&mut b, 2, 1, false);
        let ctx = Ctx {
            w: &b.params,
            bufs: None,
            train: true,
        };
        assert_eq!(
            skip.forward(&ctx, &x).double_value(&[1, 1, 2, 3]),
            x.double_value(&[1, 1, 2, 3])
        );
        let z = zero.forward(&ctx, &x);
        assert_eq!(z.size(), [2, 2, 3, 3]);
        assert_eq!(z.abs().sum(Kind::Float).double_value(&[]), 0.0);
        // Max pooling then batch norm without scale: per channel, mean 0 and variance 1
        // (biased) over the batch, by hand.
        let m = max.forward(&ctx, &x);
        let pooled = x.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        let mean = pooled.mean_dim([0i64, 2, 3].as_slice(), true, Kind::Float);
        let var = (&pooled - &mean)
            .square()
            .mean_dim([0i64, 2, 3].as_slice(), true, Kind::Float);
        let want = (&pooled - &mean) / (var + BN_EPS).sqrt();
        assert!((m - want).abs().max().double_value(&[]) < 1e-5);
        // The separable 5x5 convolution keeps the size and uses two depthwise-pointwise pairs.
        let before = b.params.len();
        let sep = Primitive::SepConv5.build(&mut b, 2, 1, false);
        assert_eq!(b.params.len() - before, 4);
        let ctx = Ctx {
            w: &b.params,
            bufs: None,
            train: true,
        };
        assert_eq!(sep.forward(&ctx, &x).size(), [2, 2, 5, 5]);
    }
}
