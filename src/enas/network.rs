//! A standalone network of one ENAS architecture, built as Kubeflow Katib's trial builds it
//! (its `ModelConstructor`): layer `l` takes layer `l - 1` and every earlier layer whose skip
//! flag is set (layer 0 being the input), zero-padded and concatenated in that order, applies
//! its operation (`ops.rs`), and after the last layer come global average pooling and a
//! linear layer. A `Plan` is the architecture with every layer's channels worked out.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::ops::{self, LayerWeights, OpKind};
use super::space::Arch;

/// One layer of a plan: its operation, its inputs in concatenation order, and channels.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    pub kind: OpKind,
    /// Layers feeding this one (0 = the input): the previous first, then skips ascending.
    pub inputs: Vec<usize>,
    pub cin: i64,
    pub cout: i64,
}

/// An architecture with its channels: `channels[0]` is the input's, `channels[l]` layer l's.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub layers: Vec<LayerPlan>,
    pub channels: Vec<i64>,
    pub classes: i64,
}

impl Plan {
    /// `kind_of(id)` reads an operation id; `arch` must already be checked against the space.
    pub fn new(
        arch: &Arch,
        kind_of: impl Fn(usize) -> OpKind,
        in_channels: i64,
        classes: i64,
    ) -> Plan {
        let mut channels = vec![in_channels];
        let mut layers = Vec::new();
        for (i, row) in arch.iter().enumerate() {
            let l = i + 1;
            let mut inputs = vec![l - 1];
            for (k, &flag) in row[1..].iter().enumerate() {
                if flag == 1 && k < l - 1 {
                    inputs.push(k);
                }
            }
            let kind = kind_of(row[0] as usize);
            let cin: i64 = inputs.iter().map(|&j| channels[j]).sum();
            let cout = kind.out_channels(cin);
            channels.push(cout);
            layers.push(LayerPlan {
                kind,
                inputs,
                cin,
                cout,
            });
        }
        Plan {
            layers,
            channels,
            classes,
        }
    }

    /// Weights (with batch-norm parameters) of a network of this plan.
    pub fn weight_count(&self) -> i64 {
        let mut n = 0;
        for layer in &self.layers {
            let (k, p, bn) = layer.kind.weight_shapes(layer.cin);
            n += k.map_or(0, |s| s.iter().product::<i64>());
            n += p.map_or(0, |s| s.iter().product::<i64>());
            n += 2 * bn.unwrap_or(0);
        }
        n + (self.channels.last().copied().unwrap_or(0) + 1) * self.classes
    }
}

/// Runs a plan with the given weights: each layer's weights, batch-norm running statistics
/// (None: the batch's statistics always), and the head.
pub fn forward(
    plan: &Plan,
    x: &Tensor,
    weights: &[LayerWeights],
    running: &[Option<(Tensor, Tensor)>],
    head: (&Tensor, &Tensor),
    train: bool,
) -> Tensor {
    let mut outs: Vec<Tensor> = vec![x.shallow_clone()];
    for (i, layer) in plan.layers.iter().enumerate() {
        let inputs: Vec<&Tensor> = layer.inputs.iter().map(|&j| &outs[j]).collect();
        let input = ops::concat_padded(&inputs);
        let run = running.get(i).and_then(|r| r.as_ref()).map(|(m, v)| (m, v));
        let y = ops::apply(layer.kind, &input, &weights[i], run, train);
        outs.push(y);
    }
    ops::head(&outs[plan.layers.len()], head.0, head.1)
}

/// A standalone network with its own variables (trained by `nn::train`).
#[derive(Debug)]
pub struct Network {
    pub plan: Plan,
    pub weights: Vec<LayerWeights>,
    pub running: Vec<Option<(Tensor, Tensor)>>,
    pub head_weight: Tensor,
    pub head_bias: Tensor,
}

impl Network {
    /// Fresh variables under `p`: kernels and the head drawn as libtorch's default layers draw
    /// them (Kaiming uniform), batch norm at scale 1 and shift 0.
    pub fn new(p: &nn::Path, plan: &Plan) -> Network {
        let mut weights = Vec::new();
        let mut running = Vec::new();
        for (i, layer) in plan.layers.iter().enumerate() {
            let lp = p / format!("layer{i}");
            let (k, pw, bn) = layer.kind.weight_shapes(layer.cin);
            let init = nn::Init::Kaiming {
                dist: nn::init::NormalOrUniform::Uniform,
                fan: nn::init::FanInOut::FanIn,
                non_linearity: nn::init::NonLinearity::ReLU,
            };
            let kernel = k.map(|s| lp.var("kernel", &s, init));
            let pointwise = pw.map(|s| lp.var("pointwise", &s, init));
            let (bn_weight, bn_bias) = match bn {
                Some(c) => (
                    Some(lp.var("bn_weight", &[c], nn::Init::Const(1.0))),
                    Some(lp.var("bn_bias", &[c], nn::Init::Const(0.0))),
                ),
                None => (None, None),
            };
            running.push(bn.map(|c| {
                (
                    lp.zeros_no_train("running_mean", &[c]),
                    lp.ones_no_train("running_var", &[c]),
                )
            }));
            weights.push(LayerWeights {
                kernel,
                pointwise,
                bn_weight,
                bn_bias,
            });
        }
        let last = plan.channels.last().copied().unwrap_or(1);
        let bound = 1.0 / (last as f64).sqrt();
        let head_weight = p.var(
            "head_weight",
            &[plan.classes, last],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        let head_bias = p.var(
            "head_bias",
            &[plan.classes],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        Network {
            plan: plan.clone(),
            weights,
            running,
            head_weight,
            head_bias,
        }
    }

    /// Copies `weights` and the head into this network's variables (same shapes).
    pub fn load(&mut self, weights: &[LayerWeights], head: (&Tensor, &Tensor)) {
        let _guard = tch::no_grad_guard();
        let copy = |dst: &mut Option<Tensor>, src: &Option<Tensor>| {
            if let (Some(d), Some(s)) = (dst.as_mut(), src.as_ref()) {
                d.copy_(s);
            }
        };
        for (mine, theirs) in self.weights.iter_mut().zip(weights) {
            copy(&mut mine.kernel, &theirs.kernel);
            copy(&mut mine.pointwise, &theirs.pointwise);
            copy(&mut mine.bn_weight, &theirs.bn_weight);
            copy(&mut mine.bn_bias, &theirs.bn_bias);
        }
        self.head_weight.copy_(head.0);
        self.head_bias.copy_(head.1);
    }
}

impl ModuleT for Network {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // Images arrive as floats (or as doubles when a proxy scores the network in double).
        let x = match xs.kind() {
            Kind::Double => xs.shallow_clone(),
            _ => xs.to_kind(Kind::Float),
        };
        forward(
            &self.plan,
            &x,
            &self.weights,
            &self.running,
            (&self.head_weight, &self.head_bias),
            train,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enas::space::parse_architecture;
    use tch::Device;

    #[test]
    fn the_training_free_proxies_score_an_enas_network() {
        // Any network archsearch builds can be scored: here a 3-layer ENAS architecture.
        let arch = parse_architecture("[[0], [1, 1], [0, 0, 1]]").unwrap();
        let kinds = [
            OpKind::Conv {
                k: 3,
                filters: 4,
                stride: 1,
            },
            OpKind::Separable {
                k: 3,
                filters: 4,
                stride: 1,
                multiplier: 1,
            },
        ];
        let plan = Plan::new(&arch, |id| kinds[id], 1, 10);
        let build = |p: &nn::Path| Network::new(p, &plan);
        tch::manual_seed(0);
        let batch = crate::proxies::Batch {
            x: Tensor::rand([8, 1, 8, 8], (Kind::Float, Device::Cpu)),
            y: Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 6, 7]),
        };
        let scores = crate::proxies::score(&build, 3, &batch);
        for name in ["synflow", "snip", "grad_norm", "naswot", "jacob_cov"] {
            let s = scores.get(name).unwrap();
            assert!(s.is_finite() && s != 0.0, "{name}: {s}");
        }
        assert_eq!(scores, crate::proxies::score(&build, 3, &batch));
    }

    #[test]
    fn channels_follow_the_concatenation_rule() {
        // Layer 1 conv 4; layer 2 pool over [layer 1, input]; layer 3 depthwise x2 over
        // [layer 2, layer 1].
        let arch = parse_architecture("[[0], [1, 1], [2, 0, 1]]").unwrap();
        let kinds = [
            OpKind::Conv {
                k: 3,
                filters: 4,
                stride: 1,
            },
            OpKind::Pool {
                max: true,
                size: 2,
                stride: 2,
            },
            OpKind::Depthwise {
                k: 3,
                stride: 1,
                multiplier: 2,
            },
        ];
        let plan = Plan::new(&arch, |id| kinds[id], 3, 10);
        assert_eq!(plan.channels, vec![3, 4, 7, 22]);
        assert_eq!(plan.layers[1].inputs, vec![1, 0]);
        assert_eq!(plan.layers[2].inputs, vec![2, 1]);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Network::new(&vs.root(), &plan);
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, true).size(), [2, 10]);
        assert_eq!(net.forward_t(&x, false).size(), [2, 10]);
        let counted: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(plan.weight_count(), counted);
    }
}
