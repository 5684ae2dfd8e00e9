//! SynFlow (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
//! conserving synaptic flow"), as a zero-cost proxy (Abdelfattah et al. 2021): every weight
//! replaced by its absolute value, one all-ones input in double precision, `R` the sum of the
//! outputs, the score the sum over weights of `|theta * dR/dtheta|`; batch norm in eval mode.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{fresh, weights};

/// The per-weight-tensor scores, by name, and `R`.
pub fn synflow_per_tensor<M: ModuleT>(
    build: &dyn Fn(&nn::Path) -> M,
    seed: u64,
    input_shape: &[i64],
    device: Device,
) -> (Vec<(String, f64)>, f64) {
    let (mut vs, model) = fresh(build, seed, device);
    vs.double();
    {
        let _guard = tch::no_grad_guard();
        for (_, mut t) in vs.variables() {
            if t.requires_grad() {
                let _ = t.abs_();
            }
        }
    }
    let mut shape = vec![1i64];
    shape.extend_from_slice(input_shape);
    let x = Tensor::ones(shape.as_slice(), (Kind::Double, device));
    let r = model.forward_t(&x, false).sum(Kind::Double);
    r.backward();
    let scores = weights(&vs)
        .into_iter()
        .map(|(name, t)| {
            // A weight the output does not depend on has no gradient: it scores 0.
            let g = t.grad();
            let s = if g.defined() {
                (&t * g).abs().sum(Kind::Double).double_value(&[])
            } else {
                0.0
            };
            (name, s)
        })
        .collect();
    (scores, r.double_value(&[]))
}

/// The synflow score.
pub fn synflow<M: ModuleT>(
    build: &dyn Fn(&nn::Path) -> M,
    seed: u64,
    input_shape: &[i64],
    device: Device,
) -> f64 {
    synflow_per_tensor(build, seed, input_shape, device)
        .0
        .iter()
        .map(|(_, s)| s)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linear layers and ReLUs, no biases, no batch norm.
    #[derive(Debug)]
    struct Chain(Vec<nn::Linear>);

    impl ModuleT for Chain {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            let mut h = xs.shallow_clone();
            for (i, layer) in self.0.iter().enumerate() {
                h = h.apply(layer);
                if i + 1 < self.0.len() {
                    h = h.relu();
                }
            }
            h
        }
    }

    #[test]
    fn every_layer_conserves_the_flow() {
        // Tanaka et al.'s conservation law: with positive weights and a positive input every
        // ReLU passes, R is homogeneous of degree 1 in each layer's weights, so each layer's
        // sum of theta dR/dtheta equals R.
        for (seed, widths) in [
            (1u64, vec![5i64, 7, 3]),
            (2, vec![4, 9, 6, 2]),
            (3, vec![3, 3]),
        ] {
            let build = |p: &nn::Path| {
                Chain(
                    widths
                        .windows(2)
                        .enumerate()
                        .map(|(i, w)| {
                            let config = nn::LinearConfig {
                                bias: false,
                                ..Default::default()
                            };
                            nn::linear(p / format!("l{i}"), w[0], w[1], config)
                        })
                        .collect(),
                )
            };
            let (per_layer, r) = synflow_per_tensor(&build, seed, &[widths[0]], Device::Cpu);
            assert_eq!(per_layer.len(), widths.len() - 1);
            assert!(r > 0.0);
            for (name, s) in per_layer {
                assert!((s - r).abs() <= 1e-9 * r, "{name}: {s} against R = {r}");
            }
        }
    }
}
