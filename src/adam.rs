//! Adam (Kingma & Ba 2015) as PyTorch computes it, without weight decay, on one flat tensor:
//! a handful of tensor operations per step whatever the network, and a state we own and save.

use tch::Tensor;

use crate::config::{ADAM_BETAS, ADAM_EPS};

/// Adam's moments and step count for one flat parameter tensor.
pub struct Adam {
    pub m: Tensor,
    pub v: Tensor,
    pub step: i32,
}

impl Adam {
    /// Zero moments shaped like `params`.
    pub fn new(params: &Tensor) -> Self {
        Adam {
            m: params.zeros_like(),
            v: params.zeros_like(),
            step: 0,
        }
    }

    /// `params -= lr * m_hat / (sqrt(v_hat) + eps)`, in place, autograd off.
    pub fn step(&mut self, params: &mut Tensor, grads: &Tensor, lr: f64) {
        let _guard = tch::no_grad_guard();
        let (b1, b2) = ADAM_BETAS;
        self.step += 1;
        let bc1 = 1.0 - b1.powi(self.step);
        let bc2 = 1.0 - b2.powi(self.step);
        let _ = self.m.lerp_(grads, 1.0 - b1);
        let _ = self.v.lerp_(&grads.square(), 1.0 - b2);
        // lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), with sqrt(bc2) moved into the numerator.
        let mut denom = self.v.sqrt();
        let _ = denom.g_add_scalar_(ADAM_EPS * bc2.sqrt());
        let update = &self.m * (-lr * bc2.sqrt() / bc1);
        let _ = params.addcdiv_(&update, &denom);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computation_over_two_steps() {
        let mut p = Tensor::from_slice(&[1.0f32, -2.0]);
        let mut adam = Adam::new(&p);
        let g1 = Tensor::from_slice(&[0.5f32, -1.0]);
        let g2 = Tensor::from_slice(&[-0.5f32, 2.0]);
        adam.step(&mut p, &g1, 0.1);
        adam.step(&mut p, &g2, 0.1);
        // By hand, PyTorch's formulas for element 0: step 1 has m_hat = g, v_hat = g^2, so it moves
        // by lr. Step 2: m2 = .9*.05 + .1*(-.5) = -.005, v2 = .999*.00025 + .001*.25 = .00049975.
        let expect0 = {
            let step1 = 0.1 * 1.0; // first step moves by lr * sign(g)
            let m_hat: f64 = -0.005 / 0.19;
            let v_hat: f64 = 0.00049975 / (1.0 - 0.999f64.powi(2));
            1.0 - step1 - 0.1 * m_hat / (v_hat.sqrt() + 1e-8)
        };
        let got = p.double_value(&[0]);
        assert!((got - expect0).abs() < 1e-5, "got {got}, want {expect0}");
        assert_eq!(adam.step, 2);
    }
}
