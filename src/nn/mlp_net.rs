//! A child MLP (`mlp::MlpSpec`) as a tch module for the general trainer (`nn::train`): its
//! weights live in one flat variable laid out as `MlpSpec::init_params` (PyTorch's default
//! `Linear` initialisation), so a trained net converts to the fast path's `child::Child` for
//! plots and testing, and both paths start from the same weights for the same generator.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::nn::child::Child;
use crate::nn::mlp::{Layer, MlpSpec};

/// An `MlpSpec` with its weights as one trainable variable; dropout (inverted, as PyTorch's)
/// after every activation in train mode.
#[derive(Debug)]
pub struct MlpNet {
    spec: MlpSpec,
    params: Tensor,
    dropout: f64,
}

impl MlpNet {
    /// A net of `spec` in `p`'s variable store, its initial weights drawn from `rng` exactly as
    /// `Child::new` draws them.
    pub fn new(p: &nn::Path, spec: &MlpSpec, dropout: f64, rng: &mut impl rand::Rng) -> MlpNet {
        let init = Tensor::from_slice(&spec.init_params(rng));
        MlpNet {
            spec: spec.clone(),
            params: p.var_copy("params", &init),
            dropout,
        }
    }

    /// The trained weights as a fast-path child (a copy).
    pub fn to_child(&self) -> Child {
        Child::from_params(&self.spec, self.params.detach().copy())
    }

    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }
}

impl ModuleT for MlpNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // Flatten images ([N, C, H, W]) to points; an MLP sees only features.
        let mut h = xs.flatten(1, -1);
        let shapes = self.spec.linear_shapes();
        let mut offset = 0i64;
        let mut linear = |h: &Tensor, k: usize| {
            let (i, o) = (shapes[k].0 as i64, shapes[k].1 as i64);
            let w = self.params.narrow(0, offset, i * o).view([i, o]);
            let b = self.params.narrow(0, offset + i * o, o);
            offset += i * o + o;
            b.addmm(h, &w)
        };
        let mut k = 0;
        for layer in &self.spec.layers {
            h = match *layer {
                Layer::Linear(_) => {
                    k += 1;
                    linear(&h, k - 1)
                }
                Layer::Act(a) if train && self.dropout > 0.0 => {
                    a.apply(&h).dropout(self.dropout, true)
                }
                Layer::Act(a) => a.apply(&h),
            };
        }
        linear(&h, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::Activation::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;
    use tch::{Device, Kind};

    #[test]
    fn the_module_computes_what_the_fast_child_computes_from_the_same_draws() {
        let spec = MlpSpec {
            n_in: 2,
            n_out: 3,
            layers: vec![
                Layer::Linear(8),
                Layer::Act(Tanh),
                Layer::Act(LeakyReLU),
                Layer::Linear(4),
                Layer::Linear(5),
                Layer::Act(Sigmoid),
            ],
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = MlpNet::new(&vs.root(), &spec, 0.3, &mut Pcg64::seed_from_u64(9));
        let child = Child::new(&spec, Device::Cpu, &mut Pcg64::seed_from_u64(9));
        let x = Tensor::randn([11, 2], (Kind::Float, Device::Cpu));
        let ours = net.forward_t(&x, false);
        assert_eq!(ours.size(), [11, 3]);
        let diff = (&ours - child.forward(&x)).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        let converted = net.to_child().forward(&x);
        assert_eq!((&ours - converted).abs().max().double_value(&[]), 0.0);
        assert_eq!(vs.trainable_variables().len(), 1);
        assert_eq!(vs.trainable_variables()[0].numel(), spec.n_params());
    }

    #[test]
    fn no_hidden_layer_is_a_linear_map_and_images_are_flattened() {
        let spec = MlpSpec {
            n_in: 4,
            n_out: 2,
            layers: vec![],
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = MlpNet::new(&vs.root(), &spec, 0.0, &mut Pcg64::seed_from_u64(1));
        let x = Tensor::randn([3, 1, 2, 2], (Kind::Float, Device::Cpu));
        let values = spec.init_params(&mut Pcg64::seed_from_u64(1));
        let w = Tensor::from_slice(&values[..8]).view([4, 2]);
        let b = Tensor::from_slice(&values[8..]);
        let expected = x.view([3, 4]).matmul(&w) + b;
        let diff = (net.forward_t(&x, true) - expected)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
    }
}
