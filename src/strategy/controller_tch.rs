//! The libtorch controller the plain-Rust one (`controller.rs`) replaced, kept for the tests as
//! its oracle: the same GRU cell and head as tch operations (`gru_cell`, `addmm`), the loss of a
//! REINFORCE update differentiated by autograd, Adam as `nn/adam.rs`.

use tch::{Device, Kind, Tensor};

use super::controller::UpdateStats;
use crate::nn::adam::Adam;
use crate::space::SearchSpace;

/// The libtorch controller, its weights one flat tensor laid out as `Controller`'s.
pub struct TchController {
    pub vocabulary: usize,
    pub hidden: usize,
    pub feed_previous: bool,
    params: Tensor,
    adam: Adam,
    device: Device,
}

impl TchController {
    /// A controller with the flat weights `params` (fresh Adam state).
    pub fn from_params(
        vocabulary: usize,
        hidden: usize,
        feed_previous: bool,
        params: &[f32],
    ) -> Self {
        let params = Tensor::from_slice(params).set_requires_grad(true);
        let adam = Adam::new(&params);
        TchController {
            vocabulary,
            hidden,
            feed_previous,
            params,
            adam,
            device: Device::Cpu,
        }
    }

    /// The flat weights.
    pub fn params(&self) -> Vec<f32> {
        Vec::<f32>::try_from(self.params.detach()).expect("float tensor")
    }

    /// The loss of `reinforce`'s update, its gradient by autograd, and the mean entropy.
    pub fn loss_and_gradient(
        &mut self,
        space: &dyn SearchSpace,
        sequences: &[Vec<usize>],
        advantages: &[f64],
        beta: f64,
        gamma: f64,
    ) -> (f64, Vec<f32>, f64) {
        let (loss, entropy) = self.loss(space, sequences, advantages, beta, gamma);
        self.params.zero_grad();
        loss.backward();
        let grad = Vec::<f32>::try_from(self.params.grad()).expect("float gradient");
        (loss.double_value(&[]), grad, entropy)
    }

    fn loss(
        &self,
        space: &dyn SearchSpace,
        sequences: &[Vec<usize>],
        advantages: &[f64],
        beta: f64,
        gamma: f64,
    ) -> (Tensor, f64) {
        let k = sequences.len() as i64;
        let t_max = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let w = self.views();
        let mut h = Tensor::zeros([k, self.hidden as i64], (Kind::Float, self.device));
        let mut previous: Option<Tensor> = None;
        let mut total = Tensor::zeros([k], (Kind::Float, self.device));
        let mut entropy_sum = 0.0;
        let mut decisions = 0usize;
        for t in 0..t_max {
            let (logits, h_next) = self.step(&w, previous.as_ref(), &h, k);
            h = h_next;
            let actions: Vec<i64> = sequences
                .iter()
                .map(|s| s.get(t).copied().unwrap_or(0) as i64)
                .collect();
            let actions = Tensor::from_slice(&actions).to_device(self.device);
            // Options the space did not offer at this step get (almost) zero probability, as
            // when they were sampled.
            let v = self.vocabulary;
            let limits: Vec<usize> = sequences
                .iter()
                .map(|s| {
                    if t < s.len() {
                        space.options_at(&s[..t])
                    } else {
                        v
                    }
                })
                .collect();
            let logits = if limits.iter().any(|&o| o < v) {
                let mask: Vec<f32> = limits
                    .iter()
                    .flat_map(|&o| (0..v).map(move |a| if a < o { 0.0 } else { -1e9 }))
                    .collect();
                logits
                    + Tensor::from_slice(&mask)
                        .view([k, v as i64])
                        .to_device(self.device)
            } else {
                logits
            };
            let log_probs = logits.log_softmax(1, Kind::Float); // [k, v]
            let chosen = log_probs
                .gather(1, &actions.unsqueeze(1), false)
                .squeeze_dim(1); // [k]
            let entropy = -(log_probs.exp() * &log_probs).sum_dim_intlist(1, false, Kind::Float); // [k]
                                                                                                  // Per sequence: the weight of this step's log-probability, and whether it exists.
            let mut weights = Vec::with_capacity(k as usize);
            let mut present = Vec::with_capacity(k as usize);
            for (s, &a) in sequences.iter().zip(advantages) {
                let len = s.len();
                if t < len {
                    weights.push((gamma.powi((len - t) as i32) * a / len as f64) as f32);
                    present.push(1.0 / len as f32);
                } else {
                    weights.push(0.0);
                    present.push(0.0);
                }
            }
            let weights = Tensor::from_slice(&weights).to_device(self.device);
            let present = Tensor::from_slice(&present).to_device(self.device);
            total = total - &chosen * &weights - &entropy * &present * beta;
            let entropies: Vec<f32> = Vec::try_from(entropy.detach()).expect("entropies");
            for (s, e) in sequences.iter().zip(entropies) {
                if t < s.len() {
                    entropy_sum += e as f64;
                    decisions += 1;
                }
            }
            previous = Some(actions);
        }
        let loss = total.mean(Kind::Float);
        (loss, entropy_sum / decisions.max(1) as f64)
    }

    /// GRU weights `w_ih [3h, v]`, `w_hh [3h, h]`, `b_ih`, `b_hh`, head `w [v, h]`, `b [v]`:
    /// views into the flat weights, made per call so autograd reaches the flat tensor.
    fn views(&self) -> [Tensor; 6] {
        let (v, h) = (self.vocabulary as i64, self.hidden as i64);
        // (rows, columns) of the matrices; `None` columns for the bias vectors. A matrix with
        // one column (hidden size 1, or a single option) stays a matrix.
        let sizes = [
            (3 * h, Some(v)),
            (3 * h, Some(h)),
            (3 * h, None),
            (3 * h, None),
            (v, Some(h)),
            (v, None),
        ];
        let mut offset = 0;
        sizes.map(|(rows, cols)| {
            let n = rows * cols.unwrap_or(1);
            let t = self.params.narrow(0, offset, n);
            offset += n;
            match cols {
                Some(cols) => t.view([rows, cols]),
                None => t,
            }
        })
    }

    /// Logits `[k, vocabulary]` for step `t` of `k` sequences and the new hidden state.
    fn step(
        &self,
        w: &[Tensor; 6],
        previous: Option<&Tensor>,
        h: &Tensor,
        k: i64,
    ) -> (Tensor, Tensor) {
        let input = match (self.feed_previous, previous) {
            (true, Some(actions)) => actions.one_hot(self.vocabulary as i64).to_kind(Kind::Float),
            _ => Tensor::zeros([k, self.vocabulary as i64], (Kind::Float, self.device)),
        };
        let h = input.gru_cell(h, &w[0], &w[1], Some(&w[2]), Some(&w[3]));
        let logits = w[5].addmm(&h, &w[4].tr());
        (logits, h)
    }

    /// Samples `k` complete decision sequences from the current policy, drawing from `rng`.
    pub fn sample(
        &self,
        space: &dyn SearchSpace,
        k: usize,
        rng: &mut impl rand::Rng,
    ) -> Vec<Vec<usize>> {
        let _guard = tch::no_grad_guard();
        let w = self.views();
        let mut h = Tensor::zeros([k as i64, self.hidden as i64], (Kind::Float, self.device));
        let mut sequences: Vec<Vec<usize>> = vec![Vec::new(); k];
        let mut previous: Option<Tensor> = None;
        for _ in 0..space.max_decisions() {
            if sequences
                .iter()
                .all(|s| space.is_complete(s) && !s.is_empty())
            {
                break;
            }
            let (logits, h_next) = self.step(&w, previous.as_ref(), &h, k as i64);
            h = h_next;
            let probs: Vec<f64> = Vec::try_from(logits.softmax(1, Kind::Double).flatten(0, 1))
                .expect("probabilities");
            let mut chosen = Vec::with_capacity(k);
            for (i, seq) in sequences.iter_mut().enumerate() {
                let row = &probs[i * self.vocabulary..(i + 1) * self.vocabulary];
                let action = if seq.is_empty() || !space.is_complete(seq) {
                    // Options past the space's count at this step are never drawn.
                    let options = space.options_at(seq).clamp(1, self.vocabulary);
                    let a = super::controller::sample_index(&row[..options], rng);
                    seq.push(a);
                    a
                } else {
                    0 // finished sequences are carried along; their steps are masked later
                };
                chosen.push(action as i64);
            }
            previous = Some(Tensor::from_slice(&chosen).to_device(self.device));
        }
        sequences
    }

    /// The policy's probabilities for the next decision after `prefix` (for tests and reports).
    pub fn next_probabilities(&self, prefix: &[usize]) -> Vec<f64> {
        let _guard = tch::no_grad_guard();
        let w = self.views();
        let mut h = Tensor::zeros([1, self.hidden as i64], (Kind::Float, self.device));
        let mut previous: Option<Tensor> = None;
        let mut logits = Tensor::zeros([1], (Kind::Float, self.device));
        for t in 0..=prefix.len() {
            let (l, h_next) = self.step(&w, previous.as_ref(), &h, 1);
            logits = l;
            h = h_next;
            if t < prefix.len() {
                previous = Some(Tensor::from_slice(&[prefix[t] as i64]).to_device(self.device));
            }
        }
        Vec::try_from(logits.softmax(1, Kind::Double).flatten(0, 1)).expect("probabilities")
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
        let t_max = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if t_max == 0 {
            return Ok(UpdateStats {
                loss: 0.0,
                entropy: 0.0,
            });
        }
        if let Some(a) = advantages.iter().find(|a| !a.is_finite()) {
            return Err(format!("an advantage is {a}"));
        }
        let (loss, entropy) = self.loss(space, sequences, advantages, beta, gamma);
        let loss_value = loss.double_value(&[]);
        if !loss_value.is_finite() {
            return Err(format!("the loss is {loss_value}"));
        }
        self.params.zero_grad();
        loss.backward();
        let mut grads = self.params.grad();
        if !crate::nn::adam::all_finite(&grads) {
            return Err("the gradient is not finite".into());
        }
        if clip > 0.0 {
            // Scale the whole gradient down to norm `clip`, as torch's clip_grad_norm_.
            let norm = grads.norm().double_value(&[]);
            if norm > clip {
                grads *= clip / (norm + 1e-6);
            }
        }
        if !self.adam.try_step(&mut self.params, &grads, lr) {
            return Err("the updated weights or Adam moments would not be finite".into());
        }
        Ok(UpdateStats {
            loss: loss_value,
            entropy,
        })
    }
}
