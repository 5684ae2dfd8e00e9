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

    /// The same step, taken only when the new weights and moments are all finite; otherwise
    /// nothing changes and the result is false (a diverged update is never applied).
    pub fn try_step(&mut self, params: &mut Tensor, grads: &Tensor, lr: f64) -> bool {
        let _guard = tch::no_grad_guard();
        let (b1, b2) = ADAM_BETAS;
        let step = self.step.saturating_add(1);
        let bc1 = 1.0 - b1.powi(step);
        let bc2 = 1.0 - b2.powi(step);
        let m = self.m.lerp(grads, 1.0 - b1);
        let v = self.v.lerp(&grads.square(), 1.0 - b2);
        let mut denom = v.sqrt();
        let _ = denom.g_add_scalar_(ADAM_EPS * bc2.sqrt());
        let update = &m * (-lr * bc2.sqrt() / bc1);
        let new = params.addcdiv(&update, &denom);
        if !(all_finite(&m) && all_finite(&v) && all_finite(&new)) {
            return false;
        }
        self.m = m;
        self.v = v;
        self.step = step;
        params.copy_(&new);
        true
    }
}

/// Whether every element of `t` is finite (no NaN, no infinity).
pub fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) != 0
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

    #[test]
    fn try_step_takes_the_same_step_or_none() {
        let g = Tensor::from_slice(&[0.5f32, -1.0]);
        let (mut p, mut q) = (
            Tensor::from_slice(&[1.0f32, -2.0]),
            Tensor::from_slice(&[1.0f32, -2.0]),
        );
        let (mut a, mut b) = (Adam::new(&p), Adam::new(&q));
        for _ in 0..3 {
            a.step(&mut p, &g, 0.1);
            assert!(b.try_step(&mut q, &g, 0.1));
        }
        assert_eq!(
            Vec::<f32>::try_from(&p).unwrap(),
            Vec::<f32>::try_from(&q).unwrap()
        );
        assert_eq!((a.step, b.step), (3, 3));
        // A gradient whose square overflows f32 would make v infinite: refused, nothing moves.
        let before = Vec::<f32>::try_from(&q).unwrap();
        let huge = Tensor::from_slice(&[1e30f32, f32::NAN]);
        assert!(!b.try_step(&mut q, &huge, 0.1));
        assert_eq!(Vec::<f32>::try_from(&q).unwrap(), before);
        assert_eq!(b.step, 3);
        assert!(all_finite(&b.v) && all_finite(&b.m));
    }
}
