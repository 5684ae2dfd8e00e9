//! `archsearch choice-list`: a hannah-style YAML space searched by REINFORCE, aging evolution
//! or random search with one rollout budget each, all searches side by side in the one search
//! loop (`crate::search`), children trained as in the default run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::child::interpret;
use super::strategy::{evolution, random, ChoiceListSpace};
use crate::config::{
    ChildSettings, DataSettings, Settings, CHECKPOINT_EVERY, CL_BATCH, CL_BINS, CL_MOVING_AVERAGE,
    TORCH_THREADS,
};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::nn::child::TensorData;
use crate::nn::evaluator::MlpEvaluator;
use crate::nn::trainer::trainer_for;
use crate::outdir::{self, device_name, parse_device, Stop};
use crate::output::checkpoint::{self, Checkpoint};
use crate::output::plot;
use crate::output::progress::{say, Progress};
use crate::output::record::{self, Record, RecordCsv};
use crate::output::summary::{finish, print_summary, Finished};
use crate::search::{self, LoopSettings, Search, SearchState};
use crate::strategy::{Reinforce, Strategy, StrategyChoice};

const STRATEGIES: [StrategyChoice; 3] = [
    StrategyChoice::Reinforce,
    StrategyChoice::Evolution,
    StrategyChoice::Random,
];

/// How a run folder was started (run.json): enough to resume it without the original flags.
#[derive(Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
struct RunSpec {
    archsearch_version: String,
    space_file: String,
    /// The space's YAML text itself, so a resumed search cannot see an edited file.
    space_yaml: String,
    strategy: String,
    seed: u64,
    seeds: u64,
    /// Children evaluated per strategy and seed (`evaluations` in folders of older versions).
    #[serde(alias = "evaluations")]
    rollouts: u64,
    device: String,
    /// `--set KEY=VALUE` given when the run started.
    #[serde(default)]
    overrides: Vec<String>,
}

/// The limits of the flags, for a run.json that may have been edited since.
fn check_limits(spec: &RunSpec) -> Result<(), UsageError> {
    use crate::config::{CL_ROLLOUTS_MAX, CL_SEEDS_MAX};
    for (name, v, max, limit) in [
        (
            "rollouts",
            spec.rollouts,
            CL_ROLLOUTS_MAX,
            "CL_ROLLOUTS_MAX",
        ),
        ("seeds", spec.seeds, CL_SEEDS_MAX, "CL_SEEDS_MAX"),
    ] {
        if v == 0 || v > max as u64 {
            return Err(UsageError::new(format!(
                "run.json: {name} is {v}; it must lie in 1..={max} ({limit} in src/config.rs)"
            )));
        }
    }
    Ok(())
}

/// What `archsearch choice-list` is asked to do: the command line's flags as plain values.
#[derive(Debug, Clone)]
pub struct ChoiceListOptions {
    /// The YAML space (absent when resuming).
    pub space: Option<PathBuf>,
    pub resume: Option<PathBuf>,
    pub strategy: StrategyChoice,
    /// Children evaluated (rollouts) per strategy and seed.
    pub rollouts: u64,
    pub seed: u64,
    pub seeds: u64,
    pub device: String,
    pub out: Option<PathBuf>,
    pub force: bool,
    pub quiet: bool,
    /// The options given explicitly (not defaulted), by field name.
    pub given: Vec<String>,
    /// `--set KEY=VALUE` assignments, in order.
    pub overrides: Vec<String>,
}

/// The command name the run marker records.
const COMMAND: &str = "choice-list";

/// The run.json of a folder to resume, with the flags given now: a flag that differs from the
/// folder's value is refused by name; `--device` may change (where children train, not what is
/// searched), as in the default command.
fn resumed_spec(dir: &Path, args: &ChoiceListOptions) -> Result<RunSpec> {
    outdir::check_resume_command(dir, COMMAND)?;
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        UsageError::new(format!(
            "cannot read {}: {e}; is {} a choice-list run folder?",
            path.display(),
            dir.display()
        ))
    })?;
    let mut spec: RunSpec = serde_json::from_str(&text).map_err(|e| {
        UsageError::new(format!(
            "{} is corrupt ({e}); nothing was changed",
            path.display()
        ))
    })?;
    if strategy_choice(&spec.strategy).is_none() {
        crate::usage_bail!(
            "{} names the unknown strategy `{}`; nothing was changed",
            path.display(),
            spec.strategy
        );
    }
    let given = |flag: &str| args.given.iter().any(|g| g == flag);
    let mut differences = Vec::new();
    let mut compare = |flag: &str, then: String, now: String| {
        if given(flag) && then != now {
            differences.push(format!("{flag}: was {then}, now {now}"));
        }
    };
    compare(
        "strategy",
        spec.strategy.clone(),
        args.strategy.name().to_string(),
    );
    compare(
        "rollouts",
        spec.rollouts.to_string(),
        args.rollouts.to_string(),
    );
    compare("seed", spec.seed.to_string(), args.seed.to_string());
    compare("seeds", spec.seeds.to_string(), args.seeds.to_string());
    if !differences.is_empty() {
        crate::usage_bail!(
            "{} was searched with other settings than now ({}); resume without those flags, or start a new run",
            dir.display(),
            differences.join("; ")
        );
    }
    if given("device") {
        spec.device = args.device.clone();
    }
    Ok(spec)
}

/// The strategy of a run.json's name.
fn strategy_choice(name: &str) -> Option<StrategyChoice> {
    STRATEGIES
        .iter()
        .chain([&StrategyChoice::All])
        .find(|c| c.name() == name)
        .copied()
}

/// `deepcave/`: one DeepCAVE run folder per search (`STRATEGY-seedSEED`), rewritten whole from
/// the rollouts at the end of every run and resume (docs/formats.md).
fn write_deepcave(
    out: &Path,
    spec: &RunSpec,
    param: &super::Param,
    records: &[Record],
    max_epochs: usize,
) -> Result<()> {
    use super::configspace::{configspace_json, deepcave_searches, objectives};
    let name = Path::new(&spec.space_file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("space");
    let mut meta = serde_json::Map::new();
    meta.insert("command".into(), Value::from(COMMAND));
    meta.insert("space_file".into(), Value::from(spec.space_file.clone()));
    meta.insert("strategy".into(), Value::from(spec.strategy.clone()));
    crate::output::deepcave::write_searches(
        &out.join("deepcave"),
        &configspace_json(param, name),
        &objectives(),
        &[max_epochs as f64],
        &meta,
        &deepcave_searches(param, records, max_epochs as f64),
    )?;
    Ok(())
}

/// Runs the command; returns the exit code.
pub fn run(args: &ChoiceListOptions) -> Result<i32> {
    // Signals are watched from the start: one during the checks stops the run before its
    // first step (exit 130), instead of killing it half-way.
    let stop = Stop::on_signals()?;
    // A new run, or the run.json of the folder being resumed.
    if args.resume.is_some() && !args.overrides.is_empty() {
        crate::usage_bail!(
            "--set cannot change a run being resumed: it keeps the settings it started with (run.json)"
        );
    }
    let (spec, out) = match &args.resume {
        Some(dir) => (resumed_spec(dir, args)?, Some(dir.clone())),
        None => {
            let Some(space) = &args.space else {
                crate::usage_bail!("--space FILE.yaml is needed (or --resume DIR)")
            };
            let yaml = super::read_space(space)?;
            let spec = RunSpec {
                archsearch_version: env!("CARGO_PKG_VERSION").into(),
                space_file: space.display().to_string(),
                space_yaml: yaml,
                strategy: args.strategy.name().into(),
                seed: args.seed,
                seeds: args.seeds,
                rollouts: args.rollouts,
                device: args.device.clone(),
                overrides: args.overrides.clone(),
            };
            (spec, None)
        }
    };
    check_limits(&spec)?;
    let param = super::parse_space(&spec.space_yaml)
        .map_err(|e| UsageError::new(format!("{}: {e}", spec.space_file)))?;
    let device = parse_device(&spec.device)?;
    let source = Source::Moons;
    let splits = data::load(&source, &DataSettings::default())?;
    let data_hash = checkpoint::data_hash(&splits);
    // The search's settings: the defaults with this command's budget, seed and window, and
    // the run's `--set`s.
    let mut settings = Settings {
        rollouts: spec.rollouts as usize,
        seed: spec.seed,
        moving_average: CL_MOVING_AVERAGE,
        ..Settings::default()
    };
    for assignment in &spec.overrides {
        settings.set(assignment).map_err(UsageError::new)?;
    }
    let (n_in, n_out) = (splits.train.n_features, splits.train.n_classes);
    // The space must describe an MLP child within the limits: checked before any work.
    super::check_space(&param, n_in, n_out, &settings.child, spec.seed)
        .map_err(|e| UsageError::new(format!("{}: {e}", spec.space_file)))?;

    let chosen: Vec<StrategyChoice> = match strategy_choice(&spec.strategy) {
        Some(StrategyChoice::All) | None => STRATEGIES.to_vec(),
        Some(one) => vec![one],
    };
    let seeds: Vec<u64> = (0..spec.seeds).map(|s| spec.seed + s).collect();
    let budget = spec.rollouts as usize;
    tch::set_num_threads(TORCH_THREADS);
    let space = ChoiceListSpace::new(param.clone(), CL_BINS);
    // One search per strategy and seed, side by side in the one loop.
    let mut searches = Vec::new();
    for &choice in &chosen {
        for &seed in &seeds {
            let k = STRATEGIES.iter().position(|c| *c == choice);
            let mut rng = crate::seeds::stream(seed, k);
            let strategy: Box<dyn Strategy + '_> = match choice {
                StrategyChoice::Reinforce => Box::new(Reinforce::new(
                    &space,
                    &settings,
                    tch::Device::Cpu,
                    &mut rng,
                )),
                StrategyChoice::Evolution => Box::new(evolution(&param)?),
                _ => Box::new(random(&param)),
            };
            searches.push(Search::new(strategy, seed, rng));
        }
    }
    let mut state = SearchState { searches, done: 0 };
    // A resume reads the checkpoint and the rows it counts, and checks them all before
    // anything is written. A run killed before its first checkpoint starts again.
    let mut kept = record::Resumed {
        records: Vec::new(),
        text: record::text(&[]),
    };
    let mut wall_before = 0.0;
    if let Some(dir) = out.as_ref().filter(|d| checkpoint::path(d).exists()) {
        let saved = checkpoint::load(dir)?;
        if saved.data_hash != data_hash || saved.settings != settings {
            crate::usage_bail!(
                "{} does not belong to the run of {} (other data or settings); nothing was changed",
                checkpoint::path(dir).display(),
                dir.join("run.json").display()
            );
        }
        state.restore(&saved.searches, saved.done).map_err(|e| {
            UsageError::new(format!(
                "{} does not fit its run.json ({e:#}); nothing was changed",
                checkpoint::path(dir).display()
            ))
        })?;
        kept = record::resume(&dir.join("rollouts.csv"), saved.done, &state.keys())?;
        // Every kept row holds a configuration of the space (an edited file is refused).
        for r in &kept.records {
            let fits = serde_json::from_str::<Value>(&r.architecture)
                .map_err(|e| e.to_string())
                .and_then(|c| param.check(&c).map_err(|e| e.0));
            if let Err(why) = fits {
                crate::usage_bail!(
                    "{}: {} seed {} rollout {} holds a configuration outside the space ({why}); the run cannot be resumed as it is",
                    dir.join("rollouts.csv").display(),
                    r.strategy,
                    r.seed,
                    r.rollout
                );
            }
        }
        wall_before = saved.wall_seconds;
    }

    // Every input checked: only now is anything written.
    let out = match out {
        Some(dir) => {
            outdir::ensure_marker(&dir, COMMAND)?;
            dir
        }
        None => outdir::prepare(args.out.as_deref(), args.force, COMMAND)?,
    };
    outdir::write_json_atomically(&out.join("run.json"), &spec)?;
    let started = Instant::now();
    let tensors = TensorData::new(&splits, device);
    let csv_path = out.join("rollouts.csv");
    outdir::write_atomically(&csv_path, &kept.text)?;
    let mut csv = RecordCsv::append_to(&csv_path)?;
    let save = |state: &SearchState, csv: &RecordCsv| -> Result<()> {
        // Rows reach the disk before the checkpoint that counts them.
        csv.sync()?;
        checkpoint::save(
            &out,
            &Checkpoint {
                archsearch_version: env!("CARGO_PKG_VERSION").into(),
                settings: settings.clone(),
                source: source.clone(),
                data_hash: data_hash.clone(),
                device: device_name(device),
                done: state.done,
                searches: state.checkpoint()?,
                wall_seconds: wall_before + started.elapsed().as_secs_f64(),
            },
        )
    };
    save(&state, &csv)?;
    // After the files a resume needs, so that a kill leaves a folder that can be resumed.
    if args.resume.is_none() || !out.join("halfmoon.png").exists() {
        plot::data(&out.join("halfmoon.png"), &splits)?;
    }
    let total = state.searches.len() * budget;
    let mut progress = Progress::new(total, kept.records.len(), args.quiet);
    let mut records = kept.records;
    let child = settings.child.clone();
    let mut evaluator = MlpEvaluator {
        trainer: trainer_for(CL_BATCH * state.searches.len(), &tensors, &stop),
        interpret: Box::new(|config| {
            interpret(config, n_in, n_out, &child).map_err(anyhow::Error::msg)
        }),
    };
    let mut last_saved = state.done;
    {
        let mut on_update = |batch: &[Record], state: &SearchState| -> Result<()> {
            csv.append(batch)?;
            records.extend_from_slice(batch);
            if state.done / CHECKPOINT_EVERY > last_saved / CHECKPOINT_EVERY {
                save(state, &csv)?;
                last_saved = state.done;
            }
            let best = records.iter().map(|r| r.accuracy).fold(0.0, f64::max);
            progress.update(
                records.len(),
                &format!(
                    "{} searches: {}/{budget} each, best dev {best:.3}",
                    state.searches.len(),
                    state.done
                ),
            );
            Ok(())
        };
        let steps = LoopSettings {
            rollouts: budget,
            per_update: CL_BATCH,
        };
        search::run(&mut evaluator, steps, &mut state, &mut on_update, &|| {
            !stop.requested()
        })?;
    }
    progress.finish();
    save(&state, &csv)?;
    let interrupted = state.done < budget;
    let keys = state.keys();
    let read = |architecture: &str, defaults: &ChildSettings| {
        let config: Value = serde_json::from_str(architecture)?;
        interpret(&config, n_in, n_out, defaults).map_err(anyhow::Error::msg)
    };
    let summary = finish(&Finished {
        out: &out,
        settings: &settings,
        searches: &keys,
        space: Some(spec.space_file.clone()),
        interpret: &read,
        splits: &splits,
        tensors: &tensors,
        records: &records,
        done: state.done,
        source: &source,
        wall_seconds: wall_before + started.elapsed().as_secs_f64(),
        interrupted,
        quiet: args.quiet,
        stop: &stop,
    })?;
    write_deepcave(&out, &spec, &param, &records, settings.child.max_epochs)?;
    if summary.interrupted {
        say(
            args.quiet,
            &format!(
                "interrupted: continue with `archsearch choice-list --resume {}`",
                out.display()
            ),
        );
    }
    print_summary(&summary, &out);
    Ok(if summary.interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
}
