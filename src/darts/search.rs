//! The DARTS search (Liu, Simonyan & Yang 2019; Katib's trial loop): the training split halved,
//! weights learning on the first half (SGD, cosine schedule per epoch, clipping) and alphas on
//! the second (Adam), one alpha step then one weight step per pair of mini-batches; per epoch a
//! row of rollouts.csv, every alpha in alphas.csv, the genotype and a checkpoint. After the
//! search, the found genotype and as many random ones are retrained (by default as the fixed
//! CNN baseline is trained); summary.json compares them.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::architect::{clip, first_order, second_order, Adam, Batch, Sgd, Unroll};
use super::config::{HESSIAN_EPS, NEAR_UNIFORM, NEAR_UNIFORM_SHARE};
use super::discrete::DiscreteNet;
use super::genotype::{self, Genotype};
use super::plots;
use super::settings::DartsSettings;
use super::supernet::{cross_entropy, edges, flatten, Supernet};
use crate::config::{DataSettings, FinalSettings, TrainerSettings};
use crate::data::{self, Splits};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::nn::child::permutation;
use crate::nn::tensors::TrainData;
use crate::nn::train::{test_accuracy, train_new, Ending};
use crate::outdir::{self, Stop};
use crate::output::plot::{curves, Curve};
use crate::output::progress::{say, Progress};
use crate::output::rows::{self, RowWriter};

/// The command name in run folders' markers.
pub const COMMAND: &str = "darts";
/// The image sets DARTS runs on.
pub const IMAGE_SETS: [&str; 4] = ["digits", "mnist", "fashion-mnist", "cifar10"];

const ROLLOUTS_HEADER: [&str; 11] = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "dev_loss",
    "dev_accuracy",
    "w_lr",
    "alpha_lr",
    "seconds",
    "genotype",
];
const ALPHAS_HEADER: [&str; 7] = [
    "epoch",
    "cell",
    "node",
    "input",
    "primitive",
    "alpha",
    "weight",
];

/// What `archsearch darts` was asked.
#[derive(Clone, Debug, Default)]
pub struct DartsOptions {
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub order: Option<u8>,
    pub algorithm_settings: Option<String>,
    pub search_space: Option<String>,
    pub num_layers: Option<String>,
    pub overrides: Vec<String>,
    pub seed: u64,
    pub device: String,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub resume: Option<PathBuf>,
    pub quiet: bool,
}

/// Settings from Katib's arguments, then `--order`, then `--set`, checked.
pub fn settings_from(
    algorithm_settings: Option<&str>,
    search_space: Option<&str>,
    num_layers: Option<&str>,
    order: Option<u8>,
    overrides: &[String],
) -> Result<DartsSettings, UsageError> {
    let mut s = DartsSettings::default();
    if let Some(text) = algorithm_settings {
        s.apply_algorithm_settings(text)?;
    }
    if let Some(text) = search_space {
        s.search_space = super::settings::parse_search_space(text)
            .map_err(|e| UsageError::new(format!("--search-space: {e}")))?;
    }
    if let Some(text) = num_layers {
        s.num_layers = super::settings::parse_num_layers(text)?;
    }
    if let Some(order) = order {
        s.order = order;
    }
    for assignment in overrides {
        s.set(assignment)?;
    }
    s.validate()?;
    Ok(s)
}

/// The splits of an image set, the training split cut to `train_images` when set.
fn load_images(dataset: &str, dir: Option<&Path>, train_images: usize) -> Result<Splits> {
    if !IMAGE_SETS.contains(&dataset) {
        return Err(UsageError::new(format!(
            "--dataset {dataset} is not an image set; DARTS searches convolutional cells on {}",
            IMAGE_SETS.join(", ")
        ))
        .into());
    }
    let source = data::images::source_for(dataset, dir)?;
    let mut splits = data::load(&source, &DataSettings::default())?;
    if train_images > 0 && train_images < splits.train.len() {
        splits.train = splits.train.slice(0..train_images);
    }
    if splits.train.len() < 4 {
        return Err(UsageError::new(format!(
            "the training split has {} images; DARTS halves it and needs at least 4",
            splits.train.len()
        ))
        .into());
    }
    Ok(splits)
}

/// One epoch's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub dev_loss: f64,
    pub dev_accuracy: f64,
    pub w_lr: f64,
    pub seconds: f64,
    /// The bilevel steps alone (the part a plain DARTS script times), wall and CPU seconds.
    #[serde(default)]
    pub step_seconds: f64,
    #[serde(default)]
    pub step_cpu_seconds: f64,
    /// The evaluation of the supernet on the validation half and the dev split, wall and CPU.
    #[serde(default)]
    pub eval_seconds: f64,
    #[serde(default)]
    pub eval_cpu_seconds: f64,
    pub genotype: String,
    /// Softmax weights `[kind][edge][primitive]` after the epoch.
    pub weights: Vec<Vec<Vec<f64>>>,
}

/// One final training of a genotype.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Retrained {
    /// "darts" or "random".
    pub source: String,
    pub genotype: String,
    pub seed: u64,
    pub test_accuracy: f64,
    pub best_dev_accuracy: f64,
    pub epochs: usize,
    pub parameters: i64,
    pub seconds: f64,
}

/// Everything a checkpoint holds besides tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    settings: DartsSettings,
    dataset: String,
    data_dir: Option<PathBuf>,
    seed: u64,
    epochs_done: usize,
    adam_steps: u64,
    rng: Pcg64,
    history: Vec<EpochRecord>,
    retrained: Vec<Retrained>,
    search_seconds: f64,
}

/// The tensors of the search, by checkpoint name.
fn named_tensors<'a>(net: &'a Supernet, sgd: &'a Sgd, adam: &'a Adam) -> Vec<(String, &'a Tensor)> {
    let mut out = Vec::new();
    let groups: [(&str, &[Tensor]); 6] = [
        ("w", std::slice::from_ref(&net.flat)),
        ("b", &net.buffers),
        ("a", &net.alphas),
        ("s", &sgd.buffers),
        ("m", &adam.m),
        ("v", &adam.v),
    ];
    for (prefix, ts) in groups {
        for (i, t) in ts.iter().enumerate() {
            out.push((format!("{prefix}{i}"), t));
        }
    }
    out
}

fn save_checkpoint(
    dir: &Path,
    net: &Supernet,
    sgd: &Sgd,
    adam: &Adam,
    state: &State,
) -> Result<()> {
    let json = serde_json::to_vec(state).context("cannot serialise the checkpoint")?;
    let json = Tensor::from_slice(&json);
    let mut named = named_tensors(net, sgd, adam);
    named.push(("state".into(), &json));
    let tmp = dir.join("checkpoint.ot.tmp");
    Tensor::save_multi(&named, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("checkpoint.ot"))
        .with_context(|| format!("cannot write the checkpoint in {}", dir.display()))
}

fn read_state(dir: &Path) -> Result<(State, Vec<(String, Tensor)>)> {
    let path = dir.join("checkpoint.ot");
    if !path.is_file() {
        return Err(UsageError::new(format!(
            "--resume {}: no checkpoint.ot there; a DARTS search writes one after its first epoch",
            dir.display()
        ))
        .into());
    }
    let tensors = Tensor::load_multi(&path)
        .map_err(|e| UsageError::new(format!("--resume: cannot read {}: {e}", path.display())))?;
    let bytes = tensors
        .iter()
        .find(|(n, _)| n == "state")
        .map(|(_, t)| Vec::<u8>::try_from(t))
        .ok_or_else(|| UsageError::new(format!("--resume: {} has no state", path.display())))?
        .map_err(|e| UsageError::new(format!("--resume: {}: {e}", path.display())))?;
    let state: State = serde_json::from_slice(&bytes)
        .map_err(|e| UsageError::new(format!("--resume: {}: {e}", path.display())))?;
    Ok((state, tensors))
}

fn restore(net: &Supernet, sgd: &Sgd, adam: &Adam, tensors: &[(String, Tensor)]) -> Result<()> {
    let _guard = tch::no_grad_guard();
    for (name, target) in named_tensors(net, sgd, adam) {
        let saved = tensors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| anyhow::anyhow!("the checkpoint lacks tensor {name}"))?;
        let mut target = target.shallow_clone();
        target
            .f_copy_(saved)
            .with_context(|| format!("checkpoint tensor {name} does not fit"))?;
    }
    Ok(())
}

/// Mean loss and accuracy of the supernet in eval mode on `x`, `y`.
fn evaluate(net: &Supernet, x: &Tensor, y: &Tensor, batch: usize) -> (f64, f64) {
    let _guard = tch::no_grad_guard();
    let n = y.size()[0];
    let (mut loss, mut correct) = (0.0, 0i64);
    let mut start = 0;
    while start < n {
        let len = (batch as i64).min(n - start);
        let (xb, yb) = (x.narrow(0, start, len), y.narrow(0, start, len));
        let logits = net.forward(&net.params, Some(&net.buffers), &net.alphas, &xb, false);
        loss += cross_entropy(&logits, &yb).double_value(&[]) * len as f64;
        correct += logits
            .argmax(-1, false)
            .eq_tensor(&yb)
            .sum(Kind::Int64)
            .int64_value(&[]);
        start += len;
    }
    (loss / n.max(1) as f64, correct as f64 / n.max(1) as f64)
}

/// Batch lengths over `n` images: a last batch of a single image is dropped (batch norm).
fn batch_lengths(n: usize, batch: usize) -> Vec<usize> {
    let mut lengths = vec![batch; n / batch];
    if n % batch > 1 {
        lengths.push(n % batch);
    }
    lengths
}

/// CPU seconds this process has used (user and system, every thread).
pub fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0;
    if ok {
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    } else {
        0.0
    }
}

/// Means of the epochs' timings, leaving out the first epoch (warm-up) when there are more.
fn timing(history: &[EpochRecord]) -> serde_json::Value {
    let kept = if history.len() > 1 {
        &history[1..]
    } else {
        history
    };
    let mean =
        |f: fn(&EpochRecord) -> f64| kept.iter().map(f).sum::<f64>() / kept.len().max(1) as f64;
    serde_json::json!({
        "epochs_averaged": kept.len(),
        "first_epoch_left_out": history.len() > 1,
        "step_seconds": mean(|r| r.step_seconds),
        "step_cpu_seconds": mean(|r| r.step_cpu_seconds),
        "eval_seconds": mean(|r| r.eval_seconds),
        "eval_cpu_seconds": mean(|r| r.eval_cpu_seconds),
        "seconds": mean(|r| r.seconds),
    })
}

/// Peak resident memory of this process in MiB (VmHWM), where the system reports it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// How the discrete networks are retrained, by `retrain_protocol`: "cnn", the general
/// trainer's settings (SGD with Nesterov momentum, cosine, weight decay, clipping, the best
/// dev epoch kept), as the fixed CNN baseline is trained, so the two accuracies compare; or
/// "final", the final-training protocol. Either for `retrain_epochs` epochs.
pub fn retrainer(settings: &DartsSettings) -> TrainerSettings {
    if settings.retrain_protocol == "final" {
        let fs = FinalSettings {
            max_epochs: settings.retrain_epochs,
            ..FinalSettings::default()
        };
        fs.trainer(fs.lr, fs.batch_size)
    } else {
        TrainerSettings {
            epochs: settings.retrain_epochs,
            lr: settings.retrain_lr,
            ..TrainerSettings::default()
        }
    }
}

/// Trains the discrete network of `genotype` once with the protocol `retrainer` gives.
pub fn retrain(
    genotype: &Genotype,
    settings: &DartsSettings,
    data: &TrainData,
    seed: u64,
    source: &str,
    stop: &AtomicBool,
) -> Result<Option<Retrained>> {
    let started = Instant::now();
    let trainer = retrainer(settings);
    let in_c = data.input_shape()[0];
    let classes = data.n_classes as i64;
    let build = |p: &tch::nn::Path| {
        DiscreteNet::new(
            p,
            genotype,
            settings.num_layers,
            settings.init_channels,
            settings.stem_multiplier,
            in_c,
            classes,
        )
    };
    let (_vs, net, outcome) = train_new(build, data, &trainer, seed, stop)?;
    if outcome.ending == Ending::Interrupted {
        return Ok(None);
    }
    Ok(Some(Retrained {
        source: source.into(),
        genotype: genotype.to_string(),
        seed,
        test_accuracy: test_accuracy(&net, data, &trainer),
        best_dev_accuracy: outcome.best_dev_accuracy,
        epochs: outcome.epochs.len(),
        parameters: net.parameter_count(),
        seconds: started.elapsed().as_secs_f64(),
    }))
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn cell_name(kind: usize) -> &'static str {
    if kind == 0 {
        "normal"
    } else {
        "reduce"
    }
}

/// `archsearch darts`.
pub fn run(opts: &DartsOptions) -> Result<i32> {
    let stop = Stop::on_signals()?;
    let device = outdir::parse_device(&opts.device)?;
    // Everything the user gave is checked before any file is written.
    let (state, saved, dir) = match &opts.resume {
        Some(dir) => {
            outdir::check_resume_command(dir, COMMAND)?;
            let (state, tensors) = read_state(dir)?;
            (state, Some(tensors), dir.clone())
        }
        None => {
            let settings = settings_from(
                opts.algorithm_settings.as_deref(),
                opts.search_space.as_deref(),
                opts.num_layers.as_deref(),
                opts.order,
                &opts.overrides,
            )?;
            // The data is read (and its errors reported) before the folder is made.
            load_images(
                &opts.dataset,
                opts.data_dir.as_deref(),
                settings.train_images,
            )?;
            if let Some(out) = &opts.out {
                outdir::check_out(out, opts.force)?;
            }
            let state = State {
                settings,
                dataset: opts.dataset.clone(),
                data_dir: opts.data_dir.clone(),
                seed: opts.seed,
                epochs_done: 0,
                adam_steps: 0,
                rng: Pcg64::seed_from_u64(opts.seed),
                history: Vec::new(),
                retrained: Vec::new(),
                search_seconds: 0.0,
            };
            let dir = outdir::prepare(opts.out.as_deref(), opts.force, COMMAND)?;
            (state, None, dir)
        }
    };
    tch::set_num_threads(crate::config::TORCH_THREADS);
    search(state, saved, &dir, device, opts.quiet, &stop)
}

fn search(
    mut state: State,
    saved: Option<Vec<(String, Tensor)>>,
    dir: &Path,
    device: Device,
    quiet: bool,
    stop: &Stop,
) -> Result<i32> {
    let s = state.settings.clone();
    let splits = load_images(&state.dataset, state.data_dir.as_deref(), s.train_images)?;
    let data = TrainData::new(&splits, device);
    let n = data.train.len() as i64;
    let half = n / 2;
    let (xw, yw) = (
        data.train.x.narrow(0, 0, half),
        data.train.y.narrow(0, 0, half),
    );
    let (xa, ya) = (
        data.train.x.narrow(0, half, n - half),
        data.train.y.narrow(0, half, n - half),
    );
    let in_c = data.input_shape()[0];
    let classes = data.n_classes as i64;
    let net = Supernet::new(&s, in_c, classes, state.seed, device);
    // The weights step as one flat vector (the parameters are views of it).
    let flat = std::slice::from_ref(&net.flat);
    let mut sgd = Sgd::new(flat, s.w_momentum, s.w_weight_decay);
    let mut adam = Adam::new(&net.alphas, s.alpha_weight_decay);
    let primitives = net.primitives.clone();
    let edge_list = edges(s.num_nodes);
    let (rollouts_path, alphas_path) = (dir.join("rollouts.csv"), dir.join("alphas.csv"));
    let (mut rows_out, mut alphas_out) = match &saved {
        Some(tensors) => {
            restore(&net, &sgd, &adam, tensors)?;
            adam.steps = state.adam_steps;
            // Rows written after the checkpoint (a kill between the two) are dropped.
            for (path, header) in [
                (&rollouts_path, &ROLLOUTS_HEADER[..]),
                (&alphas_path, &ALPHAS_HEADER[..]),
            ] {
                let kept: Vec<Vec<String>> = match rows::read(path) {
                    Ok((_, records)) => records
                        .iter()
                        .filter(|r| {
                            r.get(0)
                                .and_then(|e| e.parse::<usize>().ok())
                                .is_some_and(|e| e <= state.epochs_done)
                        })
                        .map(|r| r.iter().map(String::from).collect())
                        .collect(),
                    Err(_) => Vec::new(),
                };
                outdir::write_atomically(path, &rows::text(header, &kept))?;
            }
            (
                RowWriter::append_to(&rollouts_path)?,
                RowWriter::append_to(&alphas_path)?,
            )
        }
        None => (
            RowWriter::create(&rollouts_path, &ROLLOUTS_HEADER)?,
            RowWriter::create(&alphas_path, &ALPHAS_HEADER)?,
        ),
    };
    if state.epochs_done < s.num_epochs {
        say(
            quiet,
            &format!(
                "DARTS order {} on {} ({} + {} training images, {} cells, {} nodes, {} primitives): epochs {}..{} into {}",
                s.order,
                state.dataset,
                half,
                n - half,
                s.num_layers,
                s.num_nodes,
                primitives.len(),
                state.epochs_done + 1,
                s.num_epochs,
                dir.display()
            ),
        );
    }
    let eval_batch = crate::config::EVAL_BATCH_SIZE;
    let mut progress = Progress::epochs(s.num_epochs, state.epochs_done, quiet);
    while state.epochs_done < s.num_epochs {
        let epoch = state.epochs_done;
        let started = Instant::now();
        let cpu_started = cpu_seconds();
        let lr = crate::nn::train::cosine_lr(s.w_lr, s.w_lr_min, epoch, s.num_epochs);
        let order_w = permutation(half as usize, &mut state.rng, device);
        let order_a = permutation((n - half) as usize, &mut state.rng, device);
        let lw = batch_lengths(half as usize, s.batch_size);
        let la = batch_lengths((n - half) as usize, s.batch_size);
        let steps = lw.len().min(la.len());
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0usize);
        let (mut at_w, mut at_a) = (0i64, 0i64);
        for step in 0..steps {
            if stop.requested() {
                progress.finish();
                say(
                    quiet,
                    &format!(
                        "interrupted in epoch {}; the last checkpoint holds {} epochs: continue with `archsearch darts --resume {}`",
                        epoch + 1,
                        state.epochs_done,
                        dir.display()
                    ),
                );
                return Ok(EXIT_INTERRUPTED);
            }
            let iw = order_w.narrow(0, at_w, lw[step] as i64);
            let ia = order_a.narrow(0, at_a, la[step] as i64);
            at_w += lw[step] as i64;
            at_a += la[step] as i64;
            let (xt, yt) = (xw.index_select(0, &iw), yw.index_select(0, &iw));
            let (xv, yv) = (xa.index_select(0, &ia), ya.index_select(0, &ia));
            // Phase 1: the alphas.
            let train = Batch { x: &xt, y: &yt };
            let val = Batch { x: &xv, y: &yv };
            let grads = if s.order == 2 {
                let momentum_term = sgd.momentum_terms();
                let unroll = Unroll {
                    xi: lr,
                    momentum_term: &momentum_term,
                    weight_decay: s.w_weight_decay,
                    hessian_eps: HESSIAN_EPS,
                };
                second_order(&net, &net.params, &net.alphas, &train, &val, &unroll)
            } else {
                first_order(&net, &net.params, &net.alphas, &val)
            };
            adam.step(&net.alphas, &grads, s.alpha_lr);
            // Phase 2: the weights.
            let logits = net.forward(&net.params, Some(&net.buffers), &net.alphas, &xt, true);
            let loss = cross_entropy(&logits, &yt);
            let value = loss.double_value(&[]);
            let grads = Tensor::run_backward(&[loss], &net.params, false, false);
            let mut grads = [flatten(&grads)];
            let norm = clip(&mut grads, s.w_grad_clip);
            if !value.is_finite() || !norm.is_finite() {
                return Err(anyhow::anyhow!(
                    "the supernet diverged in epoch {} (loss {value}); try a smaller w_lr (now {}) or alpha_lr (now {})",
                    epoch + 1,
                    s.w_lr,
                    s.alpha_lr
                ));
            }
            sgd.step(flat, &grads, lr);
            loss_sum += value * lw[step] as f64;
            seen += lw[step];
            correct += logits
                .detach()
                .argmax(-1, false)
                .eq_tensor(&yt)
                .sum(Kind::Int64)
                .int64_value(&[]);
            if !quiet && s.print_step > 0 && (step + 1) % s.print_step == 0 {
                progress.line(&format!(
                    "  epoch {} step {}/{steps}: loss {:.4}",
                    epoch + 1,
                    step + 1,
                    loss_sum / seen.max(1) as f64
                ));
            }
        }
        let (step_seconds, step_cpu_seconds) =
            (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_started);
        let (eval_started, eval_cpu_started) = (Instant::now(), cpu_seconds());
        let (val_loss, val_accuracy) = evaluate(&net, &xa, &ya, eval_batch);
        let (dev_loss, dev_accuracy) = evaluate(&net, &data.dev.x, &data.dev.y, eval_batch);
        let (eval_seconds, eval_cpu_seconds) = (
            eval_started.elapsed().as_secs_f64(),
            cpu_seconds() - eval_cpu_started,
        );
        let weights = net.weights();
        let g = genotype::derive(&weights, &primitives, s.num_nodes);
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy,
            dev_loss,
            dev_accuracy,
            w_lr: lr,
            seconds: started.elapsed().as_secs_f64(),
            step_seconds,
            step_cpu_seconds,
            eval_seconds,
            eval_cpu_seconds,
            genotype: g.to_string(),
            weights: weights.clone(),
        };
        rows_out.append(&[vec![
            record.epoch.to_string(),
            record.train_loss.to_string(),
            record.train_accuracy.to_string(),
            record.val_loss.to_string(),
            record.val_accuracy.to_string(),
            record.dev_loss.to_string(),
            record.dev_accuracy.to_string(),
            record.w_lr.to_string(),
            s.alpha_lr.to_string(),
            record.seconds.to_string(),
            record.genotype.clone(),
        ]])?;
        let mut alpha_rows = Vec::new();
        for (kind, alpha) in net.alphas.iter().enumerate() {
            for (e, (node, input)) in edge_list.iter().enumerate() {
                for (k, p) in primitives.iter().enumerate() {
                    alpha_rows.push(vec![
                        (epoch + 1).to_string(),
                        cell_name(kind).to_string(),
                        (node + 2).to_string(),
                        input.to_string(),
                        p.name().to_string(),
                        alpha.double_value(&[e as i64, k as i64]).to_string(),
                        weights[kind][e][k].to_string(),
                    ]);
                }
            }
        }
        alphas_out.append(&alpha_rows)?;
        state.search_seconds += record.seconds;
        progress.line(&format!(
            "epoch {}/{}  train {:.3}  val {:.3}  dev {:.3}  {:.1} s  {}",
            epoch + 1,
            s.num_epochs,
            record.train_accuracy,
            val_accuracy,
            dev_accuracy,
            record.seconds,
            record.genotype
        ));
        let spread = mean_spread(&weights);
        state.history.push(record);
        state.epochs_done += 1;
        state.adam_steps = adam.steps;
        save_checkpoint(dir, &net, &sgd, &adam, &state)?;
        progress.update(
            state.epochs_done,
            &format!("dev {dev_accuracy:.3}  mean alpha spread {spread:.3}"),
        );
    }
    progress.finish();
    finish(state, &net, dir, &data, quiet, stop)
}

/// After the search: the genotype, the figures, the retrainings and the summary.
fn finish(
    mut state: State,
    net: &Supernet,
    dir: &Path,
    data: &TrainData,
    quiet: bool,
    stop: &Stop,
) -> Result<i32> {
    let s = state.settings.clone();
    let primitives = net.primitives.clone();
    let last = state
        .history
        .last()
        .ok_or_else(|| anyhow::anyhow!("the search ran no epoch"))?;
    let found = genotype::derive(&last.weights, &primitives, s.num_nodes);
    outdir::write_atomically(&dir.join("genotype.txt"), format!("{found}\n").as_bytes())?;
    crate::outln!("{}", found.katib_line());
    // The figures.
    let epochs: Vec<&EpochRecord> = state.history.iter().collect();
    let series = |f: fn(&EpochRecord) -> f64| epochs.iter().map(|r| f(r)).collect::<Vec<f64>>();
    curves(
        &dir.join("accuracy.png"),
        "DARTS supernet accuracy per epoch",
        "epoch",
        "accuracy",
        &[
            Curve {
                label: "train (weights' half)".into(),
                values: series(|r| r.train_accuracy),
                band: None,
            },
            Curve {
                label: "validation (alphas' half)".into(),
                values: series(|r| r.val_accuracy),
                band: None,
            },
            Curve {
                label: "dev".into(),
                values: series(|r| r.dev_accuracy),
                band: None,
            },
        ],
        (0.0, 1.0),
    )?;
    let history: Vec<Vec<Vec<Vec<f64>>>> =
        state.history.iter().map(|r| r.weights.clone()).collect();
    plots::alphas(
        &dir.join("alphas.png"),
        &history,
        &primitives,
        &edges(s.num_nodes),
    )?;
    plots::cell(&dir.join("normal.png"), &found.normal, "normal cell")?;
    if !found.reduce.is_empty() {
        plots::cell(&dir.join("reduce.png"), &found.reduce, "reduction cell")?;
    }
    // The retrainings: the found genotype over the retrain seeds, then the random genotypes.
    let mut rng = Pcg64::seed_from_u64(crate::seeds::splitmix64(state.seed ^ RANDOM_STREAM));
    let randoms: Vec<Genotype> = (0..s.random_genotypes)
        .map(|_| genotype::random(&primitives, s.num_nodes, net.has_reduction(), &mut rng))
        .collect();
    let jobs: Vec<(&Genotype, u64, &str)> = (0..s.retrain_seeds)
        .map(|i| (&found, state.seed + i as u64, "darts"))
        .chain(
            randoms
                .iter()
                .enumerate()
                .map(|(i, g)| (g, state.seed + i as u64, "random")),
        )
        .collect();
    let total = jobs.len();
    for (i, (g, seed, source)) in jobs.into_iter().enumerate().skip(state.retrained.len()) {
        say(
            quiet,
            &format!(
                "final training {}/{total} ({source} genotype, seed {seed})",
                i + 1
            ),
        );
        match retrain(g, &s, data, seed, source, stop.flag())? {
            Some(r) => {
                say(quiet, &format!("  test accuracy {:.4}", r.test_accuracy));
                state.retrained.push(r);
                // A checkpoint after each, so a resumed run continues with the next.
                save_checkpoint_state_only(dir, &state)?;
            }
            None => {
                say(
                    quiet,
                    &format!(
                        "interrupted; continue with `archsearch darts --resume {}`",
                        dir.display()
                    ),
                );
                return Ok(EXIT_INTERRUPTED);
            }
        }
    }
    write_summary(&state, &found, dir)?;
    Ok(0)
}

/// Keeps the random genotypes' generator apart from the batches'.
const RANDOM_STREAM: u64 = 0xDA27_5DA2_75DA_275D;

/// Rewrites the state in the checkpoint, keeping its tensors (the search is over).
fn save_checkpoint_state_only(dir: &Path, state: &State) -> Result<()> {
    let path = dir.join("checkpoint.ot");
    let mut tensors =
        Tensor::load_multi(&path).with_context(|| format!("cannot read {}", path.display()))?;
    tensors.retain(|(n, _)| n != "state");
    let json = serde_json::to_vec(state).context("cannot serialise the checkpoint")?;
    tensors.push(("state".into(), Tensor::from_slice(&json)));
    let tmp = dir.join("checkpoint.ot.tmp");
    Tensor::save_multi(&tensors, &tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// Each edge's spread of softmax weights (max - min), per cell kind.
fn edge_spreads(weights: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    weights
        .iter()
        .map(|kind| {
            kind.iter()
                .map(|row| {
                    let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let min = row.iter().copied().fold(f64::INFINITY, f64::min);
                    max - min
                })
                .collect()
        })
        .collect()
}

/// The mean over every edge of `edge_spreads` (0 without edges).
fn mean_spread(weights: &[Vec<Vec<f64>>]) -> f64 {
    let all: Vec<f64> = edge_spreads(weights).into_iter().flatten().collect();
    all.iter().sum::<f64>() / all.len().max(1) as f64
}

fn write_summary(state: &State, found: &Genotype, dir: &Path) -> Result<()> {
    let s = &state.settings;
    let last = state.history.last();
    // Each edge's spread of softmax weights (max - min) at the end.
    let spreads: Vec<Vec<f64>> = last.map(|r| edge_spreads(&r.weights)).unwrap_or_default();
    let all: Vec<f64> = spreads.iter().flatten().copied().collect();
    let near = all.iter().filter(|&&x| x < NEAR_UNIFORM).count();
    let warning = (all.is_empty() || near as f64 > NEAR_UNIFORM_SHARE * all.len() as f64).then(|| {
        format!(
            "{near} of {} edges end with softmax weights spread less than {NEAR_UNIFORM}: the alphas stayed near uniform and the genotype is close to noise; run more epochs or raise alpha_lr",
            all.len()
        )
    });
    if let Some(w) = &warning {
        crate::errln!("warning: {w}");
    }
    let pick = |source: &str| -> Vec<&Retrained> {
        state
            .retrained
            .iter()
            .filter(|r| r.source == source)
            .collect()
    };
    let accs = |rs: &[&Retrained]| rs.iter().map(|r| r.test_accuracy).collect::<Vec<f64>>();
    let (darts, random) = (pick("darts"), pick("random"));
    let (dm, dsd) = mean_sd(&accs(&darts));
    let (rm, rsd) = mean_sd(&accs(&random));
    let edges_total = found.all_edges().count();
    let summary = serde_json::json!({
        "command": COMMAND,
        "dataset": state.dataset,
        "seed": state.seed,
        "settings": s,
        "epochs": state.epochs_done,
        "search_seconds": state.search_seconds,
        "seconds_per_epoch": state.search_seconds / state.epochs_done.max(1) as f64,
        "epoch_timing": timing(&state.history),
        "genotype": found.to_string(),
        "katib_line": found.katib_line(),
        "supernet_last_epoch": last.map(|r| serde_json::json!({
            "train_accuracy": r.train_accuracy,
            "val_accuracy": r.val_accuracy,
            "dev_accuracy": r.dev_accuracy,
        })),
        "edge_weight_spread": {
            "normal": spreads.first(),
            "reduce": spreads.get(1),
            "min": all.iter().copied().fold(f64::INFINITY, f64::min),
            "mean": all.iter().sum::<f64>() / all.len().max(1) as f64,
            "near_uniform_threshold": NEAR_UNIFORM,
            "near_uniform_edges": near,
        },
        "near_uniform_warning": warning,
        "parameter_free_operations": {
            "count": found.parameter_free_edges(),
            "of": edges_total,
        },
        "retrained": {
            "protocol": if s.retrain_protocol == "final" {
                "final training (the final-training protocol's settings, epochs = retrain_epochs)"
            } else {
                "cnn (the general trainer's settings, as the fixed CNN baseline is trained; epochs = retrain_epochs)"
            },
            "darts": { "test_accuracy_mean": dm, "test_accuracy_sd": dsd, "runs": darts },
            "random": { "test_accuracy_mean": rm, "test_accuracy_sd": rsd, "runs": random },
            "darts_minus_random": if darts.is_empty() || random.is_empty() { None } else { Some(dm - rm) },
        },
        "peak_resident_mib": peak_rss_mib(),
    });
    outdir::write_json_atomically(&dir.join("summary.json"), &summary)
}

/// What `archsearch darts-train` was asked.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    pub genotype: String,
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub num_layers: Option<String>,
    pub overrides: Vec<String>,
    pub seed: u64,
    pub device: String,
    pub quiet: bool,
}

/// `archsearch darts-train`: the discrete network of a genotype, trained with the retraining
/// protocol (`retrainer`) over `retrain_seeds` seeds; prints each test accuracy and the mean.
pub fn train_genotype(opts: &TrainOptions) -> Result<i32> {
    let stop = Stop::on_signals()?;
    let device = outdir::parse_device(&opts.device)?;
    let genotype = Genotype::parse(&opts.genotype)?;
    let mut s = settings_from(
        None,
        None,
        opts.num_layers.as_deref(),
        None,
        &opts.overrides,
    )?;
    s.num_nodes = genotype.num_nodes();
    DiscreteNet::check(&genotype, s.num_layers)?;
    let splits = load_images(&opts.dataset, opts.data_dir.as_deref(), s.train_images)?;
    tch::set_num_threads(crate::config::TORCH_THREADS);
    let data = TrainData::new(&splits, device);
    let mut accs = Vec::new();
    for i in 0..s.retrain_seeds {
        let seed = opts.seed + i as u64;
        match retrain(&genotype, &s, &data, seed, "given", stop.flag())? {
            Some(r) => {
                crate::outln!(
                    "seed {seed}: test accuracy {:.4} (best dev {:.4}, {} epochs, {} parameters, {:.1} s)",
                    r.test_accuracy,
                    r.best_dev_accuracy,
                    r.epochs,
                    r.parameters,
                    r.seconds
                );
                accs.push(r.test_accuracy);
            }
            None => return Ok(EXIT_INTERRUPTED),
        }
    }
    let (mean, sd) = mean_sd(&accs);
    crate::outln!("Test-Accuracy={mean}");
    say(
        opts.quiet,
        &format!("mean {mean:.4}, sd {sd:.4} over {} seeds", accs.len()),
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_drop_a_last_single_image() {
        assert_eq!(batch_lengths(10, 4), [4, 4, 2]);
        assert_eq!(batch_lengths(9, 4), [4, 4]);
        assert_eq!(batch_lengths(8, 4), [4, 4]);
        assert_eq!(mean_sd(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
    }

    #[test]
    fn the_retraining_follows_the_chosen_protocol_with_darts_epochs() {
        let s = DartsSettings {
            retrain_epochs: 7,
            ..DartsSettings::default()
        };
        // The default: the general trainer, as the fixed CNN baseline is trained.
        let t = retrainer(&s);
        let general = TrainerSettings::default();
        assert_eq!(t.epochs, 7);
        assert_eq!(
            TrainerSettings {
                epochs: 7,
                ..general.clone()
            },
            t
        );
        assert_eq!(DartsSettings::default().retrain_epochs, general.epochs);
        assert_eq!(DartsSettings::default().retrain_lr, general.lr);
        // `retrain_lr` sets the general trainer's peak learning rate and nothing else.
        let slow = DartsSettings {
            retrain_lr: 0.025,
            ..s.clone()
        };
        assert_eq!(
            TrainerSettings {
                epochs: 7,
                lr: 0.025,
                ..general.clone()
            },
            retrainer(&slow)
        );
        let s = DartsSettings {
            retrain_protocol: "final".into(),
            ..s
        };
        let t = retrainer(&s);
        let fs = FinalSettings::default();
        assert_eq!((t.epochs, t.lr, t.batch_size), (7, fs.lr, fs.batch_size));
        assert!(t.keep_best);
    }
}
