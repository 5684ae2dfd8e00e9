//! The DARTS supernet (Liu, Simonyan & Yang 2019) as Katib's DARTS trial builds it: a stem of
//! `stem_multiplier x init_channels` channels, `num_layers` cells (reduction cells, with doubled
//! channels and stride 2 on the edges from their inputs, placed as Katib places them), global
//! average pooling and a linear classifier. Each cell takes the two previous cells' outputs;
//! node `i` sums the mixed operations on every earlier node; the cell's output concatenates its
//! intermediate nodes. Normal and reduction cells have their own alphas.

use tch::nn;
use tch::{Device, Kind, Tensor};

use super::config::ALPHA_INIT_SD;
#[cfg(test)]
use super::ops::MixedOp;
use super::ops::{Bn, Builder, Ctx, FactorizedReduce, Grouped, Primitive, ReluConvBn};
use super::settings::DartsSettings;

/// True when cell `i` of `n` is a reduction cell: none with one cell, the second of two,
/// otherwise cells `n / 3` and `2n / 3` (Katib's trial model).
pub fn is_reduction(i: usize, n: usize) -> bool {
    match n {
        1 => false,
        2 => i == 1,
        _ => i == n / 3 || i == 2 * n / 3,
    }
}

/// Where a cell sits and its channels: inputs `c_pp` (k-2) and `c_p` (k-1), `c` per node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellShape {
    pub reduction: bool,
    pub reduction_prev: bool,
    pub c_pp: i64,
    pub c_p: i64,
    pub c: i64,
}

/// The cells of a network and the channels of the stem and of the last cell's output.
pub fn layout(
    num_layers: usize,
    init_channels: usize,
    stem_multiplier: usize,
    num_nodes: usize,
) -> (i64, Vec<CellShape>, i64) {
    let stem = (stem_multiplier * init_channels) as i64;
    let (mut c_pp, mut c_p, mut c) = (stem, stem, init_channels as i64);
    let mut cells = Vec::new();
    let mut reduction_prev = false;
    for i in 0..num_layers {
        let reduction = is_reduction(i, num_layers);
        if reduction {
            c *= 2;
        }
        cells.push(CellShape {
            reduction,
            reduction_prev,
            c_pp,
            c_p,
            c,
        });
        reduction_prev = reduction;
        (c_pp, c_p) = (c_p, c * num_nodes as i64);
    }
    (stem, cells, c_p)
}

/// Edges of a cell with `num_nodes` nodes: node `i` has `2 + i` inputs.
pub fn edge_count(num_nodes: usize) -> usize {
    (0..num_nodes).map(|i| 2 + i).sum()
}

/// The (node, input) of every edge, in the order of the alphas' rows.
pub fn edges(num_nodes: usize) -> Vec<(usize, usize)> {
    (0..num_nodes)
        .flat_map(|i| (0..2 + i).map(move |j| (i, j)))
        .collect()
}

/// Mean cross-entropy in the logits' own precision (tch's `cross_entropy_for_logits` works in
/// f32, too coarse for the oracle tests in f64).
pub fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.log_softmax(-1, logits.kind()).nll_loss(y)
}

/// The preprocessing of a cell's first input: a factorized reduce after a reduction cell.
#[derive(Debug)]
pub enum Pre {
    Reduce(FactorizedReduce),
    Conv(ReluConvBn),
}

impl Pre {
    pub fn new(b: &mut Builder, shape: &CellShape, affine: bool) -> Pre {
        if shape.reduction_prev {
            Pre::Reduce(FactorizedReduce::new(b, shape.c_pp, shape.c, affine))
        } else {
            Pre::Conv(ReluConvBn::new(b, shape.c_pp, shape.c, affine))
        }
    }

    pub fn forward(&self, ctx: &Ctx, x: &Tensor) -> Tensor {
        match self {
            Pre::Reduce(r) => r.forward(ctx, x),
            Pre::Conv(c) => c.forward(ctx, x),
        }
    }
}

/// The operations on the edges leaving one node of a cell, each primitive computed for all
/// of them at once (`Grouped`).
#[derive(Debug)]
struct Source {
    /// The edges leaving the node (to nodes `first_target..num_nodes`).
    edges: i64,
    first_target: usize,
    c: i64,
    /// The computed primitives, by primitive index (`none` is not computed).
    ops: Vec<(usize, Grouped)>,
}

impl Source {
    /// Every computed primitive's output on `x`: one tensor per primitive, holding the
    /// channels of every edge, edge by edge, or one output shared by every edge.
    fn forward(&self, ctx: &Ctx, x: &Tensor) -> Vec<Tensor> {
        let needs_relu = self.ops.iter().any(|(_, g)| g.per_edge());
        let relu = if needs_relu {
            x.relu()
        } else {
            x.shallow_clone()
        };
        let repeated = if self.edges > 1 && self.ops.iter().any(|(_, g)| g.reads_repeated()) {
            relu.repeat([1, self.edges, 1, 1])
        } else {
            relu.shallow_clone()
        };
        self.ops
            .iter()
            .map(|(_, g)| g.forward(ctx, x, &relu, &repeated))
            .collect()
    }
}

/// A cell of mixed operations.
#[derive(Debug)]
struct SearchCell {
    pre0: Pre,
    pre1: ReluConvBn,
    /// Per input node (the two cell inputs, then the intermediate nodes but the last), the
    /// operations on the edges leaving it.
    sources: Vec<Source>,
    /// Per node, the positions in the flattened `[edges x primitives]` weights of the terms
    /// `forward` stacks for it, in that order (on the network's device).
    mix_index: Vec<Tensor>,
    reduction: bool,
    num_nodes: usize,
}

impl SearchCell {
    /// The cell's output, node `i` being the weighted sum of every term of its incoming
    /// edges' mixed operations (DARTS's mixed operations summed over the node's edges),
    /// taken as one product of the weights with the stacked terms.
    fn forward(&self, ctx: &Ctx, s0: &Tensor, s1: &Tensor, weights: &Tensor) -> Tensor {
        let flat = weights.reshape([-1]);
        let mut states = vec![self.pre0.forward(ctx, s0), self.pre1.forward(ctx, s1)];
        let mut outputs: Vec<Vec<Tensor>> = Vec::new();
        for i in 0..self.num_nodes {
            let mut terms = Vec::new();
            for j in 0..2 + i {
                if outputs.len() <= j {
                    outputs.push(self.sources[j].forward(ctx, &states[j]));
                }
                let source = &self.sources[j];
                let e = (i - source.first_target) as i64;
                for ((_, g), t) in source.ops.iter().zip(&outputs[j]) {
                    terms.push(if g.per_edge() {
                        t.narrow(1, e * source.c, source.c)
                    } else {
                        t.shallow_clone()
                    });
                }
            }
            let node = match terms.first() {
                None => states[1].zeros_like(),
                Some(first) => {
                    let shape = first.size();
                    let stacked = Tensor::stack(&terms, 0);
                    let w = flat.index_select(0, &self.mix_index[i]).unsqueeze(0);
                    w.mm(&stacked.reshape([terms.len() as i64, -1]))
                        .reshape(shape.as_slice())
                }
            };
            states.push(node);
        }
        Tensor::cat(&states[2..], 1)
    }

    /// The same cell computed edge by edge, each edge's mixed operation on its own with its
    /// own weights (views of the grouped ones appended to `w` and `bufs`): DARTS's
    /// definition, which the tests check `forward` against.
    #[cfg(test)]
    fn forward_by_edge(
        &self,
        w: &mut Vec<Tensor>,
        bufs: &mut Vec<Tensor>,
        use_bufs: bool,
        train: bool,
        s0: &Tensor,
        s1: &Tensor,
        weights: &Tensor,
    ) -> Tensor {
        let mut mixed = Vec::new();
        for (i, j) in edges(self.num_nodes) {
            let source = &self.sources[j];
            let e = (i - source.first_target) as i64;
            let ops = source
                .ops
                .iter()
                .map(|(k, g)| (*k, g.edge(e, w, bufs)))
                .collect();
            mixed.push(MixedOp::from_ops(ops));
        }
        let ctx = Ctx {
            w,
            bufs: use_bufs.then_some(bufs.as_slice()),
            train,
        };
        let mut states = vec![self.pre0.forward(&ctx, s0), self.pre1.forward(&ctx, s1)];
        let mut edge = 0;
        for i in 0..self.num_nodes {
            let mut sum: Option<Tensor> = None;
            for state in &states[..2 + i] {
                let out = mixed[edge].forward(&ctx, state, &weights.get(edge as i64));
                edge += 1;
                sum = Some(match sum {
                    Some(s) => s + out,
                    None => out,
                });
            }
            states.push(sum.unwrap_or_else(|| states[1].zeros_like()));
        }
        Tensor::cat(&states[2..], 1)
    }
}

/// The supernet: its parameters (views of one flat vector, so the optimiser and the
/// architect update them all in a few operations), its batch-norm statistics, and the alphas.
pub struct Supernet {
    /// Every parameter, one after the other: `params` are views of it.
    pub flat: Tensor,
    /// The parameters as the forward pass takes them: leaves that share `flat`'s storage.
    pub params: Vec<Tensor>,
    pub buffers: Vec<Tensor>,
    /// The normal cells' alphas `[edges, primitives]`, then the reduction cells' when the
    /// network has any.
    pub alphas: Vec<Tensor>,
    pub primitives: Vec<Primitive>,
    pub num_nodes: usize,
    stem: usize,
    stem_bn: Bn,
    cells: Vec<SearchCell>,
    head: (usize, usize),
}

/// The parameters of `shapes` as views of the flat vector `flat`, in order.
pub fn views(flat: &Tensor, shapes: &[Vec<i64>]) -> Vec<Tensor> {
    let mut at = 0;
    shapes
        .iter()
        .map(|shape| {
            let n: i64 = shape.iter().product();
            let v = flat.narrow(0, at, n).view(shape.as_slice());
            at += n;
            v
        })
        .collect()
}

/// The tensors of `ts` one after the other in one flat vector.
pub fn flatten(ts: &[Tensor]) -> Tensor {
    Tensor::cat(&ts.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0)
}

impl Supernet {
    /// Builds the supernet for images of `in_channels` channels and `classes` classes; the
    /// weights and then the alphas are drawn from libtorch's generator seeded with `seed`.
    pub fn new(
        settings: &DartsSettings,
        in_channels: i64,
        classes: i64,
        seed: u64,
        device: Device,
    ) -> Supernet {
        tch::manual_seed(seed as i64);
        let vs = nn::VarStore::new(device);
        let primitives = settings.primitives();
        let mut b = Builder::new(vs.root());
        let (stem_c, shapes, c_out) = layout(
            settings.num_layers,
            settings.init_channels,
            settings.stem_multiplier,
            settings.num_nodes,
        );
        let stem = b.conv(stem_c, in_channels, 3);
        let stem_bn = b.bn(stem_c, true);
        let p = primitives.len();
        let cells = shapes
            .iter()
            .map(|shape| {
                let pre0 = Pre::new(&mut b, shape, false);
                let pre1 = ReluConvBn::new(&mut b, shape.c_p, shape.c, false);
                let n = settings.num_nodes;
                // The sources: the two inputs and every node but the last.
                let sources: Vec<Source> = (0..n + 1)
                    .map(|j| {
                        let first_target = j.saturating_sub(1);
                        let count = (n - first_target) as i64;
                        let stride = if shape.reduction && j < 2 { 2 } else { 1 };
                        let ops = primitives
                            .iter()
                            .enumerate()
                            .filter(|(_, p)| **p != Primitive::None)
                            .map(|(k, p)| (k, Grouped::build(&mut b, *p, count, shape.c, stride)))
                            .collect();
                        Source {
                            edges: count,
                            first_target,
                            c: shape.c,
                            ops,
                        }
                    })
                    .collect();
                let mix_index = (0..n)
                    .map(|i| {
                        let row0: usize = (0..i).map(|k| 2 + k).sum();
                        let at: Vec<i64> = (0..2 + i)
                            .flat_map(|j| {
                                sources[j]
                                    .ops
                                    .iter()
                                    .map(move |(k, _)| ((row0 + j) * p + k) as i64)
                            })
                            .collect();
                        Tensor::from_slice(&at).to_device(device)
                    })
                    .collect();
                SearchCell {
                    pre0,
                    pre1,
                    sources,
                    mix_index,
                    reduction: shape.reduction,
                    num_nodes: settings.num_nodes,
                }
            })
            .collect::<Vec<_>>();
        let head = b.linear(c_out, classes);
        let kinds = if shapes.iter().any(|s| s.reduction) {
            2
        } else {
            1
        };
        let rows = edge_count(settings.num_nodes) as i64;
        let alphas = (0..kinds)
            .map(|_| {
                (Tensor::randn([rows, p as i64], (Kind::Float, device)) * ALPHA_INIT_SD)
                    .set_requires_grad(true)
            })
            .collect();
        let param_shapes: Vec<Vec<i64>> = b.params.iter().map(|t| t.size()).collect();
        let flat = {
            let _guard = tch::no_grad_guard();
            flatten(&b.params).detach()
        };
        let params = views(&flat, &param_shapes)
            .into_iter()
            .map(|v| v.detach().set_requires_grad(true))
            .collect();
        Supernet {
            flat,
            params,
            buffers: b.buffers,
            alphas,
            primitives,
            num_nodes: settings.num_nodes,
            stem,
            stem_bn,
            cells,
            head,
        }
    }

    /// The shapes of the parameters, in order.
    pub fn param_shapes(&self) -> Vec<Vec<i64>> {
        self.params.iter().map(|t| t.size()).collect()
    }

    /// True when the network has reduction cells (and so reduction alphas).
    pub fn has_reduction(&self) -> bool {
        self.alphas.len() > 1
    }

    /// The logits for `x` with parameters `w` and alphas `alphas`; `bufs` as in `Ctx`.
    pub fn forward(
        &self,
        w: &[Tensor],
        bufs: Option<&[Tensor]>,
        alphas: &[Tensor],
        x: &Tensor,
        train: bool,
    ) -> Tensor {
        let ctx = Ctx { w, bufs, train };
        let weights: Vec<Tensor> = alphas.iter().map(|a| a.softmax(-1, a.kind())).collect();
        let h = x.conv2d(&w[self.stem], None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let mut s1 = self.stem_bn.forward(&ctx, &h);
        let mut s0 = s1.shallow_clone();
        for cell in &self.cells {
            let wts = if cell.reduction {
                &weights[1]
            } else {
                &weights[0]
            };
            let out = cell.forward(&ctx, &s0, &s1, wts);
            s0 = s1;
            s1 = out;
        }
        let pooled = s1.mean_dim([2i64, 3].as_slice(), false, s1.kind());
        pooled.linear(&w[self.head.0], Some(&w[self.head.1]))
    }

    /// `forward` computed edge by edge (`SearchCell::forward_by_edge`), with batch statistics
    /// only or with the running ones (`use_bufs`, nothing updated in eval mode).
    #[cfg(test)]
    fn forward_by_edge(
        &self,
        w: &[Tensor],
        use_bufs: bool,
        alphas: &[Tensor],
        x: &Tensor,
        train: bool,
    ) -> Tensor {
        let mut w: Vec<Tensor> = w.iter().map(Tensor::shallow_clone).collect();
        let mut bufs: Vec<Tensor> = self.buffers.iter().map(Tensor::shallow_clone).collect();
        let weights: Vec<Tensor> = alphas.iter().map(|a| a.softmax(-1, a.kind())).collect();
        let ctx = Ctx {
            w: &w,
            bufs: use_bufs.then_some(bufs.as_slice()),
            train,
        };
        let h = x.conv2d(&w[self.stem], None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let mut s1 = self.stem_bn.forward(&ctx, &h);
        let mut s0 = s1.shallow_clone();
        for cell in &self.cells {
            let wts = if cell.reduction {
                &weights[1]
            } else {
                &weights[0]
            };
            let out = cell.forward_by_edge(&mut w, &mut bufs, use_bufs, train, &s0, &s1, wts);
            s0 = s1;
            s1 = out;
        }
        let pooled = s1.mean_dim([2i64, 3].as_slice(), false, s1.kind());
        pooled.linear(&w[self.head.0], Some(&w[self.head.1]))
    }

    /// Mean cross-entropy of the logits for `x` against `y`, in train mode with batch
    /// statistics and nothing updated (the architect's loss).
    pub fn loss(&self, w: &[Tensor], alphas: &[Tensor], x: &Tensor, y: &Tensor) -> Tensor {
        cross_entropy(&self.forward(w, None, alphas, x, true), y)
    }

    /// Each alpha tensor's softmax weights, as rows of f64.
    pub fn weights(&self) -> Vec<Vec<Vec<f64>>> {
        self.alphas
            .iter()
            .map(|a| {
                let w = a.detach().softmax(-1, Kind::Double);
                let rows = w.size()[0];
                (0..rows)
                    .map(|r| Vec::<f64>::try_from(w.get(r)).unwrap_or_default())
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_cells_sit_where_katib_puts_them() {
        let at = |n| (0..n).filter(|&i| is_reduction(i, n)).collect::<Vec<_>>();
        assert_eq!(at(1), Vec::<usize>::new());
        assert_eq!(at(2), [1]);
        assert_eq!(at(3), [1, 2]);
        assert_eq!(at(5), [1, 3]);
        assert_eq!(at(8), [2, 5]);
        assert_eq!(edge_count(4), 14);
        assert_eq!(edges(2), [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]);
        // Channels by hand for 5 cells, C = 8, stem x3, 4 nodes.
        let (stem, cells, out) = layout(5, 8, 3, 4);
        assert_eq!(stem, 24);
        let c: Vec<(i64, i64, i64)> = cells.iter().map(|s| (s.c_pp, s.c_p, s.c)).collect();
        assert_eq!(
            c,
            [
                (24, 24, 8),
                (24, 32, 16),
                (32, 64, 16),
                (64, 64, 32),
                (64, 128, 32)
            ]
        );
        assert_eq!(out, 128);
        assert!(cells[2].reduction_prev && !cells[2].reduction);
    }

    #[test]
    fn the_supernet_maps_images_to_logits_for_every_layout() {
        for layers in [1, 2, 3] {
            let s = DartsSettings {
                num_layers: layers,
                init_channels: 2,
                num_nodes: 2,
                stem_multiplier: 1,
                ..DartsSettings::default()
            };
            let net = Supernet::new(&s, 1, 10, 0, Device::Cpu);
            assert_eq!(net.alphas.len(), if layers == 1 { 1 } else { 2 });
            assert_eq!(net.alphas[0].size(), [5, 7]);
            let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
            let logits = net.forward(&net.params, Some(&net.buffers), &net.alphas, &x, true);
            assert_eq!(logits.size(), [4, 10]);
            let logits = net.forward(&net.params, Some(&net.buffers), &net.alphas, &x, false);
            assert_eq!(logits.size(), [4, 10]);
            // Every parameter takes part: the loss has a gradient for each.
            let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
            let loss = net.loss(&net.params, &net.alphas, &x, &y);
            let mut inputs: Vec<&Tensor> = net.params.iter().collect();
            inputs.extend(net.alphas.iter());
            let grads = Tensor::run_backward(&[loss], &inputs, false, false);
            assert_eq!(grads.len(), inputs.len());
        }
    }

    /// Relative difference of two tensors.
    fn relative(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-30)
    }

    #[test]
    fn the_shared_forward_equals_the_edge_by_edge_definition() {
        // Every primitive, normal and reduction cells, three nodes; alphas away from uniform.
        let s = DartsSettings {
            num_layers: 3,
            init_channels: 3,
            num_nodes: 3,
            stem_multiplier: 2,
            search_space: Primitive::all()
                .iter()
                .filter(|p| **p != Primitive::None)
                .map(|p| p.name().to_string())
                .collect(),
            ..DartsSettings::default()
        };
        let net = Supernet::new(&s, 1, 10, 4, Device::Cpu);
        let alphas: Vec<Tensor> = net
            .alphas
            .iter()
            .map(|a| (a.detach() * 500.0).set_requires_grad(true))
            .collect();
        let x = Tensor::randn([6, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
        // Train mode, batch statistics: outputs and every gradient agree.
        let run = |by_edge: bool| {
            let logits = if by_edge {
                net.forward_by_edge(&net.params, false, &alphas, &x, true)
            } else {
                net.forward(&net.params, None, &alphas, &x, true)
            };
            let loss = cross_entropy(&logits, &y);
            let mut inputs: Vec<&Tensor> = alphas.iter().collect();
            inputs.extend(net.params.iter());
            let grads = Tensor::run_backward(&[loss], &inputs, false, false);
            (logits.detach(), flatten(&grads))
        };
        let (fast, fast_grads) = run(false);
        let (slow, slow_grads) = run(true);
        assert!(relative(&fast, &slow) < 1e-5, "{}", relative(&fast, &slow));
        assert!(relative(&fast_grads, &slow_grads) < 1e-4);
        // Eval mode with running statistics moved by one training pass.
        let _ = net.forward(&net.params, Some(&net.buffers), &alphas, &x, true);
        let _guard = tch::no_grad_guard();
        let fast = net.forward(&net.params, Some(&net.buffers), &alphas, &x, false);
        let slow = net.forward_by_edge(&net.params, true, &alphas, &x, false);
        assert!(relative(&fast, &slow) < 1e-5);
    }

    #[test]
    fn the_parameters_are_views_of_the_flat_vector() {
        let net = Supernet::new(&DartsSettings::default(), 1, 10, 0, Device::Cpu);
        let total: i64 = net.params.iter().map(|p| p.numel() as i64).sum();
        assert_eq!(net.flat.size(), [total]);
        assert!(net.params.iter().all(|p| p.requires_grad()));
        assert_eq!(relative(&flatten(&net.params), &net.flat), 0.0);
        // A change of the flat vector is a change of the parameter there.
        let last = net.params[net.params.len() - 1].reshape([-1]);
        let n = last.numel() as i64;
        let before = last.double_value(&[n - 1]);
        let _guard = tch::no_grad_guard();
        let _ = net.flat.narrow(0, total - 1, 1).g_add_scalar_(1.0);
        assert!((last.double_value(&[n - 1]) - before - 1.0).abs() < 1e-6);
    }
}
