//! `archsearch choice-list`: a hannah-style YAML space searched by REINFORCE, aging evolution
//! or random search with one evaluation budget each, children trained as in the default run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;
use serde_json::Value;

use super::child::interpret;
use super::strategy::{evolution, random, ChoiceListSpace};
use crate::config::{
    DataSettings, Settings, CL_BATCH, CL_BINS, CL_MOVING_AVERAGE, MOVING_AVERAGE, TORCH_THREADS,
};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::nn::child::TensorData;
use crate::nn::final_training::{self, FinalJob};
use crate::nn::trainer::{trainer_for, ChildJob};
use crate::outdir::{self, device_name, parse_device, Stop};
use crate::output::plot::{self, Curve};
use crate::output::progress::{say, Progress};
use crate::output::report::mean_sd;
use crate::output::rows::{self, RowWriter};
use crate::search::child_seed;
use crate::selection::{self, Judged};
use crate::strategy::{Reinforce, Strategy, StrategyChoice};

/// One evaluated configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub strategy: &'static str,
    pub seed: u64,
    pub evaluation: usize,
    pub configuration: Value,
    pub accuracy: f64,
    pub epochs: usize,
    pub seconds: f64,
    pub diverged: bool,
}

#[derive(Serialize)]
struct RunFigures {
    strategy: &'static str,
    seed: u64,
    evaluations: usize,
    best_configuration: Value,
    best_dev_accuracy: f64,
}

#[derive(Serialize)]
struct Summary {
    archsearch_version: &'static str,
    command: String,
    space: String,
    strategies: Vec<&'static str>,
    seeds: Vec<u64>,
    rollouts_per_run: usize,
    interval_bins: usize,
    controller_settings: Settings,
    device: String,
    wall_seconds: f64,
    interrupted: bool,
    runs: Vec<RunFigures>,
    /// Chosen by the rule of `selection` over every evaluation of every run.
    best_configuration: Value,
    best_strategy: &'static str,
    /// Its highest and mean dev accuracy among the evaluations.
    best_dev_accuracy: f64,
    best_mean_dev_accuracy: f64,
    /// Trained with the final protocol (`controller_settings.final`), once per seed, tested.
    final_test_accuracies: Vec<f64>,
    final_test_accuracy_mean: f64,
    final_test_accuracy_sd: f64,
    /// Trained as the search trains children, as many seeds, tested.
    search_protocol_test_accuracies: Vec<f64>,
    search_protocol_test_accuracy_mean: f64,
    search_protocol_test_accuracy_sd: f64,
    candidates: Vec<Judged>,
    final_training_interrupted: bool,
}

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

/// The fields of an evaluation's CSV row; the configuration is a JSON column.
fn fields(e: &Evaluation) -> Vec<String> {
    vec![
        e.strategy.to_string(),
        e.seed.to_string(),
        e.evaluation.to_string(),
        e.configuration.to_string(),
        e.accuracy.to_string(),
        e.accuracy.to_string(),
        e.epochs.to_string(),
        format!("{:.4}", e.seconds),
        u8::from(e.diverged).to_string(),
    ]
}

const CSV_HEADER: [&str; 9] = [
    "strategy",
    "seed",
    "evaluation",
    "configuration",
    "accuracy",
    "reward",
    "epochs",
    "seconds",
    "diverged",
];

/// The evaluations of a rollouts.csv written by this command (a partial last line is ignored).
fn read_evaluations(path: &Path) -> Result<Vec<Evaluation>> {
    let bad = |why: String| -> anyhow::Error {
        UsageError::new(format!(
            "{}: {why}; the run cannot be resumed",
            path.display()
        ))
        .into()
    };
    let (_, rows) = rows::read(path).map_err(bad)?;
    let mut out = Vec::new();
    for row in rows {
        let field = |i: usize| {
            row.get(i)
                .ok_or_else(|| bad("a row has too few fields".into()))
        };
        let num = |i: usize| -> Result<f64> {
            field(i)?
                .parse()
                .map_err(|_| bad(format!("`{}` is not a number", field(i).unwrap_or(""))))
        };
        let strategy = STRATEGIES
            .iter()
            .find(|c| c.name() == field(0).unwrap_or(""))
            .ok_or_else(|| bad("unknown strategy".into()))?;
        out.push(Evaluation {
            strategy: strategy.name(),
            seed: num(1)? as u64,
            evaluation: num(2)? as usize,
            configuration: serde_json::from_str(field(3)?)
                .map_err(|e| bad(format!("bad configuration: {e}")))?,
            accuracy: num(4)?,
            epochs: num(6)? as usize,
            seconds: num(7)?,
            diverged: field(8)? == "1",
        });
    }
    Ok(out)
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

/// The recorded rows a resume keeps, after checking them all: every row belongs to a run of
/// run.json, and each run's rows are its evaluations 1, 2, ... in order. Of a run cut short,
/// only whole batches are kept (the rest is redone).
fn kept_rows(
    recorded: &[Evaluation],
    chosen: &[StrategyChoice],
    seeds: &[u64],
    budget: usize,
    csv_path: &Path,
) -> Result<Vec<Evaluation>> {
    let bad = |why: String| -> anyhow::Error {
        UsageError::new(format!(
            "{}: {why}; the run cannot be resumed as it is, and nothing was changed",
            csv_path.display()
        ))
        .into()
    };
    if let Some(e) = recorded
        .iter()
        .find(|e| !chosen.iter().any(|c| c.name() == e.strategy) || !seeds.contains(&e.seed))
    {
        return Err(bad(format!(
            "it holds evaluations of {} seed {}, a run its run.json does not name",
            e.strategy, e.seed
        )));
    }
    let mut kept = Vec::new();
    for &c in chosen {
        for &seed in seeds {
            let rows: Vec<&Evaluation> = recorded
                .iter()
                .filter(|e| e.strategy == c.name() && e.seed == seed)
                .collect();
            if let Some((i, e)) = rows.iter().enumerate().find(|(i, e)| e.evaluation != i + 1) {
                return Err(bad(format!(
                    "{} seed {seed} has evaluation {} where evaluation {} was expected (a row is missing, repeated or out of order)",
                    c.name(),
                    e.evaluation,
                    i + 1
                )));
            }
            let whole = if rows.len() >= budget {
                budget
            } else {
                rows.len() - rows.len() % CL_BATCH
            };
            kept.extend(rows[..whole].iter().map(|e| (*e).clone()));
        }
    }
    Ok(kept)
}

/// One strategy and seed of the command, with what was replayed of it.
struct Run<'a> {
    seed: u64,
    strategy: Box<dyn Strategy + 'a>,
    rng: Pcg64,
    /// Evaluations done (replayed or new).
    done: usize,
    /// The recorded evaluations it was replayed through.
    replayed: Vec<Evaluation>,
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
    let (spec, out, recorded) = match &args.resume {
        Some(dir) => {
            let spec = resumed_spec(dir, args)?;
            // run.json is written just before rollouts.csv: a run killed between the two has
            // no evaluations yet.
            let csv = dir.join("rollouts.csv");
            let recorded = if csv.symlink_metadata().is_err() {
                Vec::new()
            } else {
                read_evaluations(&csv)?
            };
            (spec, Some(dir.clone()), recorded)
        }
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
            (spec, None, Vec::new())
        }
    };
    check_limits(&spec)?;
    let param = super::parse_space(&spec.space_yaml)
        .map_err(|e| UsageError::new(format!("{}: {e}", spec.space_file)))?;
    let device = parse_device(&spec.device)?;
    let splits = data::load(&Source::Moons, &DataSettings::default())?;
    let mut settings = Settings::default();
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
    let csv_name = match &out {
        Some(dir) => dir.join("rollouts.csv"),
        None => Path::new("rollouts.csv").to_path_buf(),
    };
    let kept = kept_rows(&recorded, &chosen, &seeds, budget, &csv_name)?;
    tch::set_num_threads(TORCH_THREADS);
    let space = ChoiceListSpace::new(param.clone(), CL_BINS);
    // Every run replayed through its recorded evaluations before anything is written: each
    // proposal is checked against the record and told the recorded fitness, so the strategy
    // and its generator end exactly where they were.
    let mut runs: Vec<Run> = Vec::new();
    for &choice in &chosen {
        for &seed in &seeds {
            // Each strategy its own stream: evolution's random fill would otherwise repeat
            // random search's first samples exactly.
            let mut rng = Pcg64::seed_from_u64(crate::search::splitmix64(seed) ^ choice as u64);
            let mut strategy: Box<dyn Strategy + '_> = match choice {
                StrategyChoice::Reinforce => Box::new(Reinforce::new(&space, &settings, &mut rng)),
                StrategyChoice::Evolution => Box::new(evolution(&param)?),
                _ => Box::new(random(&param)),
            };
            let replay: Vec<Evaluation> = kept
                .iter()
                .filter(|e| e.strategy == choice.name() && e.seed == seed)
                .cloned()
                .collect();
            let mut done = 0;
            while done < replay.len() {
                let configs = strategy.ask(CL_BATCH.min(budget - done), &mut rng)?;
                let rows = &replay[done..done + configs.len()];
                if let Some((c, r)) = configs
                    .iter()
                    .zip(rows)
                    .find(|(c, r)| **c != r.configuration)
                {
                    crate::usage_bail!(
                        "{} does not match a replay of its search at {} evaluation {} (recorded {}, replayed {}); was archsearch changed since? Nothing was changed; start a new run",
                        csv_name.display(),
                        r.strategy,
                        r.evaluation,
                        r.configuration,
                        c
                    );
                }
                strategy.tell(
                    &rows
                        .iter()
                        .map(|r| (r.configuration.clone(), r.accuracy))
                        .collect::<Vec<_>>(),
                )?;
                done += configs.len();
            }
            runs.push(Run {
                seed,
                strategy,
                rng,
                done,
                replayed: replay,
            });
        }
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
    let lines: Vec<Vec<String>> = kept.iter().map(fields).collect();
    outdir::write_atomically(&csv_path, &rows::text(&CSV_HEADER, &lines))?;
    // After the files a resume needs, so that a kill leaves a folder that can be resumed.
    if args.resume.is_none() || !out.join("halfmoon.png").exists() {
        plot::data(&out.join("halfmoon.png"), &splits)?;
    }
    let mut csv = RowWriter::append_to(&csv_path)?;
    let mut progress = Progress::new(chosen.len() * seeds.len() * budget, kept.len(), args.quiet);
    let mut evaluations: Vec<Evaluation> = Vec::new();
    let mut interrupted = false;
    let mut trainer = trainer_for(CL_BATCH, &tensors, &stop);
    for run in runs.iter_mut() {
        // In the order of the runs, as an uninterrupted search has them.
        evaluations.append(&mut run.replayed);
        while run.done < budget && !interrupted {
            if stop.requested() {
                interrupted = true;
                break;
            }
            let t = Instant::now();
            let configs = run
                .strategy
                .ask(CL_BATCH.min(budget - run.done), &mut run.rng)?;
            let mut jobs = Vec::with_capacity(configs.len());
            for (j, config) in configs.iter().enumerate() {
                let (spec, child) =
                    interpret(config, n_in, n_out, &settings.child).map_err(anyhow::Error::msg)?;
                jobs.push(ChildJob {
                    spec,
                    settings: child,
                    seed: child_seed(run.seed, run.done + j + 1),
                });
            }
            let Some(outcomes) = trainer.train_batch(&jobs) else {
                // Stopped mid-batch: the batch is redone on resume.
                interrupted = true;
                break;
            };
            let seconds = t.elapsed().as_secs_f64() / jobs.len() as f64;
            let results: Vec<(Value, f64)> = configs
                .iter()
                .cloned()
                .zip(outcomes.iter().map(|o| o.accuracy))
                .collect();
            run.strategy.tell(&results)?;
            for (j, (config, o)) in configs.into_iter().zip(outcomes).enumerate() {
                let e = Evaluation {
                    strategy: run.strategy.name(),
                    seed: run.seed,
                    evaluation: run.done + j + 1,
                    configuration: config,
                    accuracy: o.accuracy,
                    epochs: o.epochs,
                    seconds,
                    diverged: o.diverged,
                };
                csv.append(&[fields(&e)])?;
                evaluations.push(e);
            }
            run.done += jobs.len();
            let (name, seed, done) = (run.strategy.name(), run.seed, run.done);
            let best = evaluations
                .iter()
                .filter(|e| e.seed == seed && e.strategy == name)
                .map(|e| e.accuracy)
                .fold(0.0, f64::max);
            progress.update(
                evaluations.len(),
                &format!("{name} seed {seed}: {done}/{budget}, best dev {best:.3}"),
            );
        }
    }
    progress.finish();
    csv.sync()?;
    let final_interrupted = finish(
        &out,
        &spec,
        args.quiet,
        &settings,
        &tensors,
        &splits,
        &chosen,
        &seeds,
        &evaluations,
        started,
        interrupted,
        device,
        &stop,
    )?;
    let interrupted = interrupted || final_interrupted;
    if interrupted {
        say(
            args.quiet,
            &format!(
                "interrupted: continue with `archsearch choice-list --resume {}`",
                out.display()
            ),
        );
    }
    Ok(if interrupted { EXIT_INTERRUPTED } else { 0 })
}

/// Figures, the best configuration retrained and tested, and summary.json. Returns whether the
/// run was interrupted (before or during the retraining, which stops on `stop` too).
#[allow(clippy::too_many_arguments)]
fn finish(
    out: &Path,
    run: &RunSpec,
    quiet: bool,
    settings: &Settings,
    tensors: &TensorData,
    splits: &data::Splits,
    chosen: &[StrategyChoice],
    seeds: &[u64],
    evaluations: &[Evaluation],
    started: Instant,
    interrupted: bool,
    device: tch::Device,
    stop: &Stop,
) -> Result<bool> {
    let names: Vec<&'static str> = chosen.iter().map(|c| c.name()).collect();
    let run_of = |name: &str, seed: u64| -> Vec<&Evaluation> {
        evaluations
            .iter()
            .filter(|e| e.strategy == name && e.seed == seed)
            .collect()
    };
    // accuracy.png: one run as points and moving average; several as one curve per strategy.
    if names.len() == 1 && seeds.len() == 1 {
        let acc: Vec<f64> = evaluations.iter().map(|e| e.accuracy).collect();
        plot::accuracy(
            &out.join("accuracy.png"),
            &acc,
            &acc,
            MOVING_AVERAGE.min(acc.len().max(1)),
        )?;
    } else {
        let curves: Vec<Curve> = names
            .iter()
            .map(|&n| {
                let per_seed: Vec<Vec<f64>> = seeds
                    .iter()
                    .map(|&s| run_of(n, s).iter().map(|e| e.accuracy).collect())
                    .collect();
                crate::commands::compare::curve(n, &per_seed, CL_MOVING_AVERAGE)
            })
            .collect();
        plot::curves(
            &out.join("accuracy.png"),
            &format!("Dev accuracy of evaluated children (moving average of {CL_MOVING_AVERAGE})"),
            "evaluation",
            "dev accuracy",
            &curves,
            (0.5, 1.0),
        )?;
    }
    // strategies.png: best-so-far dev accuracy against evaluations, mean and band over seeds.
    let best_so_far: Vec<Curve> = names
        .iter()
        .map(|&n| {
            let per_seed: Vec<Vec<f64>> = seeds
                .iter()
                .map(|&s| {
                    run_of(n, s)
                        .iter()
                        .scan(0.0f64, |b, e| {
                            *b = b.max(e.accuracy);
                            Some(*b)
                        })
                        .collect()
                })
                .collect();
            crate::commands::compare::curve(n, &per_seed, 1)
        })
        .collect();
    let low = best_so_far
        .iter()
        .flat_map(|c| c.values.first().copied())
        .fold(1.0f64, f64::min);
    plot::curves(
        &out.join("strategies.png"),
        "Best dev accuracy found so far",
        "evaluations",
        "best dev accuracy so far",
        &best_so_far,
        ((low - 0.02).max(0.0), 1.0),
    )?;

    let runs: Vec<RunFigures> = names
        .iter()
        .flat_map(|&n| seeds.iter().map(move |&s| (n, s)))
        .filter_map(|(n, s)| {
            let run = run_of(n, s);
            let best = run.iter().max_by(|a, b| {
                a.accuracy
                    .total_cmp(&b.accuracy)
                    .then(b.evaluation.cmp(&a.evaluation))
            })?;
            Some(RunFigures {
                strategy: n,
                seed: s,
                evaluations: run.len(),
                best_configuration: best.configuration.clone(),
                best_dev_accuracy: best.accuracy,
            })
        })
        .collect();
    // The best configuration by the rule of `selection`: candidates ranked by their shrunk mean
    // dev accuracy, trained with the final protocol over the same seeds, best mean dev accuracy
    // less one standard error.
    let fs = &settings.final_training;
    let keys: Vec<String> = evaluations
        .iter()
        .map(|e| e.configuration.to_string())
        .collect();
    let first_of: HashMap<&str, &Evaluation> = keys
        .iter()
        .zip(evaluations)
        .rev()
        .map(|(k, e)| (k.as_str(), e))
        .collect();
    let candidates = selection::candidates(
        keys.iter()
            .map(String::as_str)
            .zip(evaluations.iter().map(|e| e.accuracy)),
        fs.candidates,
        fs.prior_samples,
    );
    let retrain_seeds: Vec<u64> = (0..settings.retrain_seeds)
        .map(|i| crate::output::summary::retrain_seed(run.seed, i))
        .collect();
    let (n_in, n_out) = (tensors.n_features, tensors.n_classes);
    let mut best: Option<(&Evaluation, selection::Candidate)> = candidates
        .first()
        .map(|c| (first_of[c.architecture.as_str()], c.clone()));
    let (mut judged, mut final_children, mut final_interrupted) = (Vec::new(), Vec::new(), true);
    if best.is_some() && !stop.requested() {
        say(
            quiet,
            &format!(
                "choosing the best configuration: {} candidates, each trained {} times for {} epochs",
                candidates.len(),
                settings.retrain_seeds,
                fs.max_epochs
            ),
        );
        let data = final_training::train_data(tensors);
        let defaults = final_training::child_defaults(fs, &settings.child);
        let choice = selection::choose(candidates, |c| {
            let config = &first_of[c.architecture.as_str()].configuration;
            let (spec, child) =
                interpret(config, n_in, n_out, &defaults).map_err(anyhow::Error::msg)?;
            let job = FinalJob::with_child(spec, fs, &child);
            final_training::train_seeds(&job, &data, &retrain_seeds, stop.flag())
        })?;
        final_interrupted = choice.interrupted;
        if let Some((i, trainings)) = choice.chosen {
            let c = &choice.judged[i].candidate;
            best = Some((first_of[c.architecture.as_str()], c.clone()));
            final_children = trainings.children;
        }
        judged = choice.judged;
    }
    let final_tests: Vec<f64> = final_children
        .iter()
        .map(|c| c.accuracy(&tensors.test))
        .collect();
    let mut search_tests = Vec::new();
    if let Some((e, _)) = &best {
        let (spec, child_settings) = interpret(&e.configuration, n_in, n_out, &settings.child)
            .map_err(anyhow::Error::msg)?;
        let (accuracies, first) = crate::output::summary::retrain_and_test(
            &spec,
            &child_settings,
            tensors,
            run.seed,
            settings.retrain_seeds,
            stop,
        );
        search_tests = accuracies;
        if let Some(child) = final_children.first().or(first.as_ref()) {
            let title = format!(
                "Best configuration ({}, dev accuracy {:.3} in the search)",
                e.strategy, e.accuracy
            );
            plot::child_boundary(
                &out.join("boundary.png"),
                &title,
                splits,
                child,
                tensors.device,
            )?;
        }
    }
    let (mean, sd) = mean_sd(&final_tests);
    let (search_mean, search_sd) = mean_sd(&search_tests);
    let summary = Summary {
        archsearch_version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        space: run.space_file.clone(),
        strategies: names,
        seeds: seeds.to_vec(),
        rollouts_per_run: run.rollouts as usize,
        interval_bins: CL_BINS,
        controller_settings: settings.clone(),
        device: device_name(device),
        wall_seconds: started.elapsed().as_secs_f64(),
        interrupted: interrupted || stop.requested(),
        runs,
        best_configuration: best
            .as_ref()
            .map(|(e, _)| e.configuration.clone())
            .unwrap_or(Value::Null),
        best_strategy: best.as_ref().map(|(e, _)| e.strategy).unwrap_or(""),
        best_dev_accuracy: best
            .as_ref()
            .map(|(_, c)| c.search_best_dev_accuracy)
            .unwrap_or(0.0),
        best_mean_dev_accuracy: best
            .as_ref()
            .map(|(_, c)| c.search_mean_dev_accuracy)
            .unwrap_or(0.0),
        final_test_accuracy_mean: mean,
        final_test_accuracy_sd: sd,
        final_test_accuracies: final_tests,
        search_protocol_test_accuracy_mean: search_mean,
        search_protocol_test_accuracy_sd: search_sd,
        search_protocol_test_accuracies: search_tests,
        candidates: judged,
        final_training_interrupted: best.is_some() && final_interrupted,
    };
    outdir::write_json_atomically(&out.join("summary.json"), &summary)?;
    for r in &summary.runs {
        crate::outln!(
            "{:<10} seed {}: best dev accuracy {:.3} in {} evaluations: {}",
            r.strategy,
            r.seed,
            r.best_dev_accuracy,
            r.evaluations,
            r.best_configuration
        );
    }
    crate::outln!(
        "best overall ({}): {}; final test accuracy, {} trainings: {:.2} % +- {:.2} (trained as in the search: {:.2} % +- {:.2}); results in {}",
        summary.best_strategy,
        summary.best_configuration,
        summary.final_test_accuracies.len(),
        100.0 * summary.final_test_accuracy_mean,
        100.0 * summary.final_test_accuracy_sd,
        100.0 * summary.search_protocol_test_accuracy_mean,
        100.0 * summary.search_protocol_test_accuracy_sd,
        out.display()
    );
    Ok(summary.interrupted)
}
