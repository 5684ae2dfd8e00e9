//! The controller of Zoph & Le (2016) as the half-moon demo builds it (docs/algorithms.md §1):
//! a GRU cell and a linear head over a space's options, sampling one decision at a time and
//! trained by REINFORCE with an entropy bonus. It never names a search space: it only sees the
//! number of options and when a sequence is complete.
//!
//! Plain Rust on the CPU (issue 15): the GRU cell is PyTorch's `nn.GRUCell` (gates r, z, n in
//! that order, `h' = (h - n) z + n`), the backward pass through time is written out by hand,
//! and Adam is `nn/adam.rs`'s (PyTorch's formulas, with bias correction), all over plain
//! `Vec<f32>`. Its initialisation and random draws are those of the libtorch controller it
//! replaced, which the tests keep (`controller_tch.rs`) as the oracle of its probabilities,
//! loss and gradient. The controller is tiny: it runs on the CPU whatever the children's device.

use rand::RngExt;

pub use super::baseline::Baseline;
use crate::config::{ADAM_BETAS, ADAM_EPS};
use crate::space::SearchSpace;

/// A GRU-cell policy over `vocabulary` options, its weights in one flat vector with Adam state.
/// The layout (PyTorch's): GRU weights `w_ih [3h, v]`, `w_hh [3h, h]`, biases `b_ih [3h]`,
/// `b_hh [3h]`, then the head's `w [v, h]` and `b [v]`.
#[derive(Clone, Debug)]
pub struct Controller {
    pub vocabulary: usize,
    pub hidden: usize,
    /// Feed the previous decision back as a one-hot input; false feeds zeros (the reference).
    pub feed_previous: bool,
    params: Vec<f32>,
    adam_m: Vec<f32>,
    adam_v: Vec<f32>,
    adam_step: i32,
    /// Adam's next moments and weights, before they are known to be finite.
    scratch: [Vec<f32>; 3],
}

/// One REINFORCE update's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStats {
    pub loss: f64,
    /// Mean entropy of the decisions' distributions (nats).
    pub entropy: f64,
}

/// Where each block of the flat weights starts.
#[derive(Clone, Copy, Debug)]
struct Layout {
    v: usize,
    h: usize,
    w_ih: usize,
    w_hh: usize,
    b_ih: usize,
    b_hh: usize,
    w_out: usize,
    b_out: usize,
}

impl Layout {
    fn new(v: usize, h: usize) -> Layout {
        let w_ih = 0;
        let w_hh = w_ih + 3 * h * v;
        let b_ih = w_hh + 3 * h * h;
        let b_hh = b_ih + 3 * h;
        let w_out = b_hh + 3 * h;
        let b_out = w_out + v * h;
        Layout {
            v,
            h,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            w_out,
            b_out,
        }
    }
}

/// What one step of the cell keeps for the backward pass.
#[derive(Clone, Debug, Default)]
struct StepCache {
    /// The one-hot input's index (`None`: a zero input).
    input: Option<usize>,
    h_prev: Vec<f32>,
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    /// `W_hn h + b_hn`, which the reset gate scales.
    gh_n: Vec<f32>,
    h: Vec<f32>,
    logits: Vec<f32>,
}

/// PyTorch's sigmoid, `1 / (1 + e^-x)`, in f32.
#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Controller {
    /// PyTorch's default initialisation: every GRU weight and bias uniform in ±1/sqrt(hidden),
    /// the head's weight and bias uniform in ±1/sqrt(hidden); drawn from `rng` (in the flat
    /// order of the weights).
    pub fn new(
        vocabulary: usize,
        hidden: usize,
        feed_previous: bool,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let n = Self::n_params(vocabulary, hidden);
        let bound = 1.0 / (hidden as f64).sqrt();
        let params: Vec<f32> = (0..n)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        Controller {
            vocabulary,
            hidden,
            feed_previous,
            adam_m: vec![0.0; n],
            adam_v: vec![0.0; n],
            adam_step: 0,
            params,
            scratch: Default::default(),
        }
    }

    /// Weights of a controller over `v` options with hidden size `h` (saturating).
    pub fn n_params(v: usize, h: usize) -> usize {
        let (v3h, h3h) = (
            v.saturating_mul(h).saturating_mul(3),
            h.saturating_mul(h).saturating_mul(3),
        );
        v3h.saturating_add(h3h)
            .saturating_add(h.saturating_mul(6))
            .saturating_add(v.saturating_mul(h))
            .saturating_add(v)
    }

    /// The flat weights (for checkpoints and tests).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Weights, Adam moments and Adam step count, for a checkpoint.
    pub fn state(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>, i32) {
        (
            self.params.clone(),
            self.adam_m.clone(),
            self.adam_v.clone(),
            self.adam_step,
        )
    }

    /// Restores what `state` returned; the sizes must fit this controller.
    pub fn restore(
        &mut self,
        params: &[f32],
        m: &[f32],
        v: &[f32],
        step: i32,
    ) -> Result<(), String> {
        let n = Self::n_params(self.vocabulary, self.hidden);
        if params.len() != n || m.len() != n || v.len() != n {
            return Err(format!(
                "the controller has {n} weights, the checkpoint {}",
                params.len()
            ));
        }
        self.params = params.to_vec();
        self.adam_m = m.to_vec();
        self.adam_v = v.to_vec();
        self.adam_step = step;
        Ok(())
    }

    fn layout(&self) -> Layout {
        Layout::new(self.vocabulary, self.hidden)
    }

    /// The input of a step after `previous` (a one-hot of it when feeding decisions back).
    fn input(&self, previous: Option<usize>) -> Option<usize> {
        previous.filter(|_| self.feed_previous)
    }

    /// One step of the GRU cell from `h_prev` with `input`, and the head's logits; fills `c`.
    fn step(&self, input: Option<usize>, h_prev: &[f32], c: &mut StepCache) {
        let Layout {
            v,
            h,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            w_out,
            b_out,
        } = self.layout();
        let p = &self.params;
        c.input = input;
        c.h_prev.clear();
        c.h_prev.extend_from_slice(h_prev);
        for buf in [&mut c.r, &mut c.z, &mut c.n, &mut c.gh_n, &mut c.h] {
            buf.clear();
            buf.resize(h, 0.0);
        }
        // gi = W_ih x + b_ih (x one-hot or zero), gh = W_hh h + b_hh, row by row.
        let gi = |row: usize| -> f32 {
            let w = input.map_or(0.0, |a| p[w_ih + row * v + a]);
            p[b_ih + row] + w
        };
        let gh = |row: usize| -> f32 {
            let w = &p[w_hh + row * h..w_hh + (row + 1) * h];
            let mut sum = 0.0f32;
            for (a, b) in w.iter().zip(h_prev) {
                sum += a * b;
            }
            p[b_hh + row] + sum
        };
        for j in 0..h {
            c.r[j] = sigmoid(gh(j) + gi(j));
            c.z[j] = sigmoid(gh(h + j) + gi(h + j));
            c.gh_n[j] = gh(2 * h + j);
            c.n[j] = (gi(2 * h + j) + c.gh_n[j] * c.r[j]).tanh();
            c.h[j] = (h_prev[j] - c.n[j]) * c.z[j] + c.n[j];
        }
        c.logits.clear();
        c.logits.extend((0..v).map(|o| {
            let w = &p[w_out + o * h..w_out + (o + 1) * h];
            let mut sum = 0.0f32;
            for (a, b) in w.iter().zip(&c.h) {
                sum += a * b;
            }
            p[b_out + o] + sum
        }));
    }

    /// Samples `k` complete decision sequences from the current policy, drawing from `rng`:
    /// one uniform number per decision, sequence by sequence within a step.
    pub fn sample(
        &self,
        space: &dyn SearchSpace,
        k: usize,
        rng: &mut impl rand::Rng,
    ) -> Vec<Vec<usize>> {
        let mut hs = vec![vec![0.0f32; self.hidden]; k];
        let mut sequences: Vec<Vec<usize>> = vec![Vec::new(); k];
        let mut previous: Vec<Option<usize>> = vec![None; k];
        let mut cache = StepCache::default();
        for _ in 0..space.max_decisions() {
            if sequences
                .iter()
                .all(|s| space.is_complete(s) && !s.is_empty())
            {
                break;
            }
            for i in 0..k {
                let seq = &mut sequences[i];
                let active = seq.is_empty() || !space.is_complete(seq);
                if !active {
                    continue; // a finished sequence draws nothing more
                }
                self.step(self.input(previous[i]), &hs[i], &mut cache);
                std::mem::swap(&mut hs[i], &mut cache.h);
                let probs = softmax_f64(&cache.logits);
                // Options past the space's count at this step are never drawn.
                let options = space.options_at(seq).clamp(1, self.vocabulary);
                let a = sample_index(&probs[..options], rng);
                seq.push(a);
                previous[i] = Some(a);
            }
        }
        sequences
    }

    /// The policy's probabilities for the next decision after `prefix` (for tests and reports).
    pub fn next_probabilities(&self, prefix: &[usize]) -> Vec<f64> {
        let mut h = vec![0.0f32; self.hidden];
        let mut cache = StepCache::default();
        let mut previous = None;
        for t in 0..=prefix.len() {
            self.step(self.input(previous), &h, &mut cache);
            std::mem::swap(&mut h, &mut cache.h);
            previous = prefix.get(t).copied();
        }
        softmax_f64(&cache.logits)
    }

    /// The loss of a REINFORCE update (see `reinforce`), its gradient with respect to the flat
    /// weights, and the mean entropy of the decisions; `None` for sequences without decisions.
    fn loss_and_gradient(
        &self,
        space: &dyn SearchSpace,
        sequences: &[Vec<usize>],
        advantages: &[f64],
        beta: f64,
        gamma: f64,
    ) -> Result<Option<(f64, Vec<f32>, f64)>, String> {
        let l = self.layout();
        let (v, h) = (l.v, l.h);
        let k = sequences.len();
        if sequences.iter().all(Vec::is_empty) {
            return Ok(None);
        }
        let mut grad = vec![0.0f64; self.params.len()];
        let mut totals = Vec::with_capacity(k);
        let (mut entropy_sum, mut decisions) = (0.0f64, 0usize);
        let mut caches: Vec<StepCache> = Vec::new();
        let mut dlogits_all: Vec<Vec<f32>> = Vec::new();
        let inv_k = 1.0 / k as f64;
        for (s, &adv) in sequences.iter().zip(advantages) {
            let len = s.len();
            // Forward: the cell over the sequence, each step's masked log-softmax, and the
            // gradient of this sequence's loss with respect to each step's logits.
            caches.resize_with(len, StepCache::default);
            dlogits_all.resize_with(len, Vec::new);
            let mut total = 0.0f32;
            let present = (1.0 / len as f64) as f32;
            let mut h_prev = vec![0.0f32; h];
            for t in 0..len {
                let previous = if t > 0 { Some(s[t - 1]) } else { None };
                self.step(self.input(previous), &h_prev, &mut caches[t]);
                h_prev.clone_from(&caches[t].h);
                // Options the space did not offer at this step get (almost) zero probability,
                // as when they were sampled: their logits are lowered by 1e9.
                let options = space.options_at(&s[..t]);
                let mut logits = caches[t].logits.clone();
                for z in logits.iter_mut().skip(options) {
                    *z += -1e9;
                }
                let log_probs = log_softmax_f32(&logits);
                let a = s[t];
                let Some(&chosen) = log_probs.get(a) else {
                    return Err(format!("decision {a} is not among {v} options"));
                };
                let mut entropy = 0.0f32;
                for &lp in &log_probs {
                    entropy += lp.exp() * lp;
                }
                let entropy = -entropy;
                let weight = (gamma.powi((len - t) as i32) * adv / len as f64) as f32;
                total = total - chosen * weight - entropy * present * beta as f32;
                entropy_sum += entropy as f64;
                decisions += 1;
                // d/dz_j of -w log p_a - c H:  w (p_j - [j = a]) + c p_j (log p_j + H).
                let c = present * beta as f32;
                let d = &mut dlogits_all[t];
                d.clear();
                d.resize(v, 0.0);
                for (j, &lp) in log_probs.iter().enumerate() {
                    let p = lp.exp();
                    let hot = if j == a { 1.0 } else { 0.0 };
                    d[j] = weight * (p - hot) + c * p * (lp + entropy);
                }
            }
            totals.push(total);
            // Backward through time, from the last step.
            let mut dh = vec![0.0f64; h];
            for t in (0..len).rev() {
                let c = &caches[t];
                let dz_out = &dlogits_all[t];
                for (o, &g) in dz_out.iter().enumerate() {
                    let g = g as f64 * inv_k;
                    if g == 0.0 {
                        continue;
                    }
                    grad[l.b_out + o] += g;
                    let row = l.w_out + o * h;
                    for j in 0..h {
                        grad[row + j] += g * c.h[j] as f64;
                        dh[j] += g * self.params[row + j] as f64;
                    }
                }
                // Through h' = (h - n) z + n, n = tanh(gi_n + r gh_n), r and z sigmoids.
                let mut dgi = vec![0.0f64; 3 * h];
                let mut dgh = vec![0.0f64; 3 * h];
                let mut dh_prev = vec![0.0f64; h];
                for j in 0..h {
                    let (r, z, n) = (c.r[j] as f64, c.z[j] as f64, c.n[j] as f64);
                    let dhj = dh[j];
                    let dn = dhj * (1.0 - z);
                    let dz = dhj * (c.h_prev[j] as f64 - n);
                    dh_prev[j] = dhj * z;
                    let da_n = dn * (1.0 - n * n);
                    let dr = da_n * c.gh_n[j] as f64;
                    let da_r = dr * r * (1.0 - r);
                    let da_z = dz * z * (1.0 - z);
                    dgi[j] = da_r;
                    dgh[j] = da_r;
                    dgi[h + j] = da_z;
                    dgh[h + j] = da_z;
                    dgi[2 * h + j] = da_n;
                    dgh[2 * h + j] = da_n * r;
                }
                for row in 0..3 * h {
                    grad[l.b_ih + row] += dgi[row];
                    if let Some(a) = c.input {
                        grad[l.w_ih + row * v + a] += dgi[row];
                    }
                    let g = dgh[row];
                    grad[l.b_hh + row] += g;
                    let base = l.w_hh + row * h;
                    for j in 0..h {
                        grad[base + j] += g * c.h_prev[j] as f64;
                        dh_prev[j] += g * self.params[base + j] as f64;
                    }
                }
                dh = dh_prev;
            }
        }
        // The mean over sequences, in f32 as libtorch's `mean`.
        let loss = totals.iter().sum::<f32>() / k as f32;
        let grad = grad.into_iter().map(|g| g as f32).collect();
        Ok(Some((
            loss as f64,
            grad,
            entropy_sum / decisions.max(1) as f64,
        )))
    }

    /// One REINFORCE update from complete sequences and their advantages (the reward, or the
    /// reward less a baseline). Per sequence of `T` decisions the loss is
    /// `sum_t [-log pi(a_t) * gamma^(T-t) * A - beta * H_t] / T` (the reference's form, its
    /// discount applied from the end); the update uses the mean over sequences.
    ///
    /// Sequences without decisions (a space with a single configuration) teach nothing: the
    /// weights stay. An update whose loss, gradient or resulting weights would not be finite is
    /// not applied and is reported as an error; the controller keeps its last finite state.
    pub fn reinforce(
        &mut self,
        space: &dyn SearchSpace,
        sequences: &[Vec<usize>],
        advantages: &[f64],
        beta: f64,
        settings: &crate::config::Settings,
    ) -> Result<UpdateStats, String> {
        let (gamma, lr, clip) = (settings.gamma, settings.controller_lr, settings.grad_clip);
        if sequences.len() != advantages.len() {
            return Err(format!(
                "{} sequences but {} advantages",
                sequences.len(),
                advantages.len()
            ));
        }
        if sequences.iter().all(Vec::is_empty) {
            return Ok(UpdateStats {
                loss: 0.0,
                entropy: 0.0,
            });
        }
        if let Some(a) = advantages.iter().find(|a| !a.is_finite()) {
            return Err(format!("an advantage is {a}"));
        }
        let Some((loss, mut grads, entropy)) =
            self.loss_and_gradient(space, sequences, advantages, beta, gamma)?
        else {
            return Ok(UpdateStats {
                loss: 0.0,
                entropy: 0.0,
            });
        };
        if !loss.is_finite() {
            return Err(format!("the loss is {loss}"));
        }
        if !grads.iter().all(|g| g.is_finite()) {
            return Err("the gradient is not finite".into());
        }
        if clip > 0.0 {
            // Scale the whole gradient down to norm `clip`, as torch's clip_grad_norm_.
            let norm = grads
                .iter()
                .map(|&g| g as f64 * g as f64)
                .sum::<f64>()
                .sqrt();
            if norm > clip {
                let scale = (clip / (norm + 1e-6)) as f32;
                for g in &mut grads {
                    *g *= scale;
                }
            }
        }
        if !self.adam_try_step(&grads, lr) {
            return Err("the updated weights or Adam moments would not be finite".into());
        }
        Ok(UpdateStats { loss, entropy })
    }

    /// `nn/adam.rs`'s `try_step` on the flat weights: the step is taken only when the new
    /// weights and moments are all finite; otherwise nothing changes and the result is false.
    fn adam_try_step(&mut self, grads: &[f32], lr: f64) -> bool {
        let (b1, b2) = ADAM_BETAS;
        let step = self.adam_step.saturating_add(1);
        let bc1 = 1.0 - b1.powi(step);
        let bc2 = 1.0 - b2.powi(step);
        let (w1, w2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        let eps = (ADAM_EPS * bc2.sqrt()) as f32;
        let scale = (-lr * bc2.sqrt() / bc1) as f32;
        let n = self.params.len();
        let [m, v, p] = &mut self.scratch;
        for buf in [&mut *m, &mut *v, &mut *p] {
            buf.resize(n, 0.0);
        }
        // Branch-free, so the compiler vectorises it; the check comes after.
        let mut finite = true;
        for i in 0..n {
            let g = grads[i];
            let mi = self.adam_m[i] + w1 * (g - self.adam_m[i]);
            let vi = self.adam_v[i] + w2 * (g * g - self.adam_v[i]);
            let pi = self.params[i] + (mi * scale) / (vi.sqrt() + eps);
            m[i] = mi;
            v[i] = vi;
            p[i] = pi;
            finite &= (mi - mi == 0.0) & (vi - vi == 0.0) & (pi - pi == 0.0);
        }
        if !finite {
            return false;
        }
        std::mem::swap(&mut self.adam_m, m);
        std::mem::swap(&mut self.adam_v, v);
        std::mem::swap(&mut self.params, p);
        self.adam_step = step;
        true
    }
}

/// Softmax of f32 logits computed in f64 (as libtorch's `softmax(.., Kind::Double)`).
fn softmax_f64(logits: &[f32]) -> Vec<f64> {
    let max = logits
        .iter()
        .map(|&x| x as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

/// Log-softmax in f32: `z - max - ln(sum e^(z - max))`.
fn log_softmax_f32(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    logits.iter().map(|&x| x - max - log_sum).collect()
}

/// Draws an index with the given probabilities (which sum to 1 up to rounding).
pub fn sample_index(probs: &[f64], rng: &mut impl rand::Rng) -> usize {
    let u: f64 = rng.random::<f64>() * probs.iter().sum::<f64>();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if u < acc {
            return i;
        }
    }
    probs.len() - 1
}

/// Checks that `searches` controllers of `hidden` units over `vocab` tokens stay within
/// `CONTROLLER_WEIGHTS_MAX`; the error names the limit and what to lower.
pub fn check_weights(vocab: usize, hidden: usize, searches: usize) -> Result<(), String> {
    use crate::config::CONTROLLER_WEIGHTS_MAX;
    let weights = Controller::n_params(vocab, hidden).saturating_mul(searches);
    if weights > CONTROLLER_WEIGHTS_MAX {
        return Err(format!(
            "controller_hidden {hidden} with {searches} search(es) needs {weights} controller weights, above the limit of {CONTROLLER_WEIGHTS_MAX} (CONTROLLER_WEIGHTS_MAX in src/config.rs); lower controller_hidden or searches"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_weights_are_limited() {
        use crate::config::{CONTROLLER_HIDDEN_MAX, CONTROLLER_WEIGHTS_MAX};
        // 256 controllers of 4096 units over 10 tokens: 3*10*4096 + 3*4096^2 + ... weights each.
        let one = 3 * 10 * 4096 + 3 * 4096 * 4096 + 6 * 4096 + 10 * 4096 + 10;
        assert_eq!(Controller::n_params(10, 4096), one);
        assert!(256 * one > CONTROLLER_WEIGHTS_MAX);
        assert!(check_weights(10, 4096, 256)
            .unwrap_err()
            .contains("CONTROLLER_WEIGHTS_MAX"));
        assert_eq!(check_weights(10, CONTROLLER_HIDDEN_MAX, 1), Ok(()));
    }
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    /// A space of fixed-length sequences of 3 decisions over 10 options, no shaping.
    struct Fixed;
    impl SearchSpace for Fixed {
        fn vocabulary(&self) -> usize {
            10
        }
        fn max_decisions(&self) -> usize {
            3
        }
        fn is_complete(&self, d: &[usize]) -> bool {
            d.len() >= 3
        }
        fn describe(&self, d: &[usize]) -> String {
            format!("{d:?}")
        }
        fn parse(&self, _: &str) -> Option<Vec<usize>> {
            None
        }
    }

    /// gamma 1, lr 1e-2, no clipping.
    fn plain() -> crate::config::Settings {
        crate::config::Settings {
            gamma: 1.0,
            controller_lr: 1e-2,
            grad_clip: 0.0,
            ..Default::default()
        }
    }

    fn controller(feed_previous: bool) -> Controller {
        Controller::new(10, 64, feed_previous, &mut Pcg64::seed_from_u64(0))
    }

    #[test]
    fn a_rewarded_action_becomes_more_likely() {
        for feed in [false, true] {
            let mut c = controller(feed);
            let before = c.next_probabilities(&[])[3];
            c.reinforce(&Fixed, &[vec![3, 1, 2]], &[1.0], 0.0, &plain())
                .unwrap();
            let after = c.next_probabilities(&[])[3];
            assert!(after > before, "feed_previous {feed}: {before} -> {after}");
            // And a negative reward makes it less likely.
            let mut c = controller(feed);
            c.reinforce(&Fixed, &[vec![3, 1, 2]], &[-1.0], 0.0, &plain())
                .unwrap();
            assert!(c.next_probabilities(&[])[3] < before);
        }
    }

    #[test]
    fn entropy_is_at_most_ln_of_the_vocabulary() {
        let mut c = controller(true);
        let mut rng = Pcg64::seed_from_u64(1);
        for _ in 0..5 {
            let seqs = c.sample(&Fixed, 4, &mut rng);
            let stats = c
                .reinforce(&Fixed, &seqs, &[0.5, 0.1, 0.9, 0.3], 0.01, &plain())
                .unwrap();
            assert!(
                stats.entropy <= (10f64).ln() + 1e-9 && stats.entropy > 0.0,
                "{}",
                stats.entropy
            );
        }
        let p = c.next_probabilities(&[1, 2]);
        let h: f64 = -p.iter().map(|x| x * x.ln()).sum::<f64>();
        assert!(h <= 10f64.ln() + 1e-9);
    }

    #[test]
    fn the_loss_matches_a_hand_computation_at_uniform_policy() {
        // Zero weights make every distribution uniform over 10: log pi = -ln 10 and H = ln 10.
        // One sequence of 3 steps, advantage 0.5, beta 0.1, gamma 1:
        // loss = (3 * (ln 10 * 0.5) - 3 * 0.1 * ln 10) / 3 = 0.4 * ln 10.
        let mut c = controller(true);
        c.params.fill(0.0);
        let stats = c
            .reinforce(&Fixed, &[vec![1, 2, 3]], &[0.5], 0.1, &plain())
            .unwrap();
        assert!(
            (stats.loss - 0.4 * 10f64.ln()).abs() < 1e-5,
            "{}",
            stats.loss
        );
        assert!((stats.entropy - 10f64.ln()).abs() < 1e-5);
    }

    /// A space of one decision with `n` options (n = 1: a single configuration to evaluate).
    struct OneDecision(usize);
    impl SearchSpace for OneDecision {
        fn vocabulary(&self) -> usize {
            self.0
        }
        fn max_decisions(&self) -> usize {
            1
        }
        fn is_complete(&self, d: &[usize]) -> bool {
            !d.is_empty()
        }
        fn describe(&self, d: &[usize]) -> String {
            format!("{d:?}")
        }
        fn parse(&self, _: &str) -> Option<Vec<usize>> {
            None
        }
    }

    #[test]
    fn hidden_size_one_and_single_options_sample_and_learn() {
        // One-column weight matrices (hidden 1, or one option) once lost their second dimension.
        for (options, hidden) in [(1, 1), (1, 64), (3, 1), (10, 1)] {
            let mut rng = Pcg64::seed_from_u64(0);
            let mut c = Controller::new(options, hidden, true, &mut rng);
            let seqs = c.sample(&OneDecision(options), 4, &mut rng);
            assert!(
                seqs.iter().all(|s| s.len() == 1 && s[0] < options),
                "{seqs:?}"
            );
            let stats = c
                .reinforce(
                    &OneDecision(options),
                    &seqs,
                    &[0.5, 0.1, 0.9, 0.3],
                    0.01,
                    &plain(),
                )
                .unwrap();
            assert!(stats.loss.is_finite(), "{options} options, hidden {hidden}");
            let p = c.next_probabilities(&[]);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9 && p.len() == options);
        }
    }

    #[test]
    fn sequences_without_decisions_leave_the_weights_alone() {
        let mut c = controller(true);
        let before = c.state();
        let stats = c
            .reinforce(&Fixed, &[vec![], vec![]], &[1.0, 0.0], 0.1, &plain())
            .unwrap();
        assert_eq!(
            stats,
            UpdateStats {
                loss: 0.0,
                entropy: 0.0
            }
        );
        assert_eq!(c.state(), before);
    }

    #[test]
    fn an_update_that_would_diverge_is_refused_and_changes_nothing() {
        let mut c = controller(true);
        let before = c.state();
        // An advantage near f64's limit overflows f32 in the loss's weights.
        let e = c
            .reinforce(&Fixed, &[vec![1, 2, 3]], &[1e300], 0.0, &plain())
            .unwrap_err();
        assert!(
            e.contains("not finite") || e.contains("inf") || e.contains("NaN"),
            "{e}"
        );
        assert_eq!(c.state(), before);
        let e = c
            .reinforce(&Fixed, &[vec![1, 2, 3]], &[f64::NAN], 0.0, &plain())
            .unwrap_err();
        assert!(e.contains("NaN"), "{e}");
        assert_eq!(c.state(), before);
        // The controller still learns afterwards.
        c.reinforce(&Fixed, &[vec![1, 2, 3]], &[1.0], 0.0, &plain())
            .unwrap();
        assert_ne!(c.state().0, before.0);
    }

    #[test]
    fn sampling_is_seeded_and_respects_the_space() {
        let c = controller(true);
        let a = c.sample(&Fixed, 8, &mut Pcg64::seed_from_u64(4));
        let b = c.sample(&Fixed, 8, &mut Pcg64::seed_from_u64(4));
        assert_eq!(a, b);
        assert!(a.iter().all(|s| s.len() == 3 && s.iter().all(|&x| x < 10)));
        // Different sequences in one batch: the policy is sampled per sequence.
        assert!(a.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn sample_index_follows_the_probabilities() {
        let mut rng = Pcg64::seed_from_u64(9);
        let probs = [0.1, 0.6, 0.3];
        let mut counts = [0usize; 3];
        for _ in 0..20000 {
            counts[sample_index(&probs, &mut rng)] += 1;
        }
        for (c, p) in counts.iter().zip(probs) {
            let f = *c as f64 / 20000.0;
            assert!((f - p).abs() < 0.015, "{f} vs {p}");
        }
    }

    #[test]
    fn baseline_arithmetic_by_hand() {
        let mut b = Baseline::new(true, 0.9, false);
        assert_eq!(b.advantages(&[1.0]), vec![0.0]); // first reward is its own baseline
        let a = b.advantages(&[0.5]);
        assert!((a[0] - (-0.5)).abs() < 1e-12);
        assert!((b.value.unwrap() - (0.9 * 1.0 + 0.1 * 0.5)).abs() < 1e-12);
        let mut off = Baseline::new(false, 0.9, false);
        assert_eq!(off.advantages(&[0.7, 0.2]), vec![0.7, 0.2]);
    }

    #[test]
    fn normalised_advantages_by_hand() {
        let mut b = Baseline::new(true, 0.5, true);
        // First reward: advantage 0, mean 1, variance 0.
        assert_eq!(b.advantages(&[1.0]), vec![0.0]);
        // Second: sd is floored at MIN_REWARD_SD: (0 - 1) / 0.01 = -100; then variance
        // 0.5*0 + 0.5*(0-1)^2 = 0.5 and mean 0.5.
        assert!((b.advantages(&[0.0])[0] - (-100.0)).abs() < 1e-9);
        assert!((b.variance - 0.5).abs() < 1e-12 && (b.value.unwrap() - 0.5).abs() < 1e-12);
        // Third, a batch of two: both against mean 0.5 and sd sqrt(0.5).
        let a = b.advantages(&[1.0, 0.5]);
        assert!((a[0] - 0.5 / 0.5f64.sqrt()).abs() < 1e-12 && a[1].abs() < 1e-12);
    }

    #[test]
    fn a_toy_reward_is_learned_and_kept() {
        // Reward: the share of action 2 in a 3-step sequence over 10 options. The best sequence
        // is [2, 2, 2]; the default preset's REINFORCE must concentrate on it and stay there.
        let s = crate::config::Settings::default();
        let mut c = Controller::new(
            10,
            s.controller_hidden,
            s.feed_previous_action,
            &mut Pcg64::seed_from_u64(0),
        );
        let mut baseline = Baseline::new(s.use_baseline, s.baseline_decay, s.normalise_advantage);
        let mut rng = Pcg64::seed_from_u64(1);
        let mut beta = s.entropy_beta;
        let mut best_probability = Vec::new();
        for step in 0..1500 {
            let seqs = c.sample(&Fixed, 1, &mut rng);
            let rewards: Vec<f64> = seqs
                .iter()
                .map(|q| q.iter().filter(|&&a| a == 2).count() as f64 / 3.0)
                .collect();
            let adv = baseline.advantages(&rewards);
            c.reinforce(&Fixed, &seqs, &adv, beta, &s).unwrap();
            beta = (beta * s.entropy_decay).max(s.entropy_floor);
            if step % 100 == 99 {
                let p = c.next_probabilities(&[])[2]
                    * c.next_probabilities(&[2])[2]
                    * c.next_probabilities(&[2, 2])[2];
                best_probability.push(p);
            }
        }
        let last = *best_probability.last().unwrap();
        assert!(
            last > 0.8,
            "P([2, 2, 2]) = {last}; history {best_probability:?}"
        );
        // It stays: the second half never drops far below the end.
        assert!(
            best_probability[7..].iter().all(|&p| p > 0.6),
            "{best_probability:?}"
        );
    }

    /// A space of 1 to 5 decisions over 6 options, the options on offer varying by step (2 to
    /// 5): sequences end on a 0 or after 5 decisions, so lengths and masks differ.
    struct Shaped;
    impl SearchSpace for Shaped {
        fn vocabulary(&self) -> usize {
            6
        }
        fn max_decisions(&self) -> usize {
            5
        }
        fn options_at(&self, d: &[usize]) -> usize {
            2 + d.len() % 4
        }
        fn is_complete(&self, d: &[usize]) -> bool {
            d.len() >= 5 || d.last() == Some(&0)
        }
        fn describe(&self, d: &[usize]) -> String {
            format!("{d:?}")
        }
        fn parse(&self, _: &str) -> Option<Vec<usize>> {
            None
        }
    }

    use super::super::controller_tch::TchController;

    fn oracle(c: &Controller) -> TchController {
        TchController::from_params(c.vocabulary, c.hidden, c.feed_previous, c.params())
    }

    /// A controller with random weights, larger than the default initialisation so the
    /// policy is far from uniform.
    fn random_controller(v: usize, h: usize, feed: bool, seed: u64) -> Controller {
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut c = Controller::new(v, h, feed, &mut rng);
        for p in &mut c.params {
            *p = rng.random_range(-1.0..1.0);
        }
        c
    }

    /// The oracle of issue 15: the probabilities (and so the log-probabilities) of every
    /// decision equal the libtorch controller's on random weights.
    #[test]
    fn log_probabilities_match_the_libtorch_controller() {
        for (seed, feed) in [(1, true), (2, false), (3, true)] {
            let c = random_controller(6, 17, feed, seed);
            let t = oracle(&c);
            let seqs = c.sample(&Shaped, 16, &mut Pcg64::seed_from_u64(seed));
            for s in &seqs {
                for n in 0..=s.len() {
                    let (a, b) = (c.next_probabilities(&s[..n]), t.next_probabilities(&s[..n]));
                    for (x, y) in a.iter().zip(&b) {
                        assert!(
                            (x.ln() - y.ln()).abs() < 1e-5,
                            "{s:?}[..{n}]: {a:?} vs {b:?}"
                        );
                    }
                }
            }
        }
    }

    /// Same weights, same generator: the same sequences as the libtorch controller's sampling.
    #[test]
    fn sampling_draws_as_the_libtorch_controller() {
        for (seed, feed) in [(4, true), (5, false)] {
            let c = random_controller(6, 9, feed, seed);
            let (mut a, mut b) = (Pcg64::seed_from_u64(seed), Pcg64::seed_from_u64(seed));
            for k in [1, 3, 8] {
                assert_eq!(
                    c.sample(&Shaped, k, &mut a),
                    oracle(&c).sample(&Shaped, k, &mut b)
                );
            }
            assert_eq!(
                a.random::<u64>(),
                b.random::<u64>(),
                "the same number of draws"
            );
        }
    }

    /// The oracle of issue 15: the loss and its gradient by hand (backward through time) equal
    /// libtorch's autograd on random weights, with masks, unequal lengths, a discount and the
    /// entropy bonus.
    #[test]
    fn loss_and_gradient_match_autograd() {
        for (seed, feed, k) in [(6, true, 1), (7, false, 4), (8, true, 7)] {
            let c = random_controller(6, 13, feed, seed);
            let mut rng = Pcg64::seed_from_u64(seed);
            let seqs = c.sample(&Shaped, k, &mut rng);
            let adv: Vec<f64> = (0..k).map(|_| rng.random_range(-2.0..2.0)).collect();
            let (loss, grad, entropy) = c
                .loss_and_gradient(&Shaped, &seqs, &adv, 0.05, 0.9)
                .unwrap()
                .unwrap();
            let (l2, g2, e2) = oracle(&c).loss_and_gradient(&Shaped, &seqs, &adv, 0.05, 0.9);
            assert!(
                (loss - l2).abs() <= 1e-5 * l2.abs().max(1.0),
                "{loss} vs {l2}"
            );
            assert!((entropy - e2).abs() <= 1e-5, "{entropy} vs {e2}");
            let scale = g2.iter().fold(0.0f32, |m, g| m.max(g.abs()));
            assert!(scale > 1e-3, "a gradient to compare");
            for (i, (a, b)) in grad.iter().zip(&g2).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * scale,
                    "{seqs:?}, weight {i}: {a} vs {b} (largest {scale})"
                );
            }
        }
    }

    /// The gradient against central finite differences of the loss, along a random direction
    /// within each block of weights (GRU input, recurrent, biases, head).
    #[test]
    fn gradient_matches_finite_differences() {
        let c = random_controller(6, 11, true, 9);
        let mut rng = Pcg64::seed_from_u64(9);
        let seqs = c.sample(&Shaped, 5, &mut rng);
        let adv = [0.7, -1.1, 0.4, 1.5, -0.3];
        let loss = |c: &Controller| {
            c.loss_and_gradient(&Shaped, &seqs, &adv, 0.1, 0.8)
                .unwrap()
                .unwrap()
        };
        let (_, grad, _) = loss(&c);
        let l = c.layout();
        let blocks = [
            (l.w_ih, l.w_hh),
            (l.w_hh, l.b_ih),
            (l.b_ih, l.b_hh),
            (l.b_hh, l.w_out),
            (l.w_out, l.b_out),
            (l.b_out, c.params.len()),
        ];
        for (start, end) in blocks {
            let d: Vec<f32> = (start..end).map(|_| rng.random_range(-1.0..1.0)).collect();
            let along: f64 = d
                .iter()
                .zip(&grad[start..end])
                .map(|(&d, &g)| d as f64 * g as f64)
                .sum();
            let eps = 1e-2f32;
            let moved = |sign: f32| {
                let mut m = c.clone();
                for (p, &d) in m.params[start..end].iter_mut().zip(&d) {
                    *p += sign * eps * d;
                }
                loss(&m).0
            };
            let numeric = (moved(1.0) - moved(-1.0)) / (2.0 * eps as f64);
            assert!(
                (numeric - along).abs() <= 2e-3 * along.abs().max(0.05),
                "weights {start}..{end}: numeric {numeric}, by hand {along}"
            );
        }
    }

    /// Whole updates (clipping, Adam) and sampling in turn, 30 times: the weights stay within
    /// 1e-5 of the libtorch controller's, and the sequences drawn are the same.
    #[test]
    fn updates_follow_the_libtorch_controller() {
        let settings = crate::config::Settings {
            gamma: 0.95,
            grad_clip: 0.5,
            ..Default::default()
        };
        let mut c = random_controller(6, 16, true, 10);
        let mut t = oracle(&c);
        let (mut a, mut b) = (Pcg64::seed_from_u64(10), Pcg64::seed_from_u64(10));
        for step in 0..30 {
            let seqs = c.sample(&Shaped, 3, &mut a);
            assert_eq!(seqs, t.sample(&Shaped, 3, &mut b), "update {step}");
            let adv: Vec<f64> = seqs.iter().map(|s| s.len() as f64 / 5.0 - 0.5).collect();
            let ours = c.reinforce(&Shaped, &seqs, &adv, 0.01, &settings).unwrap();
            let theirs = t.reinforce(&Shaped, &seqs, &adv, 0.01, &settings).unwrap();
            assert!((ours.loss - theirs.loss).abs() <= 1e-5 * theirs.loss.abs().max(1.0));
            for (x, y) in c.params().iter().zip(t.params()) {
                assert!((x - y).abs() <= 1e-5, "update {step}: {x} vs {y}");
            }
        }
    }
}
