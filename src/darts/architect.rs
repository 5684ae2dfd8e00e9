//! The architect of DARTS (Liu, Simonyan & Yang 2019, section 2.3; Katib's trial does the
//! same): the gradient of the validation loss in the alphas, of first order (at the current
//! weights) or second order (at the unrolled weights `w' = w - xi (momentum term + grad_w
//! L_train + weight decay w)`, with the Hessian-vector product by central finite differences,
//! step `eps = 0.01 / ||grad_w' L_val||`); and the optimisers written out so their state can
//! be checkpointed: SGD with momentum for the weights, Adam for the alphas.

use tch::{Kind, Tensor};

use super::config::{ALPHA_BETAS, ALPHA_EPS, CLIP_EPS};
use super::supernet::{flatten, views, Supernet};

/// A mini-batch: images and labels.
pub struct Batch<'a> {
    pub x: &'a Tensor,
    pub y: &'a Tensor,
}

/// The first-order alpha gradient: grad_alpha L_val(w, alpha).
pub fn first_order(net: &Supernet, w: &[Tensor], alphas: &[Tensor], val: &Batch) -> Vec<Tensor> {
    let loss = net.loss(w, alphas, val.x, val.y);
    Tensor::run_backward(&[loss], alphas, false, false)
}

/// How the unrolled step moves the weights besides the gradient: the optimiser's momentum
/// term (momentum x buffer, per parameter) and its weight decay.
pub struct Unroll<'a> {
    pub xi: f64,
    pub momentum_term: &'a [Tensor],
    pub weight_decay: f64,
    /// The finite-difference step is this over `||grad_w' L_val||` (HESSIAN_EPS, 0.01, in
    /// the paper and Katib).
    pub hessian_eps: f64,
}

/// The second-order alpha gradient:
/// grad_alpha L_val(w', alpha) - xi * (grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)) / (2 eps),
/// with `w' = w - xi (m + grad_w L_train(w, alpha) + wd w)`, `w± = w ± eps grad_w' L_val(w', alpha)`.
pub fn second_order(
    net: &Supernet,
    w: &[Tensor],
    alphas: &[Tensor],
    train: &Batch,
    val: &Batch,
    unroll: &Unroll,
) -> Vec<Tensor> {
    // Every weight-sized quantity is one flat vector: the unrolled step and the shifts are
    // a few operations, not a few per parameter.
    let shapes = net.param_shapes();
    // 1. The unrolled weights, as new leaves.
    let loss = net.loss(w, alphas, train.x, train.y);
    let g = Tensor::run_backward(&[loss], w, false, false);
    let w_flat = {
        let _guard = tch::no_grad_guard();
        flatten(w)
    };
    let unrolled = {
        let _guard = tch::no_grad_guard();
        let m = flatten(unroll.momentum_term);
        &w_flat - (m + flatten(&g) + &w_flat * unroll.weight_decay) * unroll.xi
    };
    let unrolled: Vec<Tensor> = views(&unrolled, &shapes)
        .into_iter()
        .map(|t| t.detach().set_requires_grad(true))
        .collect();
    // 2. The validation loss there, differentiated in the alphas and in w'.
    let loss = net.loss(&unrolled, alphas, val.x, val.y);
    let mut inputs: Vec<&Tensor> = alphas.iter().collect();
    inputs.extend(unrolled.iter());
    let mut grads = Tensor::run_backward(&[loss], &inputs, false, false);
    let dw = {
        let _guard = tch::no_grad_guard();
        flatten(&grads.split_off(alphas.len()))
    };
    let dalpha = grads;
    // 3. The Hessian-vector product by central differences.
    let hessian = hessian_vector(net, &w_flat, alphas, train, &dw, unroll.hessian_eps);
    let _guard = tch::no_grad_guard();
    dalpha
        .iter()
        .zip(&hessian)
        .map(|(d, h)| d - h * unroll.xi)
        .collect()
}

/// (grad_alpha L_train(w + eps v, alpha) - grad_alpha L_train(w - eps v, alpha)) / (2 eps),
/// `eps = scale / ||v||`: the product of the mixed second derivative with `v`; `w` and `v`
/// are flat vectors of the network's parameters.
pub fn hessian_vector(
    net: &Supernet,
    w: &Tensor,
    alphas: &[Tensor],
    train: &Batch,
    v: &Tensor,
    scale: f64,
) -> Vec<Tensor> {
    let shapes = net.param_shapes();
    let norm = global_norm(std::slice::from_ref(v));
    let eps = scale / norm.max(f64::MIN_POSITIVE);
    let shifted = |sign: f64| -> Vec<Tensor> {
        let moved = {
            let _guard = tch::no_grad_guard();
            w + v * (sign * eps)
        };
        let loss = net.loss(&views(&moved, &shapes), alphas, train.x, train.y);
        Tensor::run_backward(&[loss], alphas, false, false)
    };
    let plus = shifted(1.0);
    let minus = shifted(-1.0);
    let _guard = tch::no_grad_guard();
    plus.iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * eps))
        .collect()
}

/// The global L2 norm of a list of tensors.
pub fn global_norm(ts: &[Tensor]) -> f64 {
    let _guard = tch::no_grad_guard();
    ts.iter()
        .map(|t| {
            t.to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .double_value(&[])
        })
        .sum::<f64>()
        .sqrt()
}

/// Scales `grads` so their global norm is at most `max_norm` (PyTorch's clip_grad_norm_:
/// factor max_norm / (norm + 1e-6) when below 1); returns the norm before.
pub fn clip(grads: &mut [Tensor], max_norm: f64) -> f64 {
    let norm = global_norm(grads);
    let coef = max_norm / (norm + CLIP_EPS);
    if max_norm > 0.0 && coef < 1.0 {
        for g in grads.iter_mut() {
            *g = &*g * coef;
        }
    }
    norm
}

/// SGD with momentum and weight decay as PyTorch's (dampening 0, not Nesterov):
/// `buf = momentum buf + (g + wd w)`, `w -= lr buf`. The search steps the supernet's flat
/// parameter vector with its flat gradient, so the whole step is a few operations.
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// One buffer per parameter, zero before the first step.
    pub buffers: Vec<Tensor>,
}

impl Sgd {
    pub fn new(params: &[Tensor], momentum: f64, weight_decay: f64) -> Sgd {
        Sgd {
            momentum,
            weight_decay,
            buffers: params.iter().map(|p| p.zeros_like()).collect(),
        }
    }

    /// `momentum x buffer` per parameter: what the next step adds besides the gradient.
    pub fn momentum_terms(&self) -> Vec<Tensor> {
        let _guard = tch::no_grad_guard();
        self.buffers.iter().map(|b| b * self.momentum).collect()
    }

    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64) {
        let _guard = tch::no_grad_guard();
        for ((p, g), buf) in params.iter().zip(grads).zip(self.buffers.iter_mut()) {
            let d = g + p * self.weight_decay;
            let _ = buf.g_mul_scalar_(self.momentum);
            let _ = buf.g_add_(&d);
            let mut p = p.shallow_clone();
            let _ = p.g_sub_(&(&*buf * lr));
        }
    }
}

/// Adam as PyTorch's, with L2 weight decay added to the gradient; betas (0.5, 0.999) for
/// the alphas.
pub struct Adam {
    pub weight_decay: f64,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub steps: u64,
}

impl Adam {
    pub fn new(params: &[Tensor], weight_decay: f64) -> Adam {
        Adam {
            weight_decay,
            m: params.iter().map(|p| p.zeros_like()).collect(),
            v: params.iter().map(|p| p.zeros_like()).collect(),
            steps: 0,
        }
    }

    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let (b1, b2) = ALPHA_BETAS;
        let c1 = 1.0 - b1.powi(self.steps as i32);
        let c2 = 1.0 - b2.powi(self.steps as i32);
        for (((p, g), m), v) in params
            .iter()
            .zip(grads)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            let g = g + p * self.weight_decay;
            *m = &*m * b1 + &g * (1.0 - b1);
            *v = &*v * b2 + g.square() * (1.0 - b2);
            let denom = v.sqrt() / c2.sqrt() + ALPHA_EPS;
            let mut p = p.shallow_clone();
            let _ = p.g_sub_(&(&*m / denom * (lr / c1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::darts::settings::DartsSettings;
    use tch::Device;

    /// A tiny supernet (normal and reduction cells, two nodes, every primitive) in double
    /// precision, with a train and a validation batch of random images.
    struct Tiny {
        net: Supernet,
        w: Vec<Tensor>,
        alphas: Vec<Tensor>,
        xt: Tensor,
        yt: Tensor,
        xv: Tensor,
        yv: Tensor,
        momentum_term: Vec<Tensor>,
    }

    /// Images per batch.
    const N: i64 = 8;

    /// The finite-difference step of the tests' Hessian-vector products, over the vector's
    /// norm. Not the paper's 0.01: a ReLU network is piecewise smooth, and a step of norm 0.01
    /// crosses the kinks of some of its many ReLU and max-pool units, where the exact Hessian
    /// (almost everywhere) does not see them; measured on this net, the paper's step is off the
    /// exact gradient by tens of percent while 1e-6 agrees to 1e-9. So the tests check the
    /// algorithm, and the search keeps the paper's step (docs/algorithms.md §6).
    const TEST_HESSIAN_EPS: f64 = 1e-6;

    fn tiny() -> Tiny {
        let s = DartsSettings {
            num_layers: 2,
            init_channels: 2,
            num_nodes: 2,
            stem_multiplier: 1,
            ..DartsSettings::default()
        };
        let net = Supernet::new(&s, 1, 3, 5, Device::Cpu);
        let double = |t: &Tensor| t.detach().to_kind(Kind::Double).set_requires_grad(true);
        let w: Vec<Tensor> = net.params.iter().map(double).collect();
        // Alphas away from uniform, so every primitive's weight differs.
        let alphas: Vec<Tensor> = net
            .alphas
            .iter()
            .map(|a| {
                (a.detach().to_kind(Kind::Double) * 300.0)
                    .detach()
                    .set_requires_grad(true)
            })
            .collect();
        let opts = (Kind::Double, Device::Cpu);
        let momentum_term = w.iter().map(|p| p.randn_like() * 0.01).collect();
        Tiny {
            w,
            alphas,
            xt: Tensor::randn([N, 1, 6, 6], opts),
            yt: Tensor::arange(N, (Kind::Int64, Device::Cpu)).remainder(3),
            xv: Tensor::randn([N, 1, 6, 6], opts),
            yv: (Tensor::arange(N, (Kind::Int64, Device::Cpu)) * 7 + 1).remainder(3),
            net,
            momentum_term,
        }
    }

    fn flat(ts: &[Tensor]) -> Tensor {
        Tensor::cat(&ts.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0)
    }

    fn relative(a: &Tensor, exact: &Tensor) -> f64 {
        (a - exact).norm().double_value(&[]) / exact.norm().double_value(&[])
    }

    /// grad_alpha of L_val(w - xi (m + grad_w L_train(w, alpha) + wd w), alpha) by double
    /// backpropagation through the unrolled step: the exact second-order gradient.
    fn exact(t: &Tiny, xi: f64, wd: f64) -> Vec<Tensor> {
        let loss = t.net.loss(&t.w, &t.alphas, &t.xt, &t.yt);
        let g = Tensor::run_backward(&[loss], &t.w, true, true);
        let unrolled: Vec<Tensor> =
            t.w.iter()
                .zip(&g)
                .zip(&t.momentum_term)
                .map(|((w, g), m)| w - (m + g + w * wd) * xi)
                .collect();
        let loss = t.net.loss(&unrolled, &t.alphas, &t.xv, &t.yv);
        Tensor::run_backward(&[loss], &t.alphas, false, false)
    }

    #[test]
    fn the_second_order_gradient_matches_double_backpropagation() {
        let t = tiny();
        let (xi, wd) = (0.5, 3e-4);
        let unroll = Unroll {
            xi,
            momentum_term: &t.momentum_term,
            weight_decay: wd,
            hessian_eps: TEST_HESSIAN_EPS,
        };
        let train = Batch { x: &t.xt, y: &t.yt };
        let val = Batch { x: &t.xv, y: &t.yv };
        let approx = flat(&second_order(
            &t.net, &t.w, &t.alphas, &train, &val, &unroll,
        ));
        let exact = flat(&exact(&t, xi, wd));
        let err = relative(&approx, &exact);
        assert!(err < 1e-3, "relative error {err}");
        // The Hessian term matters here: the first-order gradient is far from the exact one.
        let first = flat(&first_order(&t.net, &t.w, &t.alphas, &val));
        assert!(relative(&first, &exact) > 100.0 * err.max(1e-9));
    }

    /// Central differences of `f` in each coordinate of the alphas listed in `coords`.
    fn finite_differences(
        t: &Tiny,
        coords: &[(usize, i64, i64)],
        f: &dyn Fn(&[Tensor]) -> f64,
    ) -> Vec<f64> {
        let h = 1e-5;
        coords
            .iter()
            .map(|&(k, r, c)| {
                let shifted = |d: f64| {
                    let a: Vec<Tensor> = t.alphas.iter().map(|a| a.detach().copy()).collect();
                    let _ = a[k].get(r).get(c).g_add_scalar_(d);
                    f(&a)
                };
                (shifted(h) - shifted(-h)) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn both_orders_match_central_differences_in_alpha() {
        let t = tiny();
        let (xi, wd) = (0.5, 3e-4);
        let coords = [
            (0, 0, 0),
            (0, 2, 3),
            (0, 4, 6),
            (1, 1, 5),
            (1, 3, 1),
            (1, 4, 4),
        ];
        let train = Batch { x: &t.xt, y: &t.yt };
        let val = Batch { x: &t.xv, y: &t.yv };
        let pick = |g: &[Tensor]| -> Vec<f64> {
            coords
                .iter()
                .map(|&(k, r, c)| g[k].double_value(&[r, c]))
                .collect()
        };
        // First order: L_val(w, alpha).
        let first = pick(&first_order(&t.net, &t.w, &t.alphas, &val));
        let fd = finite_differences(&t, &coords, &|a| {
            t.net.loss(&t.w, a, &t.xv, &t.yv).double_value(&[])
        });
        // Second order: L_val(w'(alpha), alpha), w' from the gradient at this alpha.
        let unroll = Unroll {
            xi,
            momentum_term: &t.momentum_term,
            weight_decay: wd,
            hessian_eps: TEST_HESSIAN_EPS,
        };
        let second = pick(&second_order(
            &t.net, &t.w, &t.alphas, &train, &val, &unroll,
        ));
        let fd2 = finite_differences(&t, &coords, &|a| {
            let loss = t.net.loss(&t.w, a, &t.xt, &t.yt);
            let g = Tensor::run_backward(&[loss], &t.w, false, false);
            let unrolled: Vec<Tensor> =
                t.w.iter()
                    .zip(&g)
                    .zip(&t.momentum_term)
                    .map(|((w, g), m)| (w - (m + g + w * wd) * xi).detach())
                    .collect();
            t.net.loss(&unrolled, a, &t.xv, &t.yv).double_value(&[])
        });
        let rel = |a: &[f64], b: &[f64]| {
            let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
            let den: f64 = b.iter().map(|y| y * y).sum();
            (num / den).sqrt()
        };
        assert!(rel(&first, &fd) < 1e-4, "first {first:?} fd {fd:?}");
        assert!(rel(&second, &fd2) < 1e-3, "second {second:?} fd {fd2:?}");
        assert!(rel(&first, &fd2) > 1e-2, "the orders differ here");
    }

    #[test]
    fn the_optimisers_step_as_pytorch_by_hand() {
        let p = Tensor::from_slice(&[1.0f64, -2.0]);
        let g = Tensor::from_slice(&[0.5f64, 0.25]);
        let mut sgd = Sgd::new(&[p.shallow_clone()], 0.9, 0.1);
        sgd.step(&[p.shallow_clone()], &[g.shallow_clone()], 0.1);
        // buf = g + 0.1 p = (0.6, 0.05); p = p - 0.1 buf.
        assert!((p.double_value(&[0]) - 0.94).abs() < 1e-12);
        assert!((p.double_value(&[1]) + 2.005).abs() < 1e-12);
        sgd.step(&[p.shallow_clone()], &[g.shallow_clone()], 0.1);
        // buf = 0.9 (0.6) + 0.5 + 0.094 = 1.134.
        assert!((p.double_value(&[0]) - (0.94 - 0.1134)).abs() < 1e-12);
        let a = Tensor::from_slice(&[1.0f64]);
        let mut adam = Adam::new(&[a.shallow_clone()], 0.0);
        adam.step(&[a.shallow_clone()], &[Tensor::from_slice(&[2.0f64])], 0.01);
        // The first Adam step moves by lr (sign of the gradient), up to eps.
        assert!((a.double_value(&[0]) - 0.99).abs() < 1e-7);
        let mut grads = vec![Tensor::from_slice(&[3.0f64]), Tensor::from_slice(&[4.0f64])];
        assert_eq!(clip(&mut grads, 1.0), 5.0);
        assert!((global_norm(&grads) - 1.0).abs() < 1e-6);
    }
}
