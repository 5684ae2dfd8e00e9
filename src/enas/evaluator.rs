//! The ENAS evaluator of the one search loop (Pham et al. 2018): it scores the controller's
//! samples with the shared weights, on a dev mini-batch each, and before the first sample of
//! every epoch it runs the paper's other phase: one pass of the shared weights over the
//! training split, each mini-batch through an architecture freshly sampled from the same
//! controller (SGD with Nesterov momentum, a cosine learning rate over all steps, weight decay,
//! gradient clipping, all written out so that a checkpoint holds them). With sharing off every
//! sample is instead trained from scratch (Kubeflow Katib's ENAS), with the seed the loop gives.

use anyhow::Result;
use rand_pcg::Pcg64;
use tch::Tensor;

use super::config::EnasSettings;
use super::network::{Network, Plan};
use super::ops::OpKind;
use super::space::{Arch, Space};
use super::strategy::SharedController;
use super::supernet::Supernet;
use crate::config::TrainerSettings;
use crate::nn::child::{permutation, TrainOutcome};
use crate::nn::evaluator::{EvalJob, Evaluator};
use crate::nn::tensors::TrainData;
use crate::nn::train::{batch_lengths, clip_grad_norm, cosine_lr, train_new, Ending};
use crate::outdir::Stop;

/// What an ENAS search runs on: the space, its operations, the settings and the data.
pub struct Problem {
    pub space: Space,
    pub kinds: Vec<OpKind>,
    pub settings: EnasSettings,
    pub data: TrainData,
}

/// The shared weights, the data, and what the shared-weight phase has done so far.
pub struct EnasEvaluator {
    pub space: Space,
    pub kinds: Vec<OpKind>,
    pub settings: EnasSettings,
    pub sharing: bool,
    pub data: TrainData,
    pub supernet: Supernet,
    /// Momentum buffers of the shared weights, in `supernet.params` order.
    pub momentum: Vec<Tensor>,
    /// The controller the strategy trains; the shared-weight phase samples from it.
    pub controller: SharedController,
    /// Mini-batch orders and the shared-weight phase's architectures.
    pub rng: Pcg64,
    /// Samples scored so far (the loop's rollouts).
    pub scored: usize,
    pub shared_steps: usize,
    /// Mean shared-weight training loss of every shared-weight pass.
    pub epoch_losses: Vec<f64>,
    /// Wall seconds of every shared-weight pass.
    pub shared_seconds: Vec<f64>,
    /// CPU seconds of the search thread in every pass (steady on a loaded machine).
    pub shared_cpu_seconds: Vec<f64>,
    pub stop: Stop,
}

impl EnasEvaluator {
    /// An evaluator with a new supernet for `problem` (its weights drawn by libtorch's
    /// generator, to be seeded by the caller).
    pub fn new(
        problem: Problem,
        sharing: bool,
        controller: SharedController,
        rng: Pcg64,
        stop: Stop,
    ) -> EnasEvaluator {
        let Problem {
            space,
            kinds,
            settings,
            data,
        } = problem;
        let shape = data.input_shape();
        let supernet = Supernet::new(
            &kinds,
            space.num_layers,
            shape[0],
            data.n_classes as i64,
            data.device,
        );
        let momentum = supernet.params.iter().map(Tensor::zeros_like).collect();
        EnasEvaluator {
            space,
            kinds,
            settings,
            sharing,
            data,
            supernet,
            momentum,
            controller,
            rng,
            scored: 0,
            shared_steps: 0,
            epoch_losses: Vec::new(),
            shared_seconds: Vec::new(),
            shared_cpu_seconds: Vec::new(),
            stop,
        }
    }

    pub fn steps_per_epoch(&self) -> usize {
        batch_lengths(self.data.train.len(), self.settings.batch_size).len()
    }

    /// One SGD step (Nesterov momentum, weight decay, clipping) of the shared weights on
    /// one mini-batch through `arch`; only the blocks `arch` used move. Returns the loss.
    fn shared_step(&mut self, arch: &Arch, x: &Tensor, y: &Tensor, lr: f64) -> f64 {
        let s = &self.settings;
        let (logits, drawn) = self.supernet.forward(arch, x);
        let loss = logits.cross_entropy_for_logits(y);
        loss.backward();
        let value = loss.double_value(&[]);
        let used: Vec<Tensor> = drawn
            .used
            .iter()
            .map(|&i| self.supernet.params[i].shallow_clone())
            .collect();
        if s.child_grad_clip > 0.0 {
            clip_grad_norm(&used, s.child_grad_clip);
        }
        let _g = tch::no_grad_guard();
        for &i in &drawn.used {
            let p = &self.supernet.params[i];
            let mut grad = p.grad();
            if !grad.defined() {
                continue;
            }
            let g = &grad + p * s.child_weight_decay;
            let buf = &self.momentum[i] * s.child_momentum + &g;
            let step = (&g + &buf * s.child_momentum) * lr;
            self.momentum[i] = buf;
            let mut p = p.shallow_clone();
            let _ = p.g_sub_(&step);
            let _ = grad.zero_();
        }
        value
    }

    /// The shared-weight phase of an epoch: one pass over the training split, an architecture
    /// sampled from the controller per mini-batch. False when a stop cut it short.
    pub fn shared_epoch(&mut self) -> Result<bool> {
        let started = std::time::Instant::now();
        let cpu_started = crate::cpu_time::thread_seconds();
        let per_epoch = self.steps_per_epoch();
        let total = self.settings.epochs * per_epoch;
        let epoch = self.epoch_losses.len() + 1;
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        let n = self.data.train.len();
        let order = permutation(n, &mut self.rng, self.data.device);
        let mut start = 0i64;
        for len in batch_lengths(n, self.settings.batch_size) {
            if self.stop.requested() {
                return Ok(false);
            }
            let index = order.narrow(0, start, len as i64);
            start += len as i64;
            let x = self.data.train.x.index_select(0, &index);
            let y = self.data.train.y.index_select(0, &index);
            let arch = self.controller.lock().sample(&mut self.rng);
            let lr = cosine_lr(
                self.settings.child_lr,
                self.settings.child_lr_min,
                self.shared_steps,
                total,
            );
            let loss = self.shared_step(&arch, &x, &y, lr);
            anyhow::ensure!(
                loss.is_finite(),
                "the shared weights diverged (loss {loss}) at epoch {epoch}; lower --set child_lr"
            );
            loss_sum += loss * len as f64;
            seen += len;
            self.shared_steps += 1;
        }
        self.epoch_losses.push(if seen > 0 {
            loss_sum / seen as f64
        } else {
            f64::NAN
        });
        self.shared_seconds.push(started.elapsed().as_secs_f64());
        self.shared_cpu_seconds
            .push(crate::cpu_time::thread_seconds() - cpu_started);
        Ok(true)
    }

    /// `arch`'s accuracy with the shared weights on a dev mini-batch drawn afresh.
    fn shared_accuracy(&mut self, arch: &Arch) -> f64 {
        let n_dev = self.data.dev.len();
        let take = self.settings.controller_batch_size.min(n_dev);
        let order = permutation(n_dev, &mut self.rng, self.data.device).narrow(0, 0, take as i64);
        let x = self.data.dev.x.index_select(0, &order);
        let y = self.data.dev.y.index_select(0, &order);
        self.supernet.accuracy(arch, &x, &y)
    }

    /// Trains `arch` from scratch (no sharing) with `seed`; its dev accuracy (None when a stop
    /// cut it short).
    fn train_from_scratch(&mut self, arch: &Arch, seed: u64) -> Result<Option<TrainOutcome>> {
        let plan = self.plan(arch);
        let trainer = self.trainer(self.settings.no_sharing_epochs);
        let (_vs, _net, outcome) = train_new(
            |p| Network::new(p, &plan),
            &self.data,
            &trainer,
            seed,
            self.stop.flag(),
        )?;
        if outcome.ending == Ending::Interrupted {
            return Ok(None);
        }
        Ok(Some(TrainOutcome {
            accuracy: outcome.epochs.last().map_or(0.0, |e| e.dev_accuracy),
            epochs: outcome.epochs.len(),
            diverged: outcome.diverged(),
            history: Vec::new(),
        }))
    }

    pub fn plan(&self, arch: &Arch) -> Plan {
        let shape = self.data.input_shape();
        Plan::new(
            arch,
            |id| self.kinds[id],
            shape[0],
            self.data.n_classes as i64,
        )
    }

    /// The trainer of a network trained from scratch: the baseline CNN's protocol (SGD with
    /// Nesterov momentum, cosine schedule, best dev epoch kept) for `epochs` epochs.
    pub fn trainer(&self, epochs: usize) -> TrainerSettings {
        TrainerSettings {
            epochs,
            ties_to_later: true,
            ..TrainerSettings::default()
        }
    }
}

impl Evaluator for EnasEvaluator {
    /// Each job's architecture scored in turn; with sharing, the shared-weight phase first
    /// whenever a job opens an epoch (every `controller_train_steps` samples). A stop returns
    /// None: the shared weights may then have moved, so the caller must not checkpoint them
    /// (the ENAS search checkpoints only at the end of an epoch).
    fn evaluate(&mut self, jobs: &[EvalJob]) -> Result<Option<Vec<TrainOutcome>>> {
        let per_epoch = self.settings.controller_train_steps.max(1);
        let mut out = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let arch: Arch = serde_json::from_value(job.config.clone())
                .map_err(|e| anyhow::anyhow!("a proposal is not an ENAS architecture: {e}"))?;
            if self.stop.requested() {
                return Ok(None);
            }
            if self.sharing {
                if (self.scored + i) % per_epoch == 0 && !self.shared_epoch()? {
                    return Ok(None);
                }
                let accuracy = self.shared_accuracy(&arch);
                out.push(TrainOutcome {
                    accuracy,
                    epochs: 0,
                    diverged: false,
                    history: Vec::new(),
                });
            } else {
                match self.train_from_scratch(&arch, job.seed)? {
                    Some(o) => out.push(o),
                    None => return Ok(None),
                }
            }
        }
        self.scored += jobs.len();
        Ok(Some(out))
    }
}
