//! The commands of the `enas` feature. `archsearch enas`: read the space (a Katib Experiment,
//! a bare nasConfig, or spaces/enas-digits.yaml), check every input before any file is
//! written, run the search (`search.rs`) with a checkpoint per epoch, resume one, and write
//! rollouts.csv, summary.json, Katib's architecture.json and nn_config.json, and the figures.
//! `archsearch enas-trial`: what a Katib ENAS trial container does, with archsearch's trainer.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::config::{EnasSettings, TRIAL_BATCH_SIZE, TRIAL_LR};
use super::evaluator::Problem;
use super::katib::{self, KatibInput};
use super::network::{Network, Plan};
use super::ops::OpKind;
use super::search::{self, mean_sd, Outcome, Row, Search, HEADER};
use super::space::{self, single_quoted, Space};
use super::supernet;
use crate::config::{DataSettings, Optimizer, TrainerSettings, TORCH_THREADS};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::nn::tensors::TrainData;
use crate::nn::train::train_new;
use crate::outdir::{self, Stop};
use crate::output::progress::say;
use crate::output::rows::RowWriter;
use crate::seeds::retrain_seed;

/// The command name in run markers.
pub const COMMAND: &str = "enas";
/// The default space.
pub const DIGITS_SPACE: &str = include_str!("../../spaces/enas-digits.yaml");

/// What `archsearch enas` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct EnasOptions {
    pub katib_experiment: Option<PathBuf>,
    pub space: Option<PathBuf>,
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
    pub device: String,
    pub no_sharing: bool,
    pub overrides: Vec<String>,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub resume: Option<PathBuf>,
    pub quiet: bool,
}

/// What `archsearch enas-trial` is asked to do.
#[derive(Clone, Debug)]
pub struct TrialOptions {
    pub architecture: String,
    pub nn_config: String,
    pub num_epochs: usize,
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
    pub device: String,
}

/// Loads an image dataset by name (the other datasets have no images for a conv net).
fn load_images(dataset: &str, dir: Option<&Path>, device: tch::Device) -> Result<TrainData> {
    let source = crate::data::images::source_for(dataset, dir)?;
    if !matches!(source, Source::Images(_)) {
        return Err(UsageError::new(format!(
            "--dataset {dataset} has no images; ENAS builds conv nets: use digits, mnist, fashion-mnist or cifar10"
        ))
        .into());
    }
    let splits = data::load(&source, &DataSettings::default())?;
    Ok(TrainData::new(&splits, device))
}

/// Katib's sizes against the data's: input [height, width, channels], the last output size
/// the number of classes.
fn check_sizes(
    input: &[i64],
    output: &[i64],
    data: &TrainData,
    field: &str,
) -> Result<(), UsageError> {
    let s = data.input_shape();
    let want = [s[1], s[2], s[0]];
    if input != want {
        return Err(UsageError::new(format!(
            "{field}inputSizes is {input:?}, but the dataset's images are {want:?} (height, width, channels); set it to {want:?}"
        )));
    }
    let classes = data.n_classes as i64;
    if output.last() != Some(&classes) {
        return Err(UsageError::new(format!(
            "{field}outputSizes is {output:?}, but the dataset has {classes} classes; set it to [{classes}]"
        )));
    }
    Ok(())
}

/// The inputs of a fresh run, read and checked: the Katib file, settings and data.
struct Prepared {
    problem: Problem,
    inputs: Value,
}

fn prepare(
    options: &EnasOptions,
    space_text: Option<(String, bool)>,
    settings: Option<EnasSettings>,
) -> Result<Prepared> {
    let (text, experiment) = match space_text {
        Some(t) => t,
        None => match (&options.katib_experiment, &options.space) {
            (Some(p), _) => (read_text(p, "--katib-experiment")?, true),
            (None, Some(p)) => (read_text(p, "--space")?, false),
            (None, None) => (DIGITS_SPACE.to_string(), false),
        },
    };
    let doc = katib::parse_yaml(&text)?;
    let KatibInput {
        space,
        algorithm_settings,
        ..
    } = katib::read(&doc, experiment)?;
    let settings = match settings {
        Some(s) => s,
        None => {
            let mut s = EnasSettings::default();
            katib::apply_settings(&mut s, &algorithm_settings)?;
            for o in &options.overrides {
                s.set(o).map_err(UsageError::new)?;
            }
            s.validate().map_err(UsageError::new)?;
            s
        }
    };
    let kinds: Vec<OpKind> = space
        .operations
        .iter()
        .map(|o| OpKind::from_operation(o).map_err(UsageError::new))
        .collect::<Result<_, _>>()?;
    let device = outdir::parse_device(&options.device)?;
    let data = load_images(&options.dataset, options.data_dir.as_deref(), device)?;
    let field = if experiment {
        "spec.nasConfig.graphConfig."
    } else {
        "nasConfig.graphConfig."
    };
    check_sizes(&space.input_sizes, &space.output_sizes, &data, field)?;
    supernet::check_size(
        &kinds,
        space.num_layers,
        data.input_shape()[0],
        data.n_classes as i64,
    )
    .map_err(UsageError::new)?;
    if data.train.len() < 2 || data.dev.is_empty() {
        return Err(
            UsageError::new("the dataset's train or dev split is too small to search on").into(),
        );
    }
    let inputs = json!({
        "space_yaml": text,
        "experiment": experiment,
        "dataset": options.dataset,
        "data_dir": options.data_dir,
        "seed": options.seed,
        "device": options.device,
        "sharing": !options.no_sharing,
    });
    Ok(Prepared {
        problem: Problem {
            space,
            kinds,
            settings,
            data,
        },
        inputs,
    })
}

fn read_text(path: &Path, flag: &str) -> Result<String, UsageError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| UsageError::new(format!("{flag} {}: cannot read it: {e}", path.display())))?;
    if meta.len() as usize > super::config::SPACE_BYTES_MAX {
        return Err(UsageError::new(format!(
            "{flag} {}: the file is larger than {} bytes (SPACE_BYTES_MAX in src/enas/config.rs)",
            path.display(),
            super::config::SPACE_BYTES_MAX
        )));
    }
    std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("{flag} {}: cannot read it: {e}", path.display())))
}

/// `archsearch enas`.
pub fn run(options: &EnasOptions) -> Result<i32> {
    tch::set_num_threads(TORCH_THREADS);
    let started = Instant::now();
    let (out, mut search, resumed) = match &options.resume {
        Some(dir) => {
            outdir::check_resume_command(dir, COMMAND)?;
            let checkpoint = search::read_checkpoint(dir).map_err(|e| {
                UsageError::new(format!(
                    "--resume {}: no checkpoint of archsearch enas there ({e:#})",
                    dir.display()
                ))
            })?;
            let inputs = checkpoint.inputs.clone();
            let text = inputs["space_yaml"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let experiment = inputs["experiment"].as_bool().unwrap_or(false);
            let same = EnasOptions {
                dataset: inputs["dataset"].as_str().unwrap_or("digits").to_string(),
                data_dir: inputs["data_dir"].as_str().map(PathBuf::from),
                seed: inputs["seed"].as_u64().unwrap_or(0),
                device: inputs["device"].as_str().unwrap_or("cpu").to_string(),
                no_sharing: !checkpoint.sharing,
                ..EnasOptions::default()
            };
            let p = prepare(
                &same,
                Some((text, experiment)),
                Some(checkpoint.settings.clone()),
            )?;
            let mut s = Search::new(
                p.problem,
                checkpoint.sharing,
                same.seed,
                p.inputs,
                Stop::on_signals()?,
            );
            s.restore(dir, checkpoint)?;
            (dir.clone(), s, true)
        }
        None => {
            let p = prepare(options, None, None)?;
            let out = outdir::prepare(options.out.as_deref(), options.force, COMMAND)?;
            let s = Search::new(
                p.problem,
                !options.no_sharing,
                options.seed,
                p.inputs,
                Stop::on_signals()?,
            );
            (out, s, false)
        }
    };
    let stop = Stop::on_signals()?;
    let quiet = options.quiet;
    let mut csv = RowWriter::create(&out.join("rollouts.csv"), &HEADER)?;
    if !search.rows.is_empty() {
        csv.append(&search.rows.iter().map(row_fields).collect::<Vec<_>>())?;
    }
    say(
        quiet,
        &format!(
            "archsearch enas: {} layers, {} operations, {} epochs, parameter sharing {}{}; writing to {}",
            search.evaluator.space.num_layers,
            search.evaluator.space.num_operations(),
            search.settings().epochs,
            if search.evaluator.sharing { "on" } else { "off (every sample trained from scratch)" },
            if resumed { format!(", resumed after epoch {}", search.epochs_done()) } else { String::new() },
            out.display()
        ),
    );
    if let Outcome::Interrupted = search.run(&out, &mut csv, quiet)? {
        return interrupted(&out, quiet);
    }
    let search_seconds = search.seconds;
    let final_started = Instant::now();
    let seed = search.inputs["seed"].as_u64().unwrap_or(options.seed);
    super::deepcave::write_deepcave(
        &out.join(outdir::DEEPCAVE_DIR),
        &search.evaluator.space,
        &search.rows,
        seed,
        search.evaluator.sharing,
    )?;
    let (arch, dev_accuracy, candidates) = search.choose();
    let seeds: Vec<u64> = (0..search.settings().retrain_seeds)
        .map(|i| retrain_seed(seed, i))
        .collect();
    say(
        quiet,
        &format!(
            "best architecture {} (dev accuracy {dev_accuracy:.3}); retraining it from scratch with {} seeds",
            Space::architecture_json(&arch),
            seeds.len()
        ),
    );
    let Some(tests) = search.retrain(&arch, &seeds, &stop)? else {
        return interrupted(&out, quiet);
    };
    let final_seconds = final_started.elapsed().as_secs_f64();
    let (mean, sd) = mean_sd(&tests);
    let arch_json = Space::architecture_json(&arch);
    let nn_json = search.evaluator.space.nn_config_json(&arch);
    outdir::write_atomically(&out.join("architecture.json"), arch_json.as_bytes())?;
    outdir::write_atomically(&out.join("nn_config.json"), nn_json.as_bytes())?;
    let ev = &search.evaluator;
    let plan = ev.plan(&arch);
    let summary = json!({
        "command": COMMAND,
        "parameter_sharing": ev.sharing,
        "seed": seed,
        "dataset": search.inputs["dataset"],
        "settings": ev.settings,
        "space": {
            "num_layers": ev.space.num_layers,
            "operations": ev.space.operations.iter().map(|o| o.label()).collect::<Vec<_>>(),
        },
        "search_seconds": search_seconds,
        "final_seconds": final_seconds,
        "wall_seconds": search_seconds + final_seconds,
        "epochs": search.epochs_done(),
        "controller_samples": search.rows.len(),
        "shared_steps": ev.shared_steps,
        "shared_epoch_losses": ev.epoch_losses,
        "shared_seconds_per_epoch": ev.shared_seconds,
        "shared_cpu_seconds_per_epoch": ev.shared_cpu_seconds,
        "best": {
            "architecture": arch,
            "katib_architecture": arch_json,
            "katib_nn_config": serde_json::from_str::<Value>(&nn_json).unwrap_or(Value::Null),
            "katib_trial_parameters": {
                "architecture": single_quoted(&arch_json),
                "nn_config": single_quoted(&nn_json),
            },
            "operations": arch.iter().map(|r| ev.space.operations[r[0] as usize].label()).collect::<Vec<_>>(),
            "weights": plan.weight_count(),
            "dev_accuracy": dev_accuracy,
            "test_accuracy_mean": mean,
            "test_accuracy_sd": sd,
            "test_accuracies": tests,
            "retrain_seeds": seeds,
        },
        "final_candidates": candidates.iter().map(|(a, d)| json!({"architecture": Space::architecture_json(a), "dev_accuracy": d})).collect::<Vec<_>>(),
    });
    outdir::write_json_atomically(&out.join("summary.json"), &summary)?;
    let rewards: Vec<f64> = search.rows.iter().map(|r| r.reward).collect();
    super::plot::accuracy(
        &out.join("accuracy.png"),
        &rewards,
        &ev.epoch_losses,
        crate::config::MOVING_AVERAGE,
    )?;
    super::plot::architecture(
        &out.join("architecture.png"),
        &ev.space,
        &arch,
        &format!(
            "ENAS on {}: test accuracy {:.2} % (sd {:.2}) over {} retrainings",
            search.inputs["dataset"].as_str().unwrap_or(""),
            100.0 * mean,
            100.0 * sd,
            tests.len()
        ),
    )?;
    // Katib's metrics collector reads these lines when the search runs as one Katib trial.
    crate::outln!("Validation-Accuracy={dev_accuracy}");
    crate::outln!("Test-Accuracy={mean}");
    say(
        quiet,
        &format!(
            "done in {:.1}s (search {:.1}s, final {:.1}s): test accuracy {:.4} (sd {:.4}) over {} seeds; Katib's strings in {}/architecture.json and nn_config.json",
            started.elapsed().as_secs_f64(),
            search_seconds,
            final_seconds,
            mean,
            sd,
            tests.len(),
            out.display()
        ),
    );
    Ok(0)
}

fn row_fields(r: &Row) -> Vec<String> {
    vec![
        r.epoch.to_string(),
        r.step.to_string(),
        r.architecture.clone(),
        r.reward.to_string(),
        r.accuracy.to_string(),
        r.baseline.to_string(),
        r.entropy.to_string(),
        r.skip_rate.to_string(),
        r.loss.to_string(),
    ]
}

fn interrupted(out: &Path, quiet: bool) -> Result<i32> {
    say(
        quiet,
        &format!(
            "interrupted; the last finished epoch is saved: continue with `archsearch enas --resume {}`",
            out.display()
        ),
    );
    Ok(EXIT_INTERRUPTED)
}

/// `archsearch enas-trial`: builds the network of Katib's two strings, trains it (Adam at
/// Katib's trial rate, constant) and prints Katib's four metric lines per epoch.
pub fn trial(options: &TrialOptions) -> Result<i32> {
    tch::set_num_threads(TORCH_THREADS);
    let arch = space::parse_architecture(&options.architecture)?;
    let nn = space::parse_nn_config(&options.nn_config)?;
    space::check_rows(&arch, nn.num_layers, |id| nn.embedding.contains_key(&id))
        .map_err(|m| UsageError::new(format!("--architecture: {m}")))?;
    let mut kinds = std::collections::BTreeMap::new();
    for (id, op) in &nn.embedding {
        let kind = OpKind::from_operation(op)
            .map_err(|m| UsageError::new(format!("--nn-config: embedding.{id}: {m}")))?;
        kinds.insert(*id, kind);
    }
    if !(1..=super::config::EPOCHS_MAX).contains(&options.num_epochs) {
        return Err(UsageError::new(format!(
            "--num-epochs must be from 1 to {}",
            super::config::EPOCHS_MAX
        ))
        .into());
    }
    let device = outdir::parse_device(&options.device)?;
    let data = load_images(&options.dataset, options.data_dir.as_deref(), device)?;
    check_sizes(&nn.input_sizes, &nn.output_sizes, &data, "--nn-config: ")?;
    let shape = data.input_shape();
    let plan = Plan::new(&arch, |id| kinds[&id], shape[0], data.n_classes as i64);
    if plan
        .channels
        .iter()
        .any(|&c| c > super::config::CHANNELS_MAX)
    {
        return Err(UsageError::new(format!(
            "this architecture reaches more than {} channels (CHANNELS_MAX in src/enas/config.rs)",
            super::config::CHANNELS_MAX
        ))
        .into());
    }
    crate::outln!(
        ">>> arch received by trial\n{}",
        Space::architecture_json(&arch)
    );
    crate::outln!(">>> num_epochs received by trial\n{}", options.num_epochs);
    let settings = TrainerSettings {
        optimizer: Optimizer::Adam,
        lr: TRIAL_LR,
        lr_min: TRIAL_LR,
        weight_decay: 0.0,
        epochs: options.num_epochs,
        batch_size: TRIAL_BATCH_SIZE,
        grad_clip: 0.0,
        patience: 0,
        keep_best: false,
        ..TrainerSettings::default()
    };
    let stop = Stop::on_signals()?;
    let (_vs, _net, outcome) = train_new(
        |p| Network::new(p, &plan),
        &data,
        &settings,
        options.seed,
        stop.flag(),
    )
    .context("the trial's training failed")?;
    for (e, epoch) in outcome.epochs.iter().enumerate() {
        crate::outln!("\nTotal Epoch {}/{}", e + 1, options.num_epochs);
        crate::outln!("Training-Accuracy={}", epoch.train_accuracy);
        crate::outln!("Training-Loss={}", epoch.train_loss);
        crate::outln!("Validation-Accuracy={}", epoch.dev_accuracy);
        crate::outln!("Validation-Loss={}", epoch.dev_loss);
    }
    if stop.requested() {
        return Ok(EXIT_INTERRUPTED);
    }
    if outcome.diverged() {
        return Err(anyhow::anyhow!("the trial's training diverged"));
    }
    Ok(0)
}
