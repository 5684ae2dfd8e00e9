//! The two gradient proxies of Abdelfattah et al. 2021 ("Zero-Cost Proxies for Lightweight
//! NAS"): `snip` (Lee et al. 2019's connection sensitivity), the sum over weights of
//! `|theta * dL/dtheta|`, and `grad_norm`, the sum over weight tensors of the L2 norm of
//! `dL/dW`; `L` the cross-entropy of the batch in train mode, one backward pass for both.

use tch::nn::{self, ModuleT};
use tch::Kind;

use super::{fresh, weights, Batch};

/// (snip, grad_norm) of the network `build` makes with `seed`.
pub fn snip_and_grad_norm<M: ModuleT>(
    build: &dyn Fn(&nn::Path) -> M,
    seed: u64,
    batch: &Batch,
) -> (f64, f64) {
    let (vs, model) = fresh(build, seed, batch.device());
    let loss = model
        .forward_t(&batch.x, true)
        .cross_entropy_for_logits(&batch.y);
    loss.backward();
    let (mut snip, mut norm) = (0.0, 0.0);
    for (_, t) in weights(&vs) {
        let g = t.grad();
        if !g.defined() {
            continue; // the loss does not depend on this weight: it adds 0 to both
        }
        snip += (&t * &g).abs().sum(Kind::Double).double_value(&[]);
        norm += g.norm().double_value(&[]);
    }
    (snip, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Tensor};

    #[derive(Debug)]
    struct TwoLayers {
        a: nn::Linear,
        b: nn::Linear,
    }

    impl ModuleT for TwoLayers {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            xs.apply(&self.a).relu().apply(&self.b)
        }
    }

    #[test]
    fn snip_and_grad_norm_match_a_hand_computation() {
        let config = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let build = |p: &nn::Path| TwoLayers {
            a: nn::linear(p / "a", 2, 2, config),
            b: nn::linear(p / "b", 2, 2, config),
        };
        let x = [[1.0f64, 2.0], [-1.0, 0.5]];
        let y = [1usize, 0];
        let batch = Batch {
            x: Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5]).view([2, 2]),
            y: Tensor::from_slice(&[1i64, 0]),
        };
        let (snip, norm) = snip_and_grad_norm(&build, 7, &batch);
        // The same initial weights, then the gradients by hand: z = W2 relu(W1 x),
        // dL/dz = (softmax(z) - onehot(y)) / B, dW2 = dz h^T, dh = W2^T dz masked by a > 0,
        // dW1 = dh x^T.
        let (vs, _) = fresh(&build, 7, Device::Cpu);
        let get = |name: &str| -> Vec<Vec<f64>> {
            let t = vs.variables()[name].to_kind(Kind::Double);
            (0..2)
                .map(|i| (0..2).map(|j| t.double_value(&[i, j])).collect())
                .collect()
        };
        let (w1, w2) = (get("a.weight"), get("b.weight"));
        let mut g1 = [[0.0; 2]; 2];
        let mut g2 = [[0.0; 2]; 2];
        for (xs, &label) in x.iter().zip(&y) {
            let a: Vec<f64> = (0..2)
                .map(|i| w1[i][0] * xs[0] + w1[i][1] * xs[1])
                .collect();
            let h: Vec<f64> = a.iter().map(|v| v.max(0.0)).collect();
            let z: Vec<f64> = (0..2).map(|i| w2[i][0] * h[0] + w2[i][1] * h[1]).collect();
            let m = z[0].max(z[1]);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let dz: Vec<f64> = (0..2)
                .map(|i| (e[i] / (e[0] + e[1]) - if i == label { 1.0 } else { 0.0 }) / 2.0)
                .collect();
            for i in 0..2 {
                for j in 0..2 {
                    g2[i][j] += dz[i] * h[j];
                }
            }
            let dh: Vec<f64> = (0..2)
                .map(|j| {
                    if a[j] > 0.0 {
                        w2[0][j] * dz[0] + w2[1][j] * dz[1]
                    } else {
                        0.0
                    }
                })
                .collect();
            for i in 0..2 {
                for j in 0..2 {
                    g1[i][j] += dh[i] * xs[j];
                }
            }
        }
        let mut want_snip = 0.0;
        for i in 0..2 {
            for j in 0..2 {
                want_snip += (w1[i][j] * g1[i][j]).abs() + (w2[i][j] * g2[i][j]).abs();
            }
        }
        let frob = |g: &[[f64; 2]; 2]| g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
        let want_norm = frob(&g1) + frob(&g2);
        assert!(
            (snip - want_snip).abs() < 1e-5 * want_snip.max(1e-3),
            "{snip} vs {want_snip}"
        );
        assert!(
            (norm - want_norm).abs() < 1e-5 * want_norm.max(1e-3),
            "{norm} vs {want_norm}"
        );
    }
}
