//! The network around a NAS-Bench-201 cell, NAS-Bench-201's skeleton (Dong & Yang 2020): a 3x3
//! conv stem, three stages of `N` copies of the cell joined by two residual reduction blocks
//! (He et al. 2016's basic block with stride 2), batch norm and ReLU, global average pooling, a
//! linear layer. Scaled down by `CellNetShape` so a whole table builds on a laptop CPU.
//!
//! Edges follow NAS-Bench-201's operations: `nor_conv_kxk` is ReLU, conv, batch norm;
//! `avg_pool_3x3` pools with stride 1 without counting the padding; `skip_connect` is the
//! identity; `none` multiplies by zero. A node sums its incoming edges. Only edges that reach the
//! output through live nodes are built and run: `none` edges, edges out of nodes whose inputs
//! are all `none`, and nodes that feed nothing contribute nothing (a zero, or nothing at all),
//! so skipping them leaves the function unchanged and saves their time.
//!
//! A network can also hold a stack of `G` independent copies side by side (`CellNet::stacked`):
//! every layer carries the `G` copies' channels one after the other and every convolution is
//! grouped (`groups = G`), so copy `g` sees only its own channels. `G` trainings of the same cell
//! then run as one, at a fraction of the per-operation overhead that dominates such tiny
//! networks on a CPU (src/cells/stack.rs).

use anyhow::{Context, Result};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::cell::{Cell, Op, EDGE_LIST};
use super::config::NODES;
use crate::proxies::relu_codes::relu;

/// The skeleton's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellNetShape {
    /// Channels of the first stage (the second has twice, the third four times as many).
    pub channels: i64,
    /// Cells per stage.
    pub cells_per_stage: usize,
}

/// ReLU, conv (no bias), batch norm.
#[derive(Debug)]
struct ReluConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ReluConvBn {
    /// `groups` copies of a `c_in` to `c_out` channel op, side by side.
    fn new(
        p: &nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
    ) -> ReluConvBn {
        let conv = nn::conv2d(
            p / "conv",
            groups * c_in,
            groups * c_out,
            kernel,
            nn::ConvConfig {
                stride,
                padding: kernel / 2,
                bias: false,
                groups,
                ..Default::default()
            },
        );
        ReluConvBn {
            conv,
            bn: nn::batch_norm2d(p / "bn", groups * c_out, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        relu(x).apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// One edge's operation, built.
#[derive(Debug)]
enum EdgeOp {
    Skip,
    Conv(ReluConvBn),
    AvgPool,
}

impl EdgeOp {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            EdgeOp::Skip => x.shallow_clone(),
            EdgeOp::Conv(op) => op.forward(x, train),
            EdgeOp::AvgPool => x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None::<i64>),
        }
    }
}

/// Which edges of `cell` matter: an edge counts when it carries an operation other than `none`,
/// leaves a node that is not zero, and enters a node that reaches the output.
pub fn live_edges(cell: &Cell) -> [bool; EDGE_LIST.len()] {
    let mut nonzero = [false; NODES];
    nonzero[0] = true;
    for to in 1..NODES {
        nonzero[to] = (0..to).any(|from| nonzero[from] && cell.op(to, from) != Op::None);
    }
    let mut reaches = [false; NODES];
    reaches[NODES - 1] = true;
    for from in (0..NODES - 1).rev() {
        reaches[from] = (from + 1..NODES).any(|to| reaches[to] && cell.op(to, from) != Op::None);
    }
    let mut live = [false; EDGE_LIST.len()];
    for (e, &(to, from)) in EDGE_LIST.iter().enumerate() {
        live[e] = cell.ops[e] != Op::None && nonzero[from] && reaches[to];
    }
    live
}

/// One copy of the cell at `channels` channels: the live edges, built.
#[derive(Debug)]
struct CellModule {
    edges: Vec<(usize, usize, EdgeOp)>,
}

impl CellModule {
    fn new(p: &nn::Path, cell: &Cell, channels: i64, groups: i64) -> CellModule {
        let live = live_edges(cell);
        let mut edges = Vec::new();
        for (e, &(to, from)) in EDGE_LIST.iter().enumerate() {
            if !live[e] {
                continue;
            }
            let op = match cell.ops[e] {
                Op::SkipConnect => EdgeOp::Skip,
                Op::NorConv1x1 | Op::NorConv3x3 => {
                    let k = if cell.ops[e] == Op::NorConv1x1 { 1 } else { 3 };
                    EdgeOp::Conv(ReluConvBn::new(
                        &(p / format!("edge{to}{from}")),
                        channels,
                        channels,
                        k,
                        1,
                        groups,
                    ))
                }
                Op::AvgPool3x3 => EdgeOp::AvgPool,
                Op::None => continue,
            };
            edges.push((to, from, op));
        }
        CellModule { edges }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut nodes: Vec<Option<Tensor>> = (0..NODES).map(|_| None).collect();
        nodes[0] = Some(x.shallow_clone());
        for (to, from, op) in &self.edges {
            let Some(input) = &nodes[*from] else { continue };
            let out = op.forward(input, train);
            nodes[*to] = Some(match nodes[*to].take() {
                Some(sum) => sum + out,
                None => out,
            });
        }
        match nodes[NODES - 1].take() {
            Some(out) => out,
            None => x.zeros_like(),
        }
    }
}

/// The residual reduction block: two ReLU-conv-BN (the first with stride 2) plus a shortcut of
/// 2x2 average pooling and a 1x1 conv.
#[derive(Debug)]
struct Reduction {
    a: ReluConvBn,
    b: ReluConvBn,
    shortcut: nn::Conv2D,
}

impl Reduction {
    fn new(p: &nn::Path, c_in: i64, c_out: i64, groups: i64) -> Reduction {
        Reduction {
            a: ReluConvBn::new(&(p / "a"), c_in, c_out, 3, 2, groups),
            b: ReluConvBn::new(&(p / "b"), c_out, c_out, 3, 1, groups),
            shortcut: nn::conv2d(
                p / "shortcut",
                groups * c_in,
                groups * c_out,
                1,
                nn::ConvConfig {
                    bias: false,
                    groups,
                    ..Default::default()
                },
            ),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let main = self.b.forward(&self.a.forward(x, train), train);
        let short = x
            .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
            .apply(&self.shortcut);
        main + short
    }
}

/// A whole network with one cell in every cell position; or a stack of `groups` such networks
/// side by side, each on its own channels.
#[derive(Debug)]
pub struct CellNet {
    stem: (nn::Conv2D, nn::BatchNorm),
    stages: Vec<(Option<Reduction>, Vec<CellModule>)>,
    last_bn: nn::BatchNorm,
    /// The stacked networks' linear layers, one after the other: `[groups * classes, channels]`.
    head: nn::Linear,
    groups: i64,
}

impl CellNet {
    /// For images of `in_channels` channels and `classes` classes.
    pub fn new(
        p: &nn::Path,
        cell: &Cell,
        shape: CellNetShape,
        in_channels: i64,
        classes: i64,
    ) -> CellNet {
        CellNet::stacked(p, cell, shape, in_channels, classes, 1)
    }

    /// `groups` independent copies of `new`'s network side by side. It takes the copies' images
    /// one after the other on the channel axis, `[B, groups * in_channels, H, W]`, and gives
    /// their logits one after the other, `[B, groups * classes]`. Every variable has the name of
    /// the single network's and holds the copies' values concatenated along its first axis; with
    /// `groups = 1` it is exactly `new`'s network.
    pub fn stacked(
        p: &nn::Path,
        cell: &Cell,
        shape: CellNetShape,
        in_channels: i64,
        classes: i64,
        groups: i64,
    ) -> CellNet {
        let c = shape.channels;
        let stem = (
            nn::conv2d(
                p / "stem",
                groups * in_channels,
                groups * c,
                3,
                nn::ConvConfig {
                    padding: 1,
                    bias: false,
                    groups,
                    ..Default::default()
                },
            ),
            nn::batch_norm2d(p / "stem_bn", groups * c, Default::default()),
        );
        let mut stages = Vec::new();
        let mut channels = c;
        for s in 0..3 {
            let reduction = (s > 0).then(|| {
                let r = Reduction::new(&(p / format!("reduce{s}")), channels, channels * 2, groups);
                channels *= 2;
                r
            });
            let cells = (0..shape.cells_per_stage)
                .map(|i| {
                    CellModule::new(&(p / format!("stage{s}_cell{i}")), cell, channels, groups)
                })
                .collect();
            stages.push((reduction, cells));
        }
        CellNet {
            stem,
            stages,
            last_bn: nn::batch_norm2d(p / "last_bn", groups * channels, Default::default()),
            // initialised as `new`'s (tch's bounds depend on the input width alone)
            head: nn::linear(p / "head", channels, groups * classes, Default::default()),
            groups,
        }
    }

    /// How many networks this one stacks.
    pub fn groups(&self) -> i64 {
        self.groups
    }

    /// The stacked linear layers on pooled features `[B, groups * channels]`: copy `g`'s layer
    /// on copy `g`'s features, as one batched matrix product.
    fn stacked_head(&self, pooled: &Tensor) -> Tensor {
        let g = self.groups;
        let b = pooled.size()[0];
        let w = &self.head.ws; // [g * classes, channels]
        let (gk, channels) = (w.size()[0], w.size()[1]);
        let classes = gk / g;
        let h = pooled.view([b, g, channels]).transpose(0, 1); // [g, b, channels]
        let mut out = h.bmm(&w.view([g, classes, channels]).transpose(1, 2)); // [g, b, classes]
        if let Some(bias) = &self.head.bs {
            out += bias.view([g, 1, classes]);
        }
        out.transpose(0, 1).reshape([b, g * classes])
    }
}

impl ModuleT for CellNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = xs.apply(&self.stem.0).apply_t(&self.stem.1, train);
        for (reduction, cells) in &self.stages {
            if let Some(r) = reduction {
                h = r.forward(&h, train);
            }
            for cell in cells {
                h = cell.forward(&h, train);
            }
        }
        let h = relu(&h.apply_t(&self.last_bn, train));
        // pooled in the network's own precision (synflow scores it in double)
        let pooled = h.mean_dim([2i64, 3].as_slice(), false, h.kind());
        if self.groups == 1 {
            pooled.apply(&self.head)
        } else {
            self.stacked_head(&pooled)
        }
    }
}

/// Copies the single networks' variables into the stacked network's, copy `g` from
/// `singles[g]`: every stacked variable is theirs concatenated along the first axis.
pub fn copy_into_stack(stack: &nn::VarStore, singles: &[&nn::VarStore]) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let parts: Vec<_> = singles.iter().map(|vs| vs.variables()).collect();
    for (name, mut var) in stack.variables() {
        let pieces = parts
            .iter()
            .map(|p| p.get(&name).map(|t| t.shallow_clone()))
            .collect::<Option<Vec<_>>>()
            .with_context(|| format!("the single network has no variable {name}"))?;
        let joined = Tensor::cat(&pieces, 0);
        anyhow::ensure!(
            joined.size() == var.size(),
            "{name}: {:?} stacked from singles of {:?}",
            var.size(),
            pieces[0].size()
        );
        var.copy_(&joined);
    }
    Ok(())
}

/// Multiply-adds of one forward pass of one `side` x `side` image through the convolutions and
/// the linear layer of `cell`'s network (batch norm, pooling and sums are not counted).
pub fn flops(cell: &Cell, shape: CellNetShape, in_channels: i64, side: i64, classes: i64) -> u64 {
    let conv =
        |c_in: i64, c_out: i64, k: i64, out_side: i64| c_in * c_out * k * k * out_side * out_side;
    let live = live_edges(cell);
    let mut total = conv(in_channels, shape.channels, 3, side);
    let (mut c, mut s) = (shape.channels, side);
    for stage in 0..3 {
        if stage > 0 {
            let (c_out, s_out) = (c * 2, (s + 1) / 2);
            total +=
                conv(c, c_out, 3, s_out) + conv(c_out, c_out, 3, s_out) + conv(c, c_out, 1, s / 2);
            c = c_out;
            s = s_out;
        }
        let per_cell: i64 = (0..EDGE_LIST.len())
            .filter(|&e| live[e])
            .map(|e| match cell.ops[e] {
                Op::NorConv1x1 => conv(c, c, 1, s),
                Op::NorConv3x3 => conv(c, c, 3, s),
                _ => 0,
            })
            .sum();
        total += per_cell * shape.cells_per_stage as i64;
    }
    (total + c * classes) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;
    use tch::Kind;

    fn cell(text: &str) -> Cell {
        Cell::parse(text).unwrap()
    }

    #[test]
    fn live_edges_drop_dead_and_zero_paths() {
        // node 1 is zero (none from the input), so 2<-1 is dead; node 2 feeds nothing.
        let c = cell("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|none~2|");
        assert_eq!(live_edges(&c), [false, false, false, true, false, false]);
        let all = cell("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|");
        assert_eq!(live_edges(&all), [true; 6]);
    }

    #[test]
    fn the_network_maps_images_to_logits_and_counts_params() {
        let shape = CellNetShape {
            channels: 4,
            cells_per_stage: 1,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let c =
            cell("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|skip_connect~2|");
        let net = CellNet::new(&vs.root(), &c, shape, 1, 10);
        let x = Tensor::rand([5, 1, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, true).size(), [5, 10]);
        // hand count of the weights (batch norms hold 2 per channel):
        // stem 1*4*9 + bn 8; stage cells: conv3x3 c*c*9 + bn 2c, conv1x1 c*c + bn 2c, for c = 4, 8, 16;
        // reductions c->2c: 3x3 c*2c*9 + bn 4c, 3x3 2c*2c*9 + bn 4c, 1x1 c*2c, for c = 4, 8;
        // last bn 2*16; head 16*10 + 10.
        let cells: i64 = [4i64, 8, 16]
            .iter()
            .map(|c| c * c * 9 + 2 * c + c * c + 2 * c)
            .sum();
        let reductions: i64 = [4i64, 8]
            .iter()
            .map(|c| c * 2 * c * 9 + 4 * c + 2 * c * 2 * c * 9 + 4 * c + c * 2 * c)
            .sum();
        let expected = 36 + 8 + cells + reductions + 32 + 170;
        let counted: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(counted, expected);
    }

    #[test]
    fn an_all_none_cell_passes_zeros() {
        let shape = CellNetShape {
            channels: 4,
            cells_per_stage: 1,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let c = cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        let net = CellNet::new(&vs.root(), &c, shape, 1, 3);
        let x = Tensor::rand([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let m = CellModule::new(&vs.root().sub("probe"), &c, 1, 1);
        assert_eq!(
            m.forward(&x, false)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        assert_eq!(net.forward_t(&x, false).size(), [2, 3]);
    }

    /// Two single networks seeded apart, and a stack holding copies of them.
    fn singles_and_stack(c: &Cell) -> (Vec<(nn::VarStore, CellNet)>, nn::VarStore, CellNet) {
        let shape = CellNetShape {
            channels: 4,
            cells_per_stage: 1,
        };
        let singles: Vec<(nn::VarStore, CellNet)> = [7i64, 8]
            .iter()
            .map(|&seed| {
                tch::manual_seed(seed);
                let vs = nn::VarStore::new(Device::Cpu);
                let net = CellNet::new(&vs.root(), c, shape, 1, 10);
                (vs, net)
            })
            .collect();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CellNet::stacked(&vs.root(), c, shape, 1, 10, 2);
        let stores: Vec<&nn::VarStore> = singles.iter().map(|(v, _)| v).collect();
        copy_into_stack(&vs, &stores).unwrap();
        (singles, vs, net)
    }

    /// max |a - b| over max |b|.
    fn relative(a: &Tensor, b: &Tensor) -> f64 {
        let scale = b.abs().max().double_value(&[]).max(1e-12);
        (a - b).abs().max().double_value(&[]) / scale
    }

    fn channels_last(x: &Tensor) -> Tensor {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    }

    #[test]
    fn a_stack_of_copied_networks_computes_each_copy_and_its_gradients() {
        // every kind of edge, a reduction, both kernel sizes
        let c = cell(
            "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
        );
        for layout_last in [false, true] {
            let (singles, vs, net) = singles_and_stack(&c);
            tch::manual_seed(3);
            let xs: Vec<Tensor> = (0..2)
                .map(|_| Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu)))
                .collect();
            let rs: Vec<Tensor> = (0..2)
                .map(|_| Tensor::randn([6, 10], (Kind::Float, Device::Cpu)))
                .collect();
            let mut x = Tensor::cat(&xs, 1);
            if layout_last {
                x = channels_last(&x);
            }
            // train mode: batch statistics per copy; a weighted sum of the logits as the loss
            let out = net.forward_t(&x, true);
            assert_eq!(out.size(), [6, 20]);
            (&out * Tensor::cat(&rs, 1)).sum(Kind::Float).backward();
            let stacked = vs.variables();
            let mut largest = [0.0f64; 2];
            for (g, (svs, snet)) in singles.iter().enumerate() {
                let single = snet.forward_t(&xs[g], true);
                let mine = out.narrow(1, 10 * g as i64, 10);
                assert!(relative(&mine, &single) < 1e-5, "copy {g} logits");
                (&single * &rs[g]).sum(Kind::Float).backward();
                for t in svs.trainable_variables() {
                    largest[g] = largest[g].max(t.grad().abs().max().double_value(&[]));
                }
                for (name, t) in svs.variables() {
                    let rows = t.size()[0];
                    let mine = &stacked[&name];
                    let part = mine.narrow(0, rows * g as i64, rows);
                    if t.requires_grad() {
                        // Relative to the variable's own gradient, or to the network's largest
                        // for a gradient that is zero in exact arithmetic (a bias before a
                        // train-mode batch norm, which removes constants: ~1e-7 here).
                        let (a, b) = (mine.grad().narrow(0, rows * g as i64, rows), t.grad());
                        let err = (&a - &b).abs().max().double_value(&[]);
                        let own = b.abs().max().double_value(&[]);
                        assert!(
                            err <= 1e-5 * own || err <= 1e-6 * largest[g],
                            "copy {g} gradient of {name}: {err} against {own}"
                        );
                    } else {
                        // running statistics, updated by the train-mode pass
                        assert!(relative(&part, &t) < 1e-5, "copy {g} {name}");
                    }
                }
                // eval mode, on the updated running statistics
                let eval = net.forward_t(&x, false).narrow(1, 10 * g as i64, 10);
                assert!(relative(&eval, &snet.forward_t(&xs[g], false)) < 1e-5);
            }
        }
    }

    #[test]
    fn a_broken_copy_leaves_the_other_untouched() {
        let c = cell(
            "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
        );
        let (singles, vs, net) = singles_and_stack(&c);
        // copy 0's stem all NaN, as after a diverged step
        let _ = vs.variables()["stem.weight"]
            .narrow(0, 0, 4)
            .detach()
            .fill_(f64::NAN);
        let x0 = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let x1 = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let out = net.forward_t(&channels_last(&Tensor::cat(&[&x0, &x1], 1)), true);
        assert!(out.narrow(1, 0, 10).isnan().all().int64_value(&[]) == 1);
        let mine = out.narrow(1, 10, 10);
        assert!(relative(&mine, &singles[1].1.forward_t(&x1, true)) < 1e-5);
        // only copy 1's loss: every gradient of copy 1 is finite
        mine.sum(Kind::Float).backward();
        for (name, t) in vs.trainable_variables().iter().enumerate() {
            let rows = t.size()[0] / 2;
            let g = t.grad().narrow(0, rows, rows);
            assert!(g.isfinite().all().int64_value(&[]) == 1, "variable {name}");
        }
    }
}
