//! The ENAS search (Pham et al. 2018) on the one search loop (`crate::search::run`): the
//! controller is the loop's strategy (`strategy.rs`), the shared weights its evaluator
//! (`evaluator.rs`), one controller sample per loop update. An epoch is
//! `controller_train_steps` updates; the evaluator opens each with the shared-weight phase, so
//! an epoch alternates the paper's two phases. With `sharing` off every sample is instead
//! trained from scratch (Kubeflow Katib's ENAS) by the same controller. Here: rollouts.csv's
//! rows, a checkpoint after every epoch, and at the end the choice of the architecture
//! (`final_samples` fresh samples scored on the whole dev split with the shared weights;
//! without sharing the best-rewarded sample), retrained from scratch over the retrain seeds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::config::EnasSettings;
use super::controller::ControllerState;
use super::evaluator::{EnasEvaluator, Problem};
use super::network::Network;
use super::space::{Arch, Space};
use super::strategy::{EnasStrategy, SharedController};
use crate::nn::train::{test_accuracy, train_new, Ending};
use crate::outdir::{write_atomically, Stop};
use crate::output::progress::Progress;
use crate::output::rows::RowWriter;
use crate::search::{LoopSettings, SearchState};
use crate::seeds::stream;

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
    /// The evaluator's generator (mini-batch orders, the shared-weight phase's samples).
    pub rng: Pcg64,
    /// The loop's generator of the controller's samples.
    pub search_rng: Pcg64,
    pub controller: ControllerState,
    pub rows: Vec<Row>,
    /// Mean shared-weight training loss of every finished epoch (empty without sharing).
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

/// Everything a search works with: the loop's state (the controller as its one strategy),
/// the evaluator (the shared weights, and a handle on the same controller), and the rows so
/// far.
pub struct Search {
    pub evaluator: EnasEvaluator,
    pub state: SearchState<'static>,
    pub rows: Vec<Row>,
    /// Seconds of the finished epochs.
    pub seconds: f64,
    pub inputs: serde_json::Value,
}

/// How the search ended.
pub enum Outcome {
    Finished,
    Interrupted,
}

impl Search {
    /// A fresh search: libtorch seeded with `seed` for the shared weights; the controller's
    /// weights and samples from `seed`'s stream, the evaluator's draws from another.
    pub fn new(
        problem: Problem,
        sharing: bool,
        seed: u64,
        inputs: serde_json::Value,
        stop: Stop,
    ) -> Search {
        tch::manual_seed(seed as i64);
        let mut rng = stream(seed, None);
        let strategy = EnasStrategy::new(
            problem.space.num_layers,
            problem.kinds.len(),
            &problem.settings,
            &mut rng,
        );
        let evaluator = EnasEvaluator::new(
            problem,
            sharing,
            strategy.controller.clone(),
            stream(seed, Some(1)),
            stop,
        );
        let state = SearchState {
            searches: vec![crate::search::Search::new(Box::new(strategy), seed, rng)],
            done: 0,
        };
        Search {
            evaluator,
            state,
            rows: Vec::new(),
            seconds: 0.0,
            inputs,
        }
    }

    pub fn settings(&self) -> &EnasSettings {
        &self.evaluator.settings
    }

    /// Epochs finished: every `controller_train_steps` samples the loop took.
    pub fn epochs_done(&self) -> usize {
        self.state.done / self.settings().controller_train_steps
    }

    fn controller(&self) -> &SharedController {
        &self.evaluator.controller
    }

    /// Runs the remaining epochs on the one search loop; checkpoints after each.
    pub fn run(&mut self, out: &Path, csv: &mut RowWriter, quiet: bool) -> Result<Outcome> {
        let steps = self.settings().controller_train_steps;
        let epochs = self.settings().epochs;
        let stop = self.evaluator.stop.clone();
        let mut progress = Progress::epochs(epochs, self.epochs_done(), quiet);
        while self.epochs_done() < epochs {
            let started = Instant::now();
            let settings = LoopSettings {
                rollouts: (self.epochs_done() + 1) * steps,
                per_update: 1,
            };
            let records = crate::search::run_collecting(
                &mut self.evaluator,
                settings,
                &mut self.state,
                &|| !stop.requested(),
            )?;
            if self.state.done < settings.rollouts {
                progress.finish();
                return Ok(Outcome::Interrupted);
            }
            let base = self.seconds;
            let mut elapsed = 0.0;
            let new_rows: Vec<Row> = records
                .iter()
                .map(|r| {
                    elapsed += r.seconds;
                    let detail = |k: &str| r.details[k].as_f64().unwrap_or(f64::NAN);
                    Row {
                        epoch: (r.rollout - 1) / steps + 1,
                        step: (r.rollout - 1) % steps + 1,
                        architecture: match serde_json::from_str::<Arch>(&r.architecture) {
                            Ok(arch) => Space::architecture_json(&arch),
                            Err(_) => r.architecture.clone(),
                        },
                        reward: r.reward,
                        accuracy: r.accuracy,
                        baseline: detail("baseline"),
                        entropy: detail("entropy"),
                        skip_rate: detail("skip_rate"),
                        loss: detail("loss"),
                        seconds: base + elapsed,
                    }
                })
                .collect();
            csv.append(&new_rows.iter().map(Row::fields).collect::<Vec<_>>())?;
            csv.sync()?;
            self.rows.extend(new_rows);
            self.seconds += started.elapsed().as_secs_f64();
            self.save(out)?;
            let recent: Vec<f64> = self
                .rows
                .iter()
                .rev()
                .take(steps)
                .map(|r| r.accuracy)
                .collect();
            let mean = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            let loss = match self.evaluator.epoch_losses.last() {
                Some(l) if self.evaluator.sharing => format!("shared loss {l:.4}  "),
                _ => String::new(),
            };
            let baseline = self.controller().lock().state.baseline;
            progress.line(&format!(
                "epoch {}/{}  {loss}controller dev accuracy {mean:.3}  baseline {baseline:.3}  {:.1}s",
                self.epochs_done(),
                epochs,
                started.elapsed().as_secs_f64()
            ));
            progress.update(
                self.epochs_done(),
                &format!("dev accuracy {mean:.3}  baseline {baseline:.3}"),
            );
        }
        progress.finish();
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
        let ev = &self.evaluator;
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (i, p) in ev.supernet.params.iter().enumerate() {
            named.push((format!("p{i}"), p.shallow_clone()));
        }
        for (i, m) in ev.momentum.iter().enumerate() {
            named.push((format!("m{i}"), m.shallow_clone()));
        }
        let controller = self.controller().lock();
        for (i, c) in controller.tensors().into_iter().enumerate() {
            named.push((format!("c{i}"), c));
        }
        let tmp = out.join(format!("{slot}.tmp"));
        Tensor::save_multi(&named, &tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, out.join(slot))
            .with_context(|| format!("cannot write {}", out.join(slot).display()))?;
        let checkpoint = Checkpoint {
            inputs: self.inputs.clone(),
            settings: ev.settings.clone(),
            sharing: ev.sharing,
            epochs_done: self.epochs_done(),
            shared_steps: ev.shared_steps,
            rng: ev.rng.clone(),
            search_rng: self.state.searches[0].rng.clone(),
            controller: controller.state.clone(),
            rows: self.rows.clone(),
            epoch_losses: ev.epoch_losses.clone(),
            shared_seconds: ev.shared_seconds.clone(),
            shared_cpu_seconds: ev.shared_cpu_seconds.clone(),
            seconds: self.seconds,
            slot: slot.to_string(),
        };
        let text = serde_json::to_vec(&checkpoint).context("cannot encode the checkpoint")?;
        write_atomically(&out.join(CHECKPOINT), &text)
    }

    /// Continues from `checkpoint` (the search built anew from the same inputs). The
    /// controller's tensors come from the tensor file (exact), not from the strategy's JSON.
    pub fn restore(&mut self, out: &Path, c: Checkpoint) -> Result<()> {
        let path = out.join(&c.slot);
        let loaded =
            Tensor::load_multi(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut controller = Vec::new();
        let _g = tch::no_grad_guard();
        let ev = &mut self.evaluator;
        for (name, t) in loaded {
            let (kind, index) = name.split_at(1);
            let i: usize = index
                .parse()
                .context("a checkpoint tensor has a bad name")?;
            match kind {
                "p" => {
                    let p = ev
                        .supernet
                        .params
                        .get(i)
                        .context("the checkpoint's supernet differs")?;
                    anyhow::ensure!(p.size() == t.size(), "the checkpoint's supernet differs");
                    p.shallow_clone().copy_(&t);
                }
                "m" => {
                    let m = ev
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
        ev.controller.lock().restore(&tensors, c.controller)?;
        ev.rng = c.rng;
        ev.shared_steps = c.shared_steps;
        ev.epoch_losses = c.epoch_losses;
        ev.shared_seconds = c.shared_seconds;
        ev.shared_cpu_seconds = c.shared_cpu_seconds;
        ev.scored = c.rows.len();
        self.state.searches[0].rng = c.search_rng;
        self.state.done = c.rows.len();
        self.rows = c.rows;
        self.seconds = c.seconds;
        Ok(())
    }

    /// The architecture to retrain: with sharing, the best of `final_samples` fresh samples on
    /// the whole dev split with the shared weights (ties: the first); without, the sample with
    /// the best reward (ties: the latest).
    pub fn choose(&mut self) -> (Arch, f64, Vec<(Arch, f64)>) {
        let ev = &mut self.evaluator;
        let controller = ev.controller.lock();
        if ev.sharing {
            let mut scored = Vec::new();
            for _ in 0..ev.settings.final_samples {
                let arch = controller.sample(&mut ev.rng);
                let acc = ev.supernet.accuracy(&arch, &ev.data.dev.x, &ev.data.dev.y);
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
                .unwrap_or_else(|| controller.sample(&mut ev.rng));
            let acc = best.map_or(0.0, |r| r.accuracy);
            (arch, acc, Vec::new())
        }
    }

    /// Retrains `arch` from scratch once per seed; test accuracies (None when interrupted).
    pub fn retrain(&self, arch: &Arch, seeds: &[u64], stop: &Stop) -> Result<Option<Vec<f64>>> {
        let ev = &self.evaluator;
        let plan = ev.plan(arch);
        let trainer = ev.trainer(ev.settings.final_epochs);
        let mut out = Vec::new();
        for &seed in seeds {
            let (_vs, net, outcome) = train_new(
                |p| Network::new(p, &plan),
                &ev.data,
                &trainer,
                seed,
                stop.flag(),
            )?;
            if outcome.ending == Ending::Interrupted {
                return Ok(None);
            }
            out.push(test_accuracy(&net, &ev.data, &trainer));
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
