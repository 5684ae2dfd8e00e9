//! The controller of Zoph & Le (2016) as the half-moon demo builds it (docs/algorithms.md §1):
//! a GRU cell and a linear head over a space's options, sampling one decision at a time and
//! trained by REINFORCE with an entropy bonus. It never names a search space: it only sees the
//! number of options and when a sequence is complete.

use rand::RngExt;
use tch::{Device, Kind, Tensor};

pub use super::baseline::Baseline;
use crate::nn::adam::Adam;
use crate::space::SearchSpace;

/// A GRU-cell policy over `vocabulary` options, its weights in one flat tensor with Adam state.
pub struct Controller {
    pub vocabulary: usize,
    pub hidden: usize,
    /// Feed the previous decision back as a one-hot input; false feeds zeros (the reference).
    pub feed_previous: bool,
    params: Tensor,
    adam: Adam,
    device: Device,
}

/// One REINFORCE update's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateStats {
    pub loss: f64,
    /// Mean entropy of the decisions' distributions (nats).
    pub entropy: f64,
}

impl Controller {
    /// PyTorch's default initialisation: every GRU weight and bias uniform in ±1/sqrt(hidden),
    /// the head's weight and bias uniform in ±1/sqrt(hidden); drawn from `rng`.
    pub fn new(
        vocabulary: usize,
        hidden: usize,
        feed_previous: bool,
        device: Device,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let n = Self::n_params(vocabulary, hidden);
        let bound = 1.0 / (hidden as f64).sqrt();
        let values: Vec<f32> = (0..n)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        let params = Tensor::from_slice(&values)
            .to_device(device)
            .set_requires_grad(true);
        let adam = Adam::new(&params);
        Controller {
            vocabulary,
            hidden,
            feed_previous,
            params,
            adam,
            device,
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
    pub fn params(&self) -> &Tensor {
        &self.params
    }

    /// Weights, Adam moments and Adam step count, for a checkpoint.
    pub fn state(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>, i32) {
        let get = |t: &Tensor| {
            Vec::<f32>::try_from(t.detach().to_device(Device::Cpu)).expect("float tensor")
        };
        (
            get(&self.params),
            get(&self.adam.m),
            get(&self.adam.v),
            self.adam.step,
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
        let put = |x: &[f32]| Tensor::from_slice(x).to_device(self.device);
        self.params = put(params).set_requires_grad(true);
        self.adam.m = put(m);
        self.adam.v = put(v);
        self.adam.step = step;
        Ok(())
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
                    let a = sample_index(&row[..options], rng);
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
        let k = sequences.len() as i64;
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
            entropy: entropy_sum / decisions.max(1) as f64,
        })
    }
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
        Controller::new(
            10,
            64,
            feed_previous,
            Device::Cpu,
            &mut Pcg64::seed_from_u64(0),
        )
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
        let _ = tch::no_grad(|| c.params.zero_());
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
            let mut c = Controller::new(options, hidden, true, Device::Cpu, &mut rng);
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
            Device::Cpu,
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
}
