//! The ENAS search (Pham et al. 2018): every epoch alternates the two phases of the paper.
//! First the shared weights train for one pass over the training split, each mini-batch
//! through an architecture freshly sampled from the controller (SGD with Nesterov momentum,
//! a cosine learning rate over all steps, weight decay, gradient clipping, all written out so
//! that a checkpoint holds them); then the controller takes `controller_train_steps` REINFORCE
//! steps, each rewarded by its sample's accuracy on a dev mini-batch with the shared weights.
//! With `sharing` off every sample is instead trained from scratch (Kubeflow Katib's ENAS),
//! so the two can be compared with the same controller. At the end `final_samples`
//! architectures are scored on the whole dev split with the shared weights (without sharing:
//! the best-rewarded sample), and the best is retrained from scratch over the retrain seeds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::config::EnasSettings;
use super::controller::{Controller, ControllerState};
use super::network::{Network, Plan};
use super::ops::OpKind;
use super::space::{Arch, Space};
use super::supernet::Supernet;
use crate::config::TrainerSettings;
use crate::nn::child::permutation;
use crate::nn::tensors::TrainData;
use crate::nn::train::{clip_grad_norm, cosine_lr, test_accuracy, train_new, Ending};
use crate::outdir::{write_atomically, Stop};
use crate::output::progress::say;
use crate::output::rows::RowWriter;

/// The columns of rollouts.csv.
pub const HEADER: [&str; 9] = [
    "epoch",
    "step",
    "architecture",
    "reward",
    "accuracy",
    "baseline",
    "entropy",
    "skip_rate",
    "loss",
];

/// One controller sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub epoch: usize,
    pub step: usize,
    pub architecture: String,
    pub reward: f64,
    pub accuracy: f64,
    pub baseline: f64,
    pub entropy: f64,
    pub skip_rate: f64,
    pub loss: f64,
    /// Seconds of the search when the sample was scored (kept in the checkpoint for the
    /// DeepCAVE folder; not a rollouts.csv column).
    #[serde(default)]
    pub seconds: f64,
}

impl Row {
    fn fields(&self) -> Vec<String> {
        vec![
            self.epoch.to_string(),
            self.step.to_string(),
            self.architecture.clone(),
            self.reward.to_string(),
            self.accuracy.to_string(),
            self.baseline.to_string(),
            self.entropy.to_string(),
            self.skip_rate.to_string(),
            self.loss.to_string(),
        ]
    }
}

/// What a run needs to continue exactly where its last finished epoch left it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The command's inputs (to rebuild the same run).
    pub inputs: serde_json::Value,
    pub settings: EnasSettings,
    pub sharing: bool,
    pub epochs_done: usize,
    pub shared_steps: usize,
    pub rng: Pcg64,
    pub controller: ControllerState,
    pub rows: Vec<Row>,
    /// Mean shared-weight training loss of every finished epoch.
    pub epoch_losses: Vec<f64>,
    /// Seconds of the shared-weight phase of every finished epoch.
    #[serde(default)]
    pub shared_seconds: Vec<f64>,
    /// CPU seconds of the search thread in that phase (steady on a loaded machine).
    #[serde(default)]
    pub shared_cpu_seconds: Vec<f64>,
    pub seconds: f64,
    /// Which tensor file holds this state: checkpoint-a.ot or checkpoint-b.ot.
    pub slot: String,
}

pub const CHECKPOINT: &str = "checkpoint.json";
pub const SLOTS: [&str; 2] = ["checkpoint-a.ot", "checkpoint-b.ot"];

/// Everything a search works with.
pub struct Search {
    pub space: Space,
    pub kinds: Vec<OpKind>,
    pub settings: EnasSettings,
    pub sharing: bool,
    pub data: TrainData,
    pub supernet: Supernet,
    /// Momentum buffers of the shared weights, in `supernet.params` order.
    pub momentum: Vec<Tensor>,
    pub controller: Controller,
    pub rng: Pcg64,
    pub rows: Vec<Row>,
    pub epoch_losses: Vec<f64>,
    pub shared_seconds: Vec<f64>,
    pub shared_cpu_seconds: Vec<f64>,
    pub epochs_done: usize,
    pub shared_steps: usize,
    pub seconds: f64,
    pub inputs: serde_json::Value,
}

/// How the search ended.
pub enum Outcome {
    Finished,
    Interrupted,
}

/// Mini-batch lengths over `n` examples (a last batch of one is dropped: batch norm needs two).
fn batches(n: usize, batch: usize) -> Vec<usize> {
    let mut out = vec![batch; n / batch];
    match n % batch {
        0 | 1 => {}
        rest => out.push(rest),
    }
    out
}

impl Search {
    /// A fresh search: libtorch seeded with `seed` for the shared weights, every other draw
    /// from a generator seeded with `seed`.
    pub fn new(
        space: Space,
        kinds: Vec<OpKind>,
        settings: EnasSettings,
        sharing: bool,
        data: TrainData,
        seed: u64,
        inputs: serde_json::Value,
    ) -> Search {
        tch::manual_seed(seed as i64);
        let shape = data.input_shape();
        let supernet = Supernet::new(
            &kinds,
            space.num_layers,
            shape[0],
            data.n_classes as i64,
            data.device,
        );
        let momentum = supernet.params.iter().map(Tensor::zeros_like).collect();
        let mut rng = Pcg64::seed_from_u64(seed);
        let controller = Controller::new(space.num_layers, kinds.len(), &settings, &mut rng);
        Search {
            space,
            kinds,
            settings,
            sharing,
            data,
            supernet,
            momentum,
            controller,
            rng,
            rows: Vec::new(),
            epoch_losses: Vec::new(),
            shared_seconds: Vec::new(),
            shared_cpu_seconds: Vec::new(),
            epochs_done: 0,
            shared_steps: 0,
            seconds: 0.0,
            inputs,
        }
    }

    fn steps_per_epoch(&self) -> usize {
        batches(self.data.train.len(), self.settings.batch_size).len()
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

    /// Trains `arch` from scratch (no sharing) and returns its dev accuracy.
    fn from_scratch(&mut self, arch: &Arch, stop: &Stop) -> Result<Option<f64>> {
        let plan = self.plan(arch);
        let trainer = self.trainer(self.settings.no_sharing_epochs);
        let seed = rand::RngExt::random::<u64>(&mut self.rng);
        let (_vs, _net, outcome) = train_new(
            |p| Network::new(p, &plan),
            &self.data,
            &trainer,
            seed,
            stop.flag(),
        )?;
        if outcome.ending == Ending::Interrupted {
            return Ok(None);
        }
        Ok(Some(outcome.epochs.last().map_or(0.0, |e| e.dev_accuracy)))
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

    /// Runs the remaining epochs; checkpoints after each.
    pub fn run(
        &mut self,
        out: &Path,
        csv: &mut RowWriter,
        stop: &Stop,
        quiet: bool,
    ) -> Result<Outcome> {
        let per_epoch = self.steps_per_epoch();
        let total = self.settings.epochs * per_epoch;
        while self.epochs_done < self.settings.epochs {
            let started = Instant::now();
            let epoch = self.epochs_done;
            // Phase 1: the shared weights, one pass, an architecture per mini-batch.
            let (mut loss_sum, mut seen) = (0.0, 0usize);
            let shared_started = Instant::now();
            let shared_cpu_started = crate::cpu_time::thread_seconds();
            if self.sharing {
                let n = self.data.train.len();
                let order = permutation(n, &mut self.rng, self.data.device);
                let mut start = 0i64;
                for len in batches(n, self.settings.batch_size) {
                    if stop.requested() {
                        return Ok(Outcome::Interrupted);
                    }
                    let index = order.narrow(0, start, len as i64);
                    start += len as i64;
                    let x = self.data.train.x.index_select(0, &index);
                    let y = self.data.train.y.index_select(0, &index);
                    let arch = self.controller.sample(&mut self.rng);
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
            }
            let shared_seconds = shared_started.elapsed().as_secs_f64();
            let shared_cpu_seconds = crate::cpu_time::thread_seconds() - shared_cpu_started;
            let epoch_loss = if seen > 0 {
                loss_sum / seen as f64
            } else {
                f64::NAN
            };
            // Phase 2: the controller, rewarded on dev mini-batches.
            let mut new_rows = Vec::new();
            let n_dev = self.data.dev.len();
            for step in 0..self.settings.controller_train_steps {
                if stop.requested() {
                    return Ok(Outcome::Interrupted);
                }
                let sample = self.controller.run(None, &mut self.rng);
                let accuracy = if self.sharing {
                    let take = self.settings.controller_batch_size.min(n_dev);
                    let order = permutation(n_dev, &mut self.rng, self.data.device).narrow(
                        0,
                        0,
                        take as i64,
                    );
                    let x = self.data.dev.x.index_select(0, &order);
                    let y = self.data.dev.y.index_select(0, &order);
                    self.supernet.accuracy(&sample.arch, &x, &y)
                } else {
                    match self.from_scratch(&sample.arch, stop)? {
                        Some(a) => a,
                        None => return Ok(Outcome::Interrupted),
                    }
                };
                let update = self.controller.update(&sample, accuracy);
                new_rows.push(Row {
                    epoch: epoch + 1,
                    step: step + 1,
                    architecture: Space::architecture_json(&sample.arch),
                    reward: update.reward,
                    accuracy,
                    baseline: update.baseline,
                    entropy: update.entropy,
                    skip_rate: update.skip_rate,
                    loss: update.loss,
                    seconds: self.seconds + started.elapsed().as_secs_f64(),
                });
            }
            csv.append(&new_rows.iter().map(Row::fields).collect::<Vec<_>>())?;
            csv.sync()?;
            self.rows.extend(new_rows);
            self.epoch_losses.push(epoch_loss);
            self.shared_seconds.push(shared_seconds);
            self.shared_cpu_seconds.push(shared_cpu_seconds);
            self.epochs_done += 1;
            self.seconds += started.elapsed().as_secs_f64();
            self.save(out)?;
            let recent: Vec<f64> = self
                .rows
                .iter()
                .rev()
                .take(self.settings.controller_train_steps.max(1))
                .map(|r| r.accuracy)
                .collect();
            let mean = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            say(
                quiet,
                &format!(
                    "epoch {}/{}  shared loss {:.4}  controller dev accuracy {:.3}  baseline {:.3}  {:.1}s",
                    self.epochs_done,
                    self.settings.epochs,
                    epoch_loss,
                    mean,
                    self.controller.state.baseline,
                    started.elapsed().as_secs_f64()
                ),
            );
        }
        Ok(Outcome::Finished)
    }

    /// Writes the tensors into the slot not in use, then checkpoint.json naming it.
    pub fn save(&self, out: &Path) -> Result<()> {
        let previous = read_checkpoint(out).ok().map(|c| c.slot);
        let slot = if previous.as_deref() == Some(SLOTS[0]) {
            SLOTS[1]
        } else {
            SLOTS[0]
        };
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (i, p) in self.supernet.params.iter().enumerate() {
            named.push((format!("p{i}"), p.shallow_clone()));
        }
        for (i, m) in self.momentum.iter().enumerate() {
            named.push((format!("m{i}"), m.shallow_clone()));
        }
        for (i, c) in self.controller.tensors().into_iter().enumerate() {
            named.push((format!("c{i}"), c));
        }
        let tmp = out.join(format!("{slot}.tmp"));
        Tensor::save_multi(&named, &tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, out.join(slot))
            .with_context(|| format!("cannot write {}", out.join(slot).display()))?;
        let checkpoint = Checkpoint {
            inputs: self.inputs.clone(),
            settings: self.settings.clone(),
            sharing: self.sharing,
            epochs_done: self.epochs_done,
            shared_steps: self.shared_steps,
            rng: self.rng.clone(),
            controller: self.controller.state.clone(),
            rows: self.rows.clone(),
            epoch_losses: self.epoch_losses.clone(),
            shared_seconds: self.shared_seconds.clone(),
            shared_cpu_seconds: self.shared_cpu_seconds.clone(),
            seconds: self.seconds,
            slot: slot.to_string(),
        };
        let text = serde_json::to_vec(&checkpoint).context("cannot encode the checkpoint")?;
        write_atomically(&out.join(CHECKPOINT), &text)
    }

    /// Continues from `checkpoint` (the search built anew from the same inputs).
    pub fn restore(&mut self, out: &Path, c: Checkpoint) -> Result<()> {
        let path = out.join(&c.slot);
        let loaded =
            Tensor::load_multi(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut controller = Vec::new();
        let _g = tch::no_grad_guard();
        for (name, t) in loaded {
            let (kind, index) = name.split_at(1);
            let i: usize = index
                .parse()
                .context("a checkpoint tensor has a bad name")?;
            match kind {
                "p" => {
                    let p = self
                        .supernet
                        .params
                        .get(i)
                        .context("the checkpoint's supernet differs")?;
                    anyhow::ensure!(p.size() == t.size(), "the checkpoint's supernet differs");
                    p.shallow_clone().copy_(&t);
                }
                "m" => {
                    let m = self
                        .momentum
                        .get_mut(i)
                        .context("the checkpoint's supernet differs")?;
                    *m = t;
                }
                _ => controller.push((i, t)),
            }
        }
        controller.sort_by_key(|(i, _)| *i);
        let tensors: Vec<Tensor> = controller.into_iter().map(|(_, t)| t).collect();
        self.controller.restore(&tensors, c.controller)?;
        self.rng = c.rng;
        self.rows = c.rows;
        self.epoch_losses = c.epoch_losses;
        self.shared_seconds = c.shared_seconds;
        self.shared_cpu_seconds = c.shared_cpu_seconds;
        self.epochs_done = c.epochs_done;
        self.shared_steps = c.shared_steps;
        self.seconds = c.seconds;
        Ok(())
    }

    /// The architecture to retrain: with sharing, the best of `final_samples` fresh samples on
    /// the whole dev split with the shared weights (ties: the first); without, the sample with
    /// the best reward (ties: the latest).
    pub fn choose(&mut self) -> (Arch, f64, Vec<(Arch, f64)>) {
        if self.sharing {
            let mut scored = Vec::new();
            for _ in 0..self.settings.final_samples {
                let arch = self.controller.sample(&mut self.rng);
                let acc = self
                    .supernet
                    .accuracy(&arch, &self.data.dev.x, &self.data.dev.y);
                scored.push((arch, acc));
            }
            let mut best = 0;
            for (i, (_, a)) in scored.iter().enumerate() {
                if *a > scored[best].1 {
                    best = i;
                }
            }
            (scored[best].0.clone(), scored[best].1, scored)
        } else {
            let mut best: Option<&Row> = None;
            for r in &self.rows {
                if best.is_none_or(|b| r.accuracy >= b.accuracy) {
                    best = Some(r);
                }
            }
            let arch = best
                .and_then(|r| serde_json::from_str::<Arch>(&r.architecture).ok())
                .unwrap_or_else(|| self.controller.sample(&mut self.rng));
            let acc = best.map_or(0.0, |r| r.accuracy);
            (arch, acc, Vec::new())
        }
    }

    /// Retrains `arch` from scratch once per seed; test accuracies (None when interrupted).
    pub fn retrain(&self, arch: &Arch, seeds: &[u64], stop: &Stop) -> Result<Option<Vec<f64>>> {
        let plan = self.plan(arch);
        let trainer = self.trainer(self.settings.final_epochs);
        let mut out = Vec::new();
        for &seed in seeds {
            let (_vs, net, outcome) = train_new(
                |p| Network::new(p, &plan),
                &self.data,
                &trainer,
                seed,
                stop.flag(),
            )?;
            if outcome.ending == Ending::Interrupted {
                return Ok(None);
            }
            out.push(test_accuracy(&net, &self.data, &trainer));
        }
        Ok(Some(out))
    }
}

/// Reads `out`/checkpoint.json.
pub fn read_checkpoint(out: &Path) -> Result<Checkpoint> {
    let path: PathBuf = out.join(CHECKPOINT);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a checkpoint of archsearch enas", path.display()))
}

/// Mean and sample standard deviation.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// Accuracy of logits against labels (for tests).
pub fn accuracy_of(logits: &Tensor, y: &Tensor) -> f64 {
    logits
        .argmax(-1, false)
        .eq_tensor(y)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
}
