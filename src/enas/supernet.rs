//! The shared weights of ENAS (Pham et al. 2018): one supernet that holds, for every layer
//! and every operation, the weights any architecture of the space can ask for there, so that
//! every sampled architecture is a subgraph of it. A layer's input is a concatenation whose
//! width depends on the architecture, so each operation keeps one weight block per earlier
//! layer it may read from, as wide as that layer can ever be; an architecture takes from each
//! block the channels its source actually has and concatenates them in Katib's input order.
//! The head is shared the same way, per operation of the last layer. The result is exactly a
//! standalone network (`network.rs`) with those weights (tested).
//! Batch norm always uses the batch's statistics here, as ENAS implementations do, since the
//! statistics of one architecture mean nothing to the next.

use anyhow::{Context, Result};
use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};

use super::config::{CHANNELS_MAX, SUPERNET_WEIGHTS_MAX};
use super::network::{forward, Plan};
use super::ops::{LayerWeights, OpKind};
use super::space::Arch;

/// Indices (into `Supernet::params`) of one operation's blocks at one layer.
#[derive(Clone, Debug, Default)]
struct OpBlocks {
    /// Per source layer: the main kernel block.
    kernel: Vec<usize>,
    /// Per source layer: the pointwise block (separable).
    pointwise: Vec<usize>,
    /// Batch norm scale and shift: one each, or one per source (depthwise).
    bn_weight: Vec<usize>,
    bn_bias: Vec<usize>,
}

/// The widest channels every layer can have (layer 0 = the input), for ops `kinds` and `n`
/// layers: a layer's widest input is every earlier layer at its widest.
pub fn widest_channels(kinds: &[OpKind], n: usize, in_channels: i64) -> Vec<i64> {
    let mut cmax = vec![in_channels];
    for l in 1..=n {
        let cin: i64 = cmax[..l].iter().fold(0i64, |a, &b| a.saturating_add(b));
        let widest = kinds.iter().map(|k| k.out_channels(cin)).max().unwrap_or(0);
        cmax.push(widest);
    }
    cmax
}

/// Counts the supernet's weights, or says why it would be too large.
pub fn check_size(
    kinds: &[OpKind],
    n: usize,
    in_channels: i64,
    classes: i64,
) -> Result<i64, String> {
    let cmax = widest_channels(kinds, n, in_channels);
    if let Some((l, &c)) = cmax.iter().enumerate().find(|(_, &c)| c > CHANNELS_MAX) {
        return Err(format!(
            "layer {l} can reach {c} channels (pooling and depthwise layers keep or multiply the channels of everything concatenated into them), above the limit of {CHANNELS_MAX} (CHANNELS_MAX in src/enas/config.rs); use fewer layers or fewer channel-keeping operations"
        ));
    }
    let mut total: i64 = 0;
    for l in 1..=n {
        for kind in kinds {
            for &c in &cmax[..l] {
                let (k, p, bn) = kind.weight_shapes(c);
                total = total
                    .saturating_add(k.map_or(0, |s| s.iter().product()))
                    .saturating_add(p.map_or(0, |s| s.iter().product()));
                if let OpKind::Depthwise { .. } = kind {
                    total = total.saturating_add(2 * bn.unwrap_or(0));
                }
            }
            if let OpKind::Conv { filters, .. } | OpKind::Separable { filters, .. } = *kind {
                total = total.saturating_add(2 * filters);
            }
        }
    }
    for kind in kinds {
        total = total.saturating_add(classes * (head_width(*kind, &cmax[..n]) + 1));
    }
    if total > SUPERNET_WEIGHTS_MAX {
        return Err(format!(
            "the shared supernet would hold {total} weights, above the limit of {SUPERNET_WEIGHTS_MAX} (SUPERNET_WEIGHTS_MAX in src/enas/config.rs); use fewer layers, filters or operations"
        ));
    }
    Ok(total)
}

/// The summed widths of the head's blocks for a last layer of `kind` whose possible sources
/// are at most `cmax` wide: one block for a convolution's filters, one per source otherwise
/// (a pooling or depthwise layer's output is its sources' channels side by side).
fn head_width(kind: OpKind, cmax: &[i64]) -> i64 {
    match kind {
        OpKind::Conv { filters, .. } | OpKind::Separable { filters, .. } => filters,
        OpKind::Depthwise { multiplier, .. } => cmax.iter().sum::<i64>() * multiplier,
        OpKind::Pool { .. } => cmax.iter().sum::<i64>(),
    }
}

/// The shared weights of every operation at every layer.
pub struct Supernet {
    pub vs: VarStore,
    /// Every block, in creation order (the order of momentum buffers and checkpoints).
    pub params: Vec<Tensor>,
    pub kinds: Vec<OpKind>,
    pub cmax: Vec<i64>,
    blocks: Vec<Vec<OpBlocks>>,
    /// Per operation of the last layer: the head's weight blocks (one, or one per source)
    /// and its bias.
    head: Vec<(Vec<usize>, usize)>,
    pub in_channels: i64,
    pub classes: i64,
}

/// An architecture's network drawn from the supernet: its plan, weights and head, and the
/// indices of the blocks it used.
pub struct Drawn {
    pub plan: Plan,
    pub weights: Vec<LayerWeights>,
    pub head_weight: Tensor,
    pub head_bias: Tensor,
    pub used: Vec<usize>,
}

impl Supernet {
    /// Blocks drawn from libtorch's generator (seed it first): kernels uniform in
    /// +-sqrt(6 / fan_in) with the fan-in of the chain without skips, batch norm 1 and 0.
    pub fn new(
        kinds: &[OpKind],
        n: usize,
        in_channels: i64,
        classes: i64,
        device: Device,
    ) -> Supernet {
        let cmax = widest_channels(kinds, n, in_channels);
        let vs = VarStore::new(device);
        let root = vs.root();
        let mut params = Vec::new();
        let mut push = |p: &nn::Path, name: &str, shape: &[i64], init: nn::Init| {
            params.push(p.var(name, shape, init));
            params.len() - 1
        };
        let uniform = |fan_in: i64| {
            let b = (6.0 / fan_in.max(1) as f64).sqrt();
            nn::Init::Uniform { lo: -b, up: b }
        };
        let mut blocks = Vec::new();
        for l in 1..=n {
            let mut layer = Vec::new();
            for (o, kind) in kinds.iter().enumerate() {
                let p = &root / format!("l{l}") / format!("o{o}");
                let mut b = OpBlocks::default();
                let prev = cmax[l - 1];
                for (j, &c) in cmax[..l].iter().enumerate() {
                    let s = &p / format!("s{j}");
                    match *kind {
                        OpKind::Conv { k, filters, .. } => {
                            b.kernel.push(push(
                                &s,
                                "kernel",
                                &[filters, c, k, k],
                                uniform(k * k * prev),
                            ));
                        }
                        OpKind::Separable {
                            k,
                            filters,
                            multiplier,
                            ..
                        } => {
                            b.kernel.push(push(
                                &s,
                                "kernel",
                                &[c * multiplier, 1, k, k],
                                uniform(k * k),
                            ));
                            b.pointwise.push(push(
                                &s,
                                "pointwise",
                                &[filters, c * multiplier, 1, 1],
                                uniform(prev * multiplier),
                            ));
                        }
                        OpKind::Depthwise { k, multiplier, .. } => {
                            b.kernel.push(push(
                                &s,
                                "kernel",
                                &[c * multiplier, 1, k, k],
                                uniform(k * k),
                            ));
                            b.bn_weight.push(push(
                                &s,
                                "bn_weight",
                                &[c * multiplier],
                                nn::Init::Const(1.0),
                            ));
                            b.bn_bias.push(push(
                                &s,
                                "bn_bias",
                                &[c * multiplier],
                                nn::Init::Const(0.0),
                            ));
                        }
                        OpKind::Pool { .. } => {}
                    }
                }
                if let OpKind::Conv { filters, .. } | OpKind::Separable { filters, .. } = *kind {
                    b.bn_weight
                        .push(push(&p, "bn_weight", &[filters], nn::Init::Const(1.0)));
                    b.bn_bias
                        .push(push(&p, "bn_bias", &[filters], nn::Init::Const(0.0)));
                }
                layer.push(b);
            }
            blocks.push(layer);
        }
        // The head is shared like a layer: per operation of the last layer, and per source
        // where that operation's output is its sources' channels side by side.
        let mut head = Vec::new();
        for (o, kind) in kinds.iter().enumerate() {
            let p = &root / "head" / format!("o{o}");
            let fan_in = match *kind {
                OpKind::Conv { filters, .. } | OpKind::Separable { filters, .. } => filters,
                _ => cmax[n - 1].max(1),
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            let init = nn::Init::Uniform {
                lo: -bound,
                up: bound,
            };
            let mut weights = Vec::new();
            match *kind {
                OpKind::Conv { filters, .. } | OpKind::Separable { filters, .. } => {
                    weights.push(push(&p, "weight", &[classes, filters], init));
                }
                OpKind::Depthwise { multiplier, .. } => {
                    for (j, &c) in cmax[..n].iter().enumerate() {
                        weights.push(push(
                            &(&p / format!("s{j}")),
                            "weight",
                            &[classes, c * multiplier],
                            init,
                        ));
                    }
                }
                OpKind::Pool { .. } => {
                    for (j, &c) in cmax[..n].iter().enumerate() {
                        weights.push(push(&(&p / format!("s{j}")), "weight", &[classes, c], init));
                    }
                }
            }
            let bias = push(&p, "bias", &[classes], init);
            head.push((weights, bias));
        }
        Supernet {
            vs,
            params,
            kinds: kinds.to_vec(),
            cmax,
            blocks,
            head,
            in_channels,
            classes,
        }
    }

    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// The network of `arch` (checked against the space) with the shared weights.
    pub fn draw(&self, arch: &Arch) -> Drawn {
        let plan = Plan::new(arch, |id| self.kinds[id], self.in_channels, self.classes);
        let mut used = Vec::new();
        let mut weights = Vec::new();
        for (i, layer) in plan.layers.iter().enumerate() {
            let b = &self.blocks[i][arch[i][0] as usize];
            let widths: Vec<i64> = layer.inputs.iter().map(|&j| plan.channels[j]).collect();
            // Concatenates the blocks of the layer's sources, each cut to its source's width.
            let mut gather = |ids: &[usize], dim: i64, per: i64| -> Option<Tensor> {
                if ids.is_empty() {
                    return None;
                }
                let parts: Vec<Tensor> = layer
                    .inputs
                    .iter()
                    .zip(&widths)
                    .map(|(&j, &c)| {
                        used.push(ids[j]);
                        self.params[ids[j]].narrow(dim, 0, c * per)
                    })
                    .collect();
                Some(if parts.len() == 1 {
                    parts.into_iter().next()?
                } else {
                    Tensor::cat(&parts, dim)
                })
            };
            let lw = match layer.kind {
                OpKind::Conv { .. } => LayerWeights {
                    kernel: gather(&b.kernel, 1, 1),
                    pointwise: None,
                    bn_weight: None,
                    bn_bias: None,
                },
                OpKind::Separable { multiplier, .. } => LayerWeights {
                    kernel: gather(&b.kernel, 0, multiplier),
                    pointwise: gather(&b.pointwise, 1, multiplier),
                    bn_weight: None,
                    bn_bias: None,
                },
                OpKind::Depthwise { multiplier, .. } => LayerWeights {
                    kernel: gather(&b.kernel, 0, multiplier),
                    pointwise: None,
                    bn_weight: gather(&b.bn_weight, 0, multiplier),
                    bn_bias: gather(&b.bn_bias, 0, multiplier),
                },
                OpKind::Pool { .. } => LayerWeights {
                    kernel: None,
                    pointwise: None,
                    bn_weight: None,
                    bn_bias: None,
                },
            };
            let lw = match layer.kind {
                OpKind::Conv { .. } | OpKind::Separable { .. } => {
                    used.push(b.bn_weight[0]);
                    used.push(b.bn_bias[0]);
                    LayerWeights {
                        bn_weight: Some(self.params[b.bn_weight[0]].shallow_clone()),
                        bn_bias: Some(self.params[b.bn_bias[0]].shallow_clone()),
                        ..lw
                    }
                }
                _ => lw,
            };
            weights.push(lw);
        }
        let n = plan.layers.len();
        let last = &plan.layers[n - 1];
        let (head_blocks, head_bias) = &self.head[arch[n - 1][0] as usize];
        let per = match last.kind {
            OpKind::Depthwise { multiplier, .. } => multiplier,
            _ => 1,
        };
        let head_weight = match last.kind {
            OpKind::Conv { .. } | OpKind::Separable { .. } => {
                used.push(head_blocks[0]);
                self.params[head_blocks[0]].shallow_clone()
            }
            _ => {
                let parts: Vec<Tensor> = last
                    .inputs
                    .iter()
                    .map(|&j| {
                        used.push(head_blocks[j]);
                        self.params[head_blocks[j]].narrow(1, 0, plan.channels[j] * per)
                    })
                    .collect();
                if parts.len() == 1 {
                    parts[0].shallow_clone()
                } else {
                    Tensor::cat(&parts, 1)
                }
            }
        };
        used.push(*head_bias);
        Drawn {
            head_weight,
            head_bias: self.params[*head_bias].shallow_clone(),
            plan,
            weights,
            used,
        }
    }

    /// Logits of `arch` on `x` with the shared weights (batch statistics in batch norm).
    pub fn forward(&self, arch: &Arch, x: &Tensor) -> (Tensor, Drawn) {
        let drawn = self.draw(arch);
        let logits = forward(
            &drawn.plan,
            x,
            &drawn.weights,
            &[],
            (&drawn.head_weight, &drawn.head_bias),
            true,
        );
        (logits, drawn)
    }

    /// Accuracy of `arch` with the shared weights on `(x, y)`, without gradients.
    pub fn accuracy(&self, arch: &Arch, x: &Tensor, y: &Tensor) -> f64 {
        let _guard = tch::no_grad_guard();
        let (logits, _) = self.forward(arch, x);
        logits
            .argmax(-1, false)
            .eq_tensor(y)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    }

    /// Saves every block (and `extra` tensors, e.g. momentum buffers) to one file.
    pub fn save(&self, path: &std::path::Path, extra: &[Tensor]) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = self
            .params
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("p{i}"), t.shallow_clone()))
            .collect();
        named.extend(
            extra
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("m{i}"), t.shallow_clone())),
        );
        Tensor::save_multi(&named, path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Loads what `save` wrote; returns the extra tensors.
    pub fn load(&mut self, path: &std::path::Path) -> Result<Vec<Tensor>> {
        let loaded =
            Tensor::load_multi(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut extra = Vec::new();
        let _guard = tch::no_grad_guard();
        for (name, t) in loaded {
            if let Some(i) = name.strip_prefix('p').and_then(|s| s.parse::<usize>().ok()) {
                let p = self
                    .params
                    .get_mut(i)
                    .context("the checkpoint's supernet has more blocks")?;
                anyhow::ensure!(
                    p.size() == t.size(),
                    "the checkpoint's block {i} has another shape"
                );
                p.copy_(&t);
            } else if let Some(i) = name.strip_prefix('m').and_then(|s| s.parse::<usize>().ok()) {
                if extra.len() <= i {
                    extra.resize_with(i + 1, || Tensor::zeros([0], (Kind::Float, Device::Cpu)));
                }
                extra[i] = t;
            }
        }
        Ok(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enas::network::Network;
    use crate::enas::space::parse_architecture;
    use tch::nn::ModuleT;

    fn kinds() -> Vec<OpKind> {
        vec![
            OpKind::Conv {
                k: 3,
                filters: 6,
                stride: 1,
            },
            OpKind::Separable {
                k: 5,
                filters: 4,
                stride: 2,
                multiplier: 2,
            },
            OpKind::Depthwise {
                k: 3,
                stride: 1,
                multiplier: 2,
            },
            OpKind::Pool {
                max: true,
                size: 2,
                stride: 2,
            },
            OpKind::Pool {
                max: false,
                size: 3,
                stride: 1,
            },
            OpKind::Conv {
                k: 5,
                filters: 3,
                stride: 2,
            },
        ]
    }

    #[test]
    fn a_drawn_architecture_is_the_standalone_network_with_the_same_weights() {
        tch::manual_seed(11);
        let net = Supernet::new(&kinds(), 4, 2, 5, Device::Cpu);
        // Make batch norm's scale and shift non-trivial, so that a mix-up would show.
        {
            let _g = tch::no_grad_guard();
            for p in &net.params {
                if p.dim() == 1 {
                    let mut p = p.shallow_clone();
                    p.copy_(&(Tensor::rand_like(&p) + 0.5));
                }
            }
        }
        let x = Tensor::randn([6, 2, 9, 9], (Kind::Float, Device::Cpu));
        for text in [
            "[[0], [1, 0], [2, 1, 0], [3, 0, 1, 1]]",
            "[[3], [2, 1], [1, 1, 1], [5, 1, 1, 1]]",
            "[[4], [0, 1], [5, 0, 1], [2, 1, 0, 1]]",
            "[[1], [3, 1], [4, 0, 0], [0, 1, 1, 0]]",
        ] {
            let arch = parse_architecture(text).unwrap();
            let (shared, drawn) = net.forward(&arch, &x);
            let vs = nn::VarStore::new(Device::Cpu);
            let mut alone = Network::new(&vs.root(), &drawn.plan);
            alone.load(&drawn.weights, (&drawn.head_weight, &drawn.head_bias));
            let own = alone.forward_t(&x, true);
            assert_eq!(own.size(), [6, 5]);
            let diff = (&own - &shared).abs().max().double_value(&[]);
            assert!(diff <= 1e-6, "{text}: differs by {diff}");
            // The standalone network has exactly the drawn weights' count.
            let counted: i64 = vs
                .trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum();
            assert_eq!(counted, drawn.plan.weight_count());
        }
    }

    #[test]
    fn gradients_reach_only_the_blocks_an_architecture_used() {
        tch::manual_seed(3);
        let net = Supernet::new(&kinds(), 3, 1, 4, Device::Cpu);
        let arch = parse_architecture("[[0], [2, 1], [1, 0, 1]]").unwrap();
        let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
        let (logits, drawn) = net.forward(&arch, &x);
        logits.sum(Kind::Float).backward();
        for (i, p) in net.params.iter().enumerate() {
            let touched =
                p.grad().defined() && p.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0;
            if touched {
                assert!(drawn.used.contains(&i), "block {i} got a gradient unasked");
            }
        }
        assert_eq!(
            check_size(&kinds(), 3, 1, 4).unwrap(),
            net.params.iter().map(|p| p.numel() as i64).sum::<i64>()
        );
    }
}
