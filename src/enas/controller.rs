//! The ENAS controller (Pham et al. 2018), as Kubeflow Katib's ENAS suggestion service builds
//! it: a one-layer LSTM (no bias, gates i, f, o, g from `[x, h] W`) that, for every layer,
//! emits operation logits from its state, feeds the chosen operation's embedding back, and
//! then decides each skip connection by attention, `q_j = v^T tanh(W1 h_j + W2 h_i)`, with
//! logits `[-q_j, q_j]`; every logit passes through `c tanh(logits / T)`. The loss is
//! REINFORCE with an exponential moving-average baseline, `sum(-log p) (R - b)`, plus the skip
//! penalty `w_skip * mean_layers KL(sigmoid(logits) || [1 - t, t])`; the reward carries the
//! sampled entropy `sum p(a) (-log p(a))` times the entropy weight, as Katib's does. Adam is
//! written out so that its moments can be checkpointed. Randomness comes from the caller's
//! generator, so a run repeats exactly.

use anyhow::{Context, Result};
use rand::RngExt;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::nn::{self, VarStore};
use tch::{Device, Kind, Tensor};

use super::config::{EnasSettings, CONTROLLER_INIT_RANGE};
use super::space::Arch;
use crate::config::{ADAM_BETAS, ADAM_EPS};

/// One architecture with what the controller computed for it.
pub struct Sample {
    pub arch: Arch,
    /// Sum over decisions of -log p(decision), with gradient.
    pub neg_log_prob: Tensor,
    /// Sum over decisions of p(a) (-log p(a)) of the decision taken (Katib's sampled entropy).
    pub entropy: f64,
    /// Mean over layers 2.. of the skip KL, with gradient (0 for a single layer).
    pub skip_penalty: Tensor,
    /// Skip connections chosen.
    pub skips: usize,
}

impl Sample {
    /// Skips over the n (n - 1) / 2 possible ones (Katib's skip rate).
    pub fn skip_rate(&self) -> f64 {
        let n = self.arch.len();
        let possible = n * n.saturating_sub(1) / 2;
        if possible == 0 {
            0.0
        } else {
            self.skips as f64 / possible as f64
        }
    }
}

/// What one controller update did.
#[derive(Clone, Debug, Serialize)]
pub struct Update {
    pub reward: f64,
    pub baseline: f64,
    pub loss: f64,
    pub entropy: f64,
    pub skip_rate: f64,
}

/// The controller's state besides its weights (checkpointed as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerState {
    pub baseline: f64,
    pub adam_steps: u64,
    pub updates: u64,
}

pub struct Controller {
    pub vs: VarStore,
    w_lstm: Tensor,
    g_emb: Tensor,
    w_emb: Tensor,
    w_soft: Tensor,
    attn_w1: Tensor,
    attn_w2: Tensor,
    attn_v: Tensor,
    num_layers: usize,
    settings: EnasSettings,
    /// Adam's first and second moments, in `params()` order.
    moments: Vec<(Tensor, Tensor)>,
    pub state: ControllerState,
}

fn lstm(x: &Tensor, c: &Tensor, h: &Tensor, w: &Tensor) -> (Tensor, Tensor) {
    let ifog = Tensor::cat(&[x, h], 1).matmul(w);
    let parts = ifog.chunk(4, 1);
    let (i, f, o, g) = (
        parts[0].sigmoid(),
        parts[1].sigmoid(),
        parts[2].sigmoid(),
        parts[3].tanh(),
    );
    let next_c = &i * &g + &f * c;
    let next_h = &o * next_c.tanh();
    (next_c, next_h)
}

/// Draws an index with probabilities `p` (summing to 1) from `rng`.
fn draw(p: &[f64], rng: &mut Pcg64) -> usize {
    let u: f64 = rng.random::<f64>() * p.iter().sum::<f64>();
    let mut acc = 0.0;
    for (i, &q) in p.iter().enumerate() {
        acc += q;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}

impl Controller {
    /// Weights uniform in +-CONTROLLER_INIT_RANGE from `rng` (not libtorch's generator).
    pub fn new(
        num_layers: usize,
        num_ops: usize,
        settings: &EnasSettings,
        rng: &mut Pcg64,
    ) -> Controller {
        let h = settings.controller_hidden_size as i64;
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let r = CONTROLLER_INIT_RANGE;
        let mut var = |name: &str, shape: &[i64]| {
            let n: i64 = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * r) as f32)
                .collect();
            let t = root.var(name, shape, nn::Init::Const(0.0));
            let _g = tch::no_grad_guard();
            let mut t2 = t.shallow_clone();
            t2.copy_(&Tensor::from_slice(&values).view(shape));
            t
        };
        let w_lstm = var("w_lstm", &[2 * h, 4 * h]);
        let g_emb = var("g_emb", &[1, h]);
        let w_emb = var("w_emb", &[num_ops as i64, h]);
        let w_soft = var("w_soft", &[h, num_ops as i64]);
        let attn_w1 = var("attn_w1", &[h, h]);
        let attn_w2 = var("attn_w2", &[h, h]);
        let attn_v = var("attn_v", &[h, 1]);
        let mut c = Controller {
            vs,
            w_lstm,
            g_emb,
            w_emb,
            w_soft,
            attn_w1,
            attn_w2,
            attn_v,
            num_layers,
            settings: settings.clone(),
            moments: Vec::new(),
            state: ControllerState {
                baseline: 0.0,
                adam_steps: 0,
                updates: 0,
            },
        };
        c.moments = c
            .params()
            .iter()
            .map(|p| (p.zeros_like(), p.zeros_like()))
            .collect();
        c
    }

    pub fn params(&self) -> Vec<Tensor> {
        [
            &self.w_lstm,
            &self.g_emb,
            &self.w_emb,
            &self.w_soft,
            &self.attn_w1,
            &self.attn_w2,
            &self.attn_v,
        ]
        .iter()
        .map(|t| t.shallow_clone())
        .collect()
    }

    fn squash(&self, logits: Tensor) -> Tensor {
        let s = &self.settings;
        (logits / s.controller_temperature).tanh() * s.controller_tanh_const
    }

    /// Samples an architecture (`given` None) or scores `given`, with gradients.
    pub fn run(&self, given: Option<&Arch>, rng: &mut Pcg64) -> Sample {
        let h = self.settings.controller_hidden_size as i64;
        let zeros = Tensor::zeros([1, h], (Kind::Float, Device::Cpu));
        let (mut c, mut hs) = (zeros.shallow_clone(), zeros);
        let mut inputs = self.g_emb.shallow_clone();
        let mut all_h: Vec<Tensor> = Vec::new();
        let mut all_h_w: Vec<Tensor> = Vec::new();
        let mut arch: Arch = Vec::new();
        let mut neg_log_prob: Vec<Tensor> = Vec::new();
        let mut entropy = 0.0;
        let mut kls: Vec<Tensor> = Vec::new();
        let mut skips = 0usize;
        let t = self.settings.controller_skip_target;
        let targets = Tensor::from_slice(&[(1.0 - t) as f32, t as f32]).view([1, 2]);
        for layer in 0..self.num_layers {
            let (nc, nh) = lstm(&inputs, &c, &hs, &self.w_lstm);
            (c, hs) = (nc, nh);
            let logits = self.squash(hs.matmul(&self.w_soft));
            let log_p = logits.log_softmax(1, Kind::Float);
            let op = match given {
                Some(a) => a[layer][0] as usize,
                None => {
                    let p =
                        Vec::<f64>::try_from(log_p.detach().exp().to_kind(Kind::Double).view([-1]))
                            .unwrap_or_default();
                    draw(&p, rng)
                }
            };
            let ce = -log_p.get(0).get(op as i64);
            let ce_v = ce.double_value(&[]);
            entropy += ce_v * (-ce_v).exp();
            neg_log_prob.push(ce);
            let mut row = vec![op as i64];
            inputs = self.w_emb.get(op as i64).view([1, h]);
            let (nc, nh) = lstm(&inputs, &c, &hs, &self.w_lstm);
            (c, hs) = (nc, nh);
            if layer > 0 {
                let query = (hs.matmul(&self.attn_w2) + Tensor::cat(&all_h_w, 0))
                    .tanh()
                    .matmul(&self.attn_v);
                let logits = self.squash(Tensor::cat(&[-&query, query.shallow_clone()], 1));
                let log_p = logits.log_softmax(1, Kind::Float);
                let flags: Vec<i64> = match given {
                    Some(a) => a[layer][1..].to_vec(),
                    None => {
                        let p = Vec::<f64>::try_from(
                            log_p.detach().exp().to_kind(Kind::Double).view([-1]),
                        )
                        .unwrap_or_default();
                        (0..layer)
                            .map(|j| draw(&p[2 * j..2 * j + 2], rng) as i64)
                            .collect()
                    }
                };
                let index = Tensor::from_slice(&flags).view([layer as i64, 1]);
                let ce = -log_p.gather(1, &index, false).view([-1]);
                let ce_v =
                    Vec::<f64>::try_from(ce.detach().to_kind(Kind::Double)).unwrap_or_default();
                entropy += ce_v.iter().map(|v| v * (-v).exp()).sum::<f64>();
                neg_log_prob.push(ce.sum(Kind::Float));
                let p = logits.sigmoid();
                kls.push((&p * (&p / &targets).log()).sum(Kind::Float));
                let chosen: Vec<f32> = flags.iter().map(|&f| f as f32).collect();
                let count: f32 = chosen.iter().sum();
                skips += count as usize;
                row.extend_from_slice(&flags);
                inputs = Tensor::from_slice(&chosen)
                    .view([1, layer as i64])
                    .matmul(&Tensor::cat(&all_h, 0))
                    / (1.0 + count as f64);
            } else {
                inputs = self.g_emb.shallow_clone();
            }
            all_h_w.push(hs.matmul(&self.attn_w1));
            all_h.push(hs.shallow_clone());
            arch.push(row);
        }
        let skip_penalty = if kls.is_empty() {
            Tensor::zeros([], (Kind::Float, Device::Cpu))
        } else {
            Tensor::stack(&kls, 0).mean(Kind::Float)
        };
        Sample {
            arch,
            neg_log_prob: Tensor::stack(&neg_log_prob, 0).sum(Kind::Float),
            entropy,
            skip_penalty,
            skips,
        }
    }

    /// Samples an architecture without building gradients.
    pub fn sample(&self, rng: &mut Pcg64) -> Arch {
        let _g = tch::no_grad_guard();
        self.run(None, rng).arch
    }

    /// One REINFORCE step on `sample` (from `run(None, ..)`) rewarded by `accuracy`.
    pub fn update(&mut self, sample: &Sample, accuracy: f64) -> Update {
        let s = &self.settings;
        let reward = accuracy + s.controller_entropy_weight * sample.entropy;
        let b = &mut self.state.baseline;
        *b -= (1.0 - s.controller_baseline_decay) * (*b - reward);
        let advantage = reward - *b;
        let loss =
            &sample.neg_log_prob * advantage + &sample.skip_penalty * s.controller_skip_weight;
        let loss_v = loss.double_value(&[]);
        let params = self.params();
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        loss.backward();
        self.adam_step(&params);
        self.state.updates += 1;
        Update {
            reward,
            baseline: self.state.baseline,
            loss: loss_v,
            entropy: sample.entropy,
            skip_rate: sample.skip_rate(),
        }
    }

    fn adam_step(&mut self, params: &[Tensor]) {
        let _g = tch::no_grad_guard();
        self.state.adam_steps += 1;
        let t = self.state.adam_steps as i32;
        let (b1, b2) = ADAM_BETAS;
        let lr = self.settings.controller_learning_rate;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (p, (m, v)) in params.iter().zip(self.moments.iter_mut()) {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            *m = &*m * b1 + &g * (1.0 - b1);
            *v = &*v * b2 + g.square() * (1.0 - b2);
            let step = (&*m / c1) / ((&*v / c2).sqrt() + ADAM_EPS) * lr;
            let mut p = p.shallow_clone();
            let _ = p.g_sub_(&step);
        }
    }

    /// Weights and Adam's moments, for a checkpoint.
    pub fn tensors(&self) -> Vec<Tensor> {
        let mut out = self.params();
        for (m, v) in &self.moments {
            out.push(m.shallow_clone());
            out.push(v.shallow_clone());
        }
        out
    }

    /// Restores what `tensors` returned.
    pub fn restore(&mut self, saved: &[Tensor], state: ControllerState) -> Result<()> {
        let params = self.params();
        anyhow::ensure!(
            saved.len() == 3 * params.len(),
            "the checkpoint's controller has another shape"
        );
        let _g = tch::no_grad_guard();
        for (i, p) in params.iter().enumerate() {
            anyhow::ensure!(
                p.size() == saved[i].size(),
                "the checkpoint's controller has another size"
            );
            let mut p = p.shallow_clone();
            p.copy_(&saved[i]);
        }
        let n = params.len();
        for (i, (m, v)) in self.moments.iter_mut().enumerate() {
            *m = saved[n + 2 * i].copy();
            *v = saved[n + 2 * i + 1].copy();
        }
        self.state = state;
        Ok(())
    }

    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let named: Vec<(String, Tensor)> = self
            .tensors()
            .into_iter()
            .enumerate()
            .map(|(i, t)| (format!("c{i}"), t))
            .collect();
        Tensor::save_multi(&named, path).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn load(&mut self, path: &std::path::Path, state: ControllerState) -> Result<()> {
        let mut loaded =
            Tensor::load_multi(path).with_context(|| format!("cannot read {}", path.display()))?;
        loaded.sort_by_key(|(name, _)| name[1..].parse::<usize>().unwrap_or(usize::MAX));
        let tensors: Vec<Tensor> = loaded.into_iter().map(|(_, t)| t).collect();
        self.restore(&tensors, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn settings(hidden: usize) -> EnasSettings {
        EnasSettings {
            controller_hidden_size: hidden,
            ..EnasSettings::default()
        }
    }

    fn set(t: &Tensor, values: &[f32]) {
        let _g = tch::no_grad_guard();
        let mut t = t.shallow_clone();
        t.copy_(&Tensor::from_slice(values).view(t.size().as_slice()));
    }

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// One scalar LSTM step with weights [wx; wh] per gate (i, f, o, g).
    fn cell(x: f64, c: f64, h: f64, w: &[[f64; 4]; 2]) -> (f64, f64) {
        let z: Vec<f64> = (0..4).map(|k| x * w[0][k] + h * w[1][k]).collect();
        let (i, f, o, g) = (sig(z[0]), sig(z[1]), sig(z[2]), z[3].tanh());
        let c2 = i * g + f * c;
        (c2, o * c2.tanh())
    }

    #[test]
    fn log_prob_entropy_and_skip_penalty_match_a_hand_computation() {
        // Hidden size 1, 2 layers, 2 operations: every quantity is a scalar formula.
        let s = settings(1);
        let mut rng = Pcg64::seed_from_u64(0);
        let c = Controller::new(2, 2, &s, &mut rng);
        let w = [[0.3, -0.2, 0.5, 0.8], [0.1, 0.4, -0.6, 0.2]];
        set(&c.w_lstm, &[0.3, -0.2, 0.5, 0.8, 0.1, 0.4, -0.6, 0.2]);
        set(&c.g_emb, &[0.7]);
        set(&c.w_emb, &[-0.5, 0.9]);
        set(&c.w_soft, &[1.5, -2.0]);
        set(&c.attn_w1, &[0.8]);
        set(&c.attn_w2, &[-1.1]);
        set(&c.attn_v, &[2.5]);
        let arch: Arch = vec![vec![1], vec![0, 1]];
        let out = c.run(Some(&arch), &mut rng);
        let (t, k) = (s.controller_temperature, s.controller_tanh_const);
        let squash = |x: f64| k * (x / t).tanh();
        let log_softmax = |l: &[f64], i: usize| {
            let m = l.iter().map(|v| v.exp()).sum::<f64>().ln();
            l[i] - m
        };
        // Layer 0: op from h after g_emb; then the embedding of op 1.
        let (c1, h1) = cell(0.7, 0.0, 0.0, &w);
        let l0 = [squash(h1 * 1.5), squash(h1 * -2.0)];
        let lp0 = log_softmax(&l0, 1);
        let (c2, h2) = cell(0.9, c1, h1, &w);
        // Layer 1: input g_emb again, op 0; then the embedding of op 0 and one skip decision.
        let (c3, h3) = cell(0.7, c2, h2, &w);
        let l1 = [squash(h3 * 1.5), squash(h3 * -2.0)];
        let lp1 = log_softmax(&l1, 0);
        let (_c4, h4) = cell(-0.5, c3, h3, &w);
        let q = 2.5 * (h4 * -1.1 + h2 * 0.8).tanh();
        let sl = [squash(-q), squash(q)];
        let lps = log_softmax(&sl, 1);
        let expected_nlp = -(lp0 + lp1 + lps);
        let got = out.neg_log_prob.double_value(&[]);
        assert!((got - expected_nlp).abs() < 1e-5, "{got} vs {expected_nlp}");
        let ent = |lp: f64| -lp * lp.exp();
        let expected_entropy = ent(lp0) + ent(lp1) + ent(lps);
        assert!((out.entropy - expected_entropy).abs() < 1e-5);
        let target = s.controller_skip_target;
        let (p0, p1) = (sig(sl[0]), sig(sl[1]));
        let kl = p0 * (p0 / (1.0 - target)).ln() + p1 * (p1 / target).ln();
        let got = out.skip_penalty.double_value(&[]);
        assert!((got - kl).abs() < 1e-5, "{got} vs {kl}");
        assert_eq!(out.skips, 1);
        assert_eq!(out.skip_rate(), 1.0);
    }

    #[test]
    fn sampling_repeats_with_the_seed_and_gives_katib_rows() {
        let s = settings(8);
        let c = Controller::new(5, 4, &s, &mut Pcg64::seed_from_u64(1));
        let a = c.sample(&mut Pcg64::seed_from_u64(2));
        let b = c.sample(&mut Pcg64::seed_from_u64(2));
        assert_eq!(a, b);
        for (i, row) in a.iter().enumerate() {
            assert_eq!(row.len(), i + 1);
            assert!((0..4).contains(&row[0]));
            assert!(row[1..].iter().all(|&f| f == 0 || f == 1));
        }
    }
}
