//! `archsearch choice-list`: a hannah-style YAML space searched by REINFORCE, aging evolution
//! or random search with one evaluation budget each, children trained as in the default run.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;
use serde_json::Value;

use super::child::interpret;
use super::strategy::{evolution, random, ChoiceListSpace};
use crate::child::TensorData;
use crate::cli::{device_name, parse_device, ChoiceListArgs, StrategyChoice};
use crate::config::{DataSettings, Settings, CL_BATCH, CL_BINS, MOVING_AVERAGE, TORCH_THREADS};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::nn::final_training::{self, FinalJob};
use crate::plot::{self, Curve};
use crate::progress::{say, Progress};
use crate::report::mean_sd;
use crate::search::child_seed;
use crate::selection::{self, Judged};
use crate::strategy::{Reinforce, Strategy};
use crate::trainer::{trainer_for, ChildJob};

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
    evaluations_per_run: usize,
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
    evaluations: u64,
    device: String,
    /// `--set KEY=VALUE` given when the run started.
    #[serde(default)]
    overrides: Vec<String>,
}

/// One CSV line of an evaluation; the configuration is a JSON column, quoted, quotes doubled.
fn csv_line(e: &Evaluation) -> String {
    let json = e.configuration.to_string().replace('"', "\"\"");
    format!(
        "{},{},{},\"{json}\",{},{},{},{:.4},{}\n",
        e.strategy,
        e.seed,
        e.evaluation,
        e.accuracy,
        e.accuracy,
        e.epochs,
        e.seconds,
        u8::from(e.diverged)
    )
}

const CSV_HEADER: &str =
    "strategy,seed,evaluation,configuration,accuracy,reward,epochs,seconds,diverged\n";

/// The evaluations of a rollouts.csv written by this command (a partial last line is ignored).
fn read_evaluations(path: &Path) -> Result<Vec<Evaluation>> {
    let bad = |why: String| -> anyhow::Error {
        UsageError::new(format!(
            "{}: {why}; the run cannot be resumed",
            path.display()
        ))
        .into()
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let end = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let mut reader = csv::Reader::from_reader(&bytes[..end]);
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| bad(e.to_string()))?;
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

/// Runs the command; returns the exit code.
pub fn run(args: &ChoiceListArgs) -> Result<i32> {
    // A new run, or the run.json of the folder being resumed.
    if args.resume.is_some() && !args.overrides.is_empty() {
        crate::usage_bail!(
            "--set cannot change a run being resumed: it keeps the settings it started with (run.json)"
        );
    }
    let (spec, out, recorded) = match &args.resume {
        Some(dir) => {
            let path = dir.join("run.json");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                UsageError::new(format!(
                    "cannot read {}: {e}; is {} a choice-list run folder?",
                    path.display(),
                    dir.display()
                ))
            })?;
            let spec: RunSpec = serde_json::from_str(&text).map_err(|e| {
                UsageError::new(format!(
                    "{} is corrupt ({e}); nothing was changed",
                    path.display()
                ))
            })?;
            let recorded = read_evaluations(&dir.join("rollouts.csv"))?;
            (spec, Some(dir.clone()), recorded)
        }
        None => {
            let Some(space) = &args.space else {
                crate::usage_bail!("--space FILE.yaml is needed (or --resume DIR)")
            };
            let yaml = std::fs::read_to_string(space).map_err(|e| {
                UsageError::new(format!(
                    "cannot read the search space {}: {e}",
                    space.display()
                ))
            })?;
            let spec = RunSpec {
                archsearch_version: env!("CARGO_PKG_VERSION").into(),
                space_file: space.display().to_string(),
                space_yaml: yaml,
                strategy: args.strategy.name().into(),
                seed: args.seed,
                seeds: args.seeds,
                evaluations: args.evaluations,
                device: args.device.clone(),
                overrides: args.overrides.clone(),
            };
            (spec, None, Vec::new())
        }
    };
    let param = super::parse_space(&spec.space_yaml)
        .map_err(|e| UsageError::new(format!("{}: {e}", spec.space_file)))?;
    let device = parse_device(&spec.device)?;
    let splits = data::load(&Source::Moons, &DataSettings::default())?;
    let mut settings = Settings::default();
    for assignment in &spec.overrides {
        settings.set(assignment).map_err(UsageError::new)?;
    }
    let (n_in, n_out) = (splits.train.n_features, splits.train.n_classes);
    // The space must describe an MLP child: checked on sampled configurations before any work.
    let mut rng = Pcg64::seed_from_u64(spec.seed);
    for _ in 0..64 {
        let config = super::sample(&param, &mut rng);
        interpret(&config, n_in, n_out, &settings.child).map_err(|e| {
            UsageError::new(format!(
                "{}: {e} (in a sampled configuration {config})",
                spec.space_file
            ))
        })?;
    }
    let out = match out {
        Some(dir) => dir,
        None => crate::run::prepare_out(args.out.as_deref(), args.force)?,
    };
    crate::report::write_json_atomically(&out.join("run.json"), &spec)?;
    tch::set_num_threads(TORCH_THREADS);
    let stop = crate::run::stop_on_signals()?;
    let started = Instant::now();
    let tensors = TensorData::new(&splits, device);
    plot::data(&out.join("halfmoon.png"), &splits)?;

    let choice = STRATEGIES
        .iter()
        .chain([&StrategyChoice::All])
        .find(|c| c.name() == spec.strategy)
        .copied()
        .unwrap_or(StrategyChoice::All);
    let chosen: Vec<StrategyChoice> = match choice {
        StrategyChoice::All => STRATEGIES.to_vec(),
        one => vec![one],
    };
    let seeds: Vec<u64> = (0..spec.seeds).map(|s| spec.seed + s).collect();
    let budget = spec.evaluations as usize;
    // Keep the recorded rows of complete batches only; the rest is redone.
    let mut kept: Vec<Evaluation> = Vec::new();
    for &c in &chosen {
        for &seed in &seeds {
            let rows: Vec<&Evaluation> = recorded
                .iter()
                .filter(|e| e.strategy == c.name() && e.seed == seed)
                .collect();
            let whole = if rows.len() >= budget {
                budget
            } else {
                rows.len() - rows.len() % CL_BATCH
            };
            kept.extend(rows[..whole].iter().map(|e| (*e).clone()));
        }
    }
    let csv_path = out.join("rollouts.csv");
    let mut text = String::from(CSV_HEADER);
    for e in &kept {
        text.push_str(&csv_line(e));
    }
    crate::report::write_atomically(&csv_path, text.as_bytes())?;
    let mut csv = std::fs::OpenOptions::new()
        .append(true)
        .open(&csv_path)
        .with_context(|| format!("cannot open {}", csv_path.display()))?;
    let mut progress = Progress::new(chosen.len() * seeds.len() * budget, kept.len(), args.quiet);
    let mut evaluations: Vec<Evaluation> = Vec::new();
    let mut interrupted = false;
    let space = ChoiceListSpace::new(param.clone(), CL_BINS);
    let mut trainer = trainer_for(CL_BATCH, &tensors);
    'runs: for &choice in &chosen {
        for &seed in &seeds {
            // Each strategy its own stream: evolution's random fill would otherwise repeat
            // random search's first samples exactly.
            let mut rng = Pcg64::seed_from_u64(crate::search::splitmix64(seed) ^ choice as u64);
            let mut strategy: Box<dyn Strategy + '_> = match choice {
                StrategyChoice::Reinforce => Box::new(Reinforce::new(&space, &settings, &mut rng)),
                StrategyChoice::Evolution => Box::new(evolution(&param)?),
                _ => Box::new(random(&param)),
            };
            // Resuming: ask again, check each proposal against the record, tell the recorded
            // fitness; the strategy and generator end exactly where they were.
            let replay: Vec<&Evaluation> = kept
                .iter()
                .filter(|e| e.strategy == choice.name() && e.seed == seed)
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
                        "{} does not match a replay of its search at {} evaluation {} (recorded {}, replayed {}); was archsearch changed since? Start a new run",
                        csv_path.display(),
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
                evaluations.extend(rows.iter().map(|r| (*r).clone()));
                done += configs.len();
            }
            while done < budget {
                if stop.load(Ordering::Relaxed) {
                    interrupted = true;
                    break 'runs;
                }
                let t = Instant::now();
                let configs = strategy.ask(CL_BATCH.min(budget - done), &mut rng)?;
                let mut jobs = Vec::with_capacity(configs.len());
                for (j, config) in configs.iter().enumerate() {
                    let (spec, child) = interpret(config, n_in, n_out, &settings.child)
                        .map_err(anyhow::Error::msg)?;
                    jobs.push(ChildJob {
                        spec,
                        settings: child,
                        seed: child_seed(seed, done + j + 1),
                    });
                }
                let outcomes = trainer.train_batch(&jobs);
                let seconds = t.elapsed().as_secs_f64() / jobs.len() as f64;
                let results: Vec<(Value, f64)> = configs
                    .iter()
                    .cloned()
                    .zip(outcomes.iter().map(|o| o.accuracy))
                    .collect();
                strategy.tell(&results)?;
                for (j, (config, o)) in configs.into_iter().zip(outcomes).enumerate() {
                    let e = Evaluation {
                        strategy: strategy.name(),
                        seed,
                        evaluation: done + j + 1,
                        configuration: config,
                        accuracy: o.accuracy,
                        epochs: o.epochs,
                        seconds,
                        diverged: o.diverged,
                    };
                    csv.write_all(csv_line(&e).as_bytes())
                        .with_context(|| format!("cannot write {}", csv_path.display()))?;
                    evaluations.push(e);
                }
                csv.flush()?;
                done += jobs.len();
                let best = evaluations
                    .iter()
                    .filter(|e| e.seed == seed && e.strategy == strategy.name())
                    .map(|e| e.accuracy)
                    .fold(0.0, f64::max);
                progress.update(
                    evaluations.len(),
                    &format!(
                        "{} seed {seed}: {done}/{budget}, best dev {best:.3}",
                        strategy.name()
                    ),
                );
            }
        }
    }
    progress.finish();
    csv.sync_all()?;
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
    Ok(if interrupted || final_interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// Figures, the best configuration retrained and tested, and summary.json.
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
    stop: &AtomicBool,
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
                crate::compare::curve(n, &per_seed, 50)
            })
            .collect();
        plot::curves(
            &out.join("accuracy.png"),
            "Dev accuracy of evaluated children (moving average of 50)",
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
            crate::compare::curve(n, &per_seed, 1)
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
        .map(|i| crate::summary::retrain_seed(run.seed, i))
        .collect();
    let (n_in, n_out) = (tensors.n_features, tensors.n_classes);
    let mut best: Option<(&Evaluation, selection::Candidate)> = candidates
        .first()
        .map(|c| (first_of[c.architecture.as_str()], c.clone()));
    let (mut judged, mut final_children, mut final_interrupted) = (Vec::new(), Vec::new(), true);
    if best.is_some() && !stop.load(Ordering::Relaxed) {
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
            final_training::train_seeds(&job, &data, &retrain_seeds, stop)
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
        let (accuracies, first) = crate::summary::retrain_and_test(
            &spec,
            &child_settings,
            tensors,
            run.seed,
            settings.retrain_seeds,
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
        evaluations_per_run: run.evaluations as usize,
        interval_bins: CL_BINS,
        controller_settings: settings.clone(),
        device: device_name(device),
        wall_seconds: started.elapsed().as_secs_f64(),
        interrupted,
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
    crate::report::write_json_atomically(&out.join("summary.json"), &summary)?;
    for r in &summary.runs {
        println!(
            "{:<10} seed {}: best dev accuracy {:.3} in {} evaluations: {}",
            r.strategy, r.seed, r.best_dev_accuracy, r.evaluations, r.best_configuration
        );
    }
    println!(
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
    Ok(summary.final_training_interrupted)
}
