//! `archsearch choice-list`: a hannah-style YAML space searched by REINFORCE, aging evolution
//! or random search with one evaluation budget each, children trained as in the default run.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;
use serde_json::Value;

use super::child::interpret;
use super::strategy::{evolution, random, ChoiceListSpace};
use crate::child::{train_child, TensorData};
use crate::cli::{device_name, parse_device, ChoiceListArgs, StrategyChoice};
use crate::config::{
    DataSettings, Settings, CL_BATCH, CL_BINS, MOVING_AVERAGE, RETRAIN_SEEDS, TORCH_THREADS,
};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::plot::{self, Curve};
use crate::progress::{say, Progress};
use crate::report::mean_sd;
use crate::search::child_seed;
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
    best_configuration: Value,
    best_strategy: &'static str,
    best_dev_accuracy: f64,
    test_accuracies: Vec<f64>,
    test_accuracy_mean: f64,
    test_accuracy_sd: f64,
}

const STRATEGIES: [StrategyChoice; 3] = [
    StrategyChoice::Reinforce,
    StrategyChoice::Evolution,
    StrategyChoice::Random,
];

/// Runs the command; returns the exit code.
pub fn run(args: &ChoiceListArgs) -> Result<i32> {
    let param = super::load(&args.space)?;
    let device = parse_device(&args.device)?;
    let splits = data::load(&Source::Moons, &DataSettings::default())?;
    let settings = Settings::default();
    let (n_in, n_out) = (splits.train.n_features, splits.train.n_classes);
    // The space must describe an MLP child: checked on sampled configurations before any work.
    let mut rng = Pcg64::seed_from_u64(args.seed);
    for _ in 0..64 {
        let config = super::sample(&param, &mut rng);
        interpret(&config, n_in, n_out, &settings.child).map_err(|e| {
            UsageError::new(format!(
                "{}: {e} (in a sampled configuration {config})",
                args.space.display()
            ))
        })?;
    }
    let out = crate::run::prepare_out(args.out.as_deref(), args.force)?;
    tch::set_num_threads(TORCH_THREADS);
    let stop = crate::run::stop_on_signals()?;
    let started = Instant::now();
    let tensors = TensorData::new(&splits, device);
    plot::data(&out.join("halfmoon.png"), &splits)?;

    let chosen: Vec<StrategyChoice> = match args.strategy {
        StrategyChoice::All => STRATEGIES.to_vec(),
        one => vec![one],
    };
    let seeds: Vec<u64> = (0..args.seeds).map(|s| args.seed + s).collect();
    let budget = args.evaluations as usize;
    let csv_path = out.join("rollouts.csv");
    let mut csv = std::fs::File::create(&csv_path)
        .with_context(|| format!("cannot create {}", csv_path.display()))?;
    writeln!(
        csv,
        "strategy,seed,evaluation,configuration,accuracy,reward,epochs,seconds,diverged"
    )?;
    let mut progress = Progress::new(chosen.len() * seeds.len() * budget, 0, args.quiet);
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
            let mut done = 0;
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
                    // The configuration is a JSON column: quoted, inner quotes doubled.
                    let json = e.configuration.to_string().replace('"', "\"\"");
                    writeln!(
                        csv,
                        "{},{},{},\"{json}\",{},{},{},{:.4},{}",
                        e.strategy,
                        seed,
                        e.evaluation,
                        e.accuracy,
                        e.accuracy,
                        e.epochs,
                        seconds,
                        u8::from(e.diverged)
                    )
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
    finish(
        &out,
        args,
        &param,
        &space,
        &settings,
        &tensors,
        &splits,
        &chosen,
        &seeds,
        &evaluations,
        started,
        interrupted,
        device,
    )?;
    Ok(if interrupted { EXIT_INTERRUPTED } else { 0 })
}

/// Figures, the best configuration retrained and tested, and summary.json.
#[allow(clippy::too_many_arguments)]
fn finish(
    out: &Path,
    args: &ChoiceListArgs,
    param: &super::Param,
    space: &ChoiceListSpace,
    settings: &Settings,
    tensors: &TensorData,
    splits: &data::Splits,
    chosen: &[StrategyChoice],
    seeds: &[u64],
    evaluations: &[Evaluation],
    started: Instant,
    interrupted: bool,
    device: tch::Device,
) -> Result<()> {
    let _ = (param, space);
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
    let best = evaluations.iter().max_by(|a, b| {
        a.accuracy
            .total_cmp(&b.accuracy)
            .then(b.evaluation.cmp(&a.evaluation))
    });
    let mut test_accuracies = Vec::new();
    if let Some(best) = best {
        say(
            args.quiet,
            &format!(
                "retraining the best configuration {} with {RETRAIN_SEEDS} seeds",
                best.configuration
            ),
        );
        let (spec, child_settings) = interpret(
            &best.configuration,
            tensors.n_features,
            tensors.n_classes,
            &settings.child,
        )
        .map_err(anyhow::Error::msg)?;
        let mut first = None;
        for i in 0..RETRAIN_SEEDS {
            let (child, _) = train_child(
                &spec,
                tensors,
                &child_settings,
                crate::summary::retrain_seed(args.seed, i),
            );
            test_accuracies.push(child.accuracy(&tensors.test));
            first.get_or_insert(child);
        }
        if let Some(child) = first {
            let title = format!(
                "Best configuration ({}, dev accuracy {:.3})",
                best.strategy, best.accuracy
            );
            plot::child_boundary(
                &out.join("boundary.png"),
                &title,
                splits,
                &child,
                tensors.device,
            )?;
        }
    }
    let (mean, sd) = mean_sd(&test_accuracies);
    let summary = Summary {
        archsearch_version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        space: args.space.display().to_string(),
        strategies: names,
        seeds: seeds.to_vec(),
        evaluations_per_run: args.evaluations as usize,
        interval_bins: CL_BINS,
        controller_settings: settings.clone(),
        device: device_name(device),
        wall_seconds: started.elapsed().as_secs_f64(),
        interrupted,
        runs,
        best_configuration: best.map(|b| b.configuration.clone()).unwrap_or(Value::Null),
        best_strategy: best.map(|b| b.strategy).unwrap_or(""),
        best_dev_accuracy: best.map(|b| b.accuracy).unwrap_or(0.0),
        test_accuracy_mean: mean,
        test_accuracy_sd: sd,
        test_accuracies,
    };
    crate::report::write_json_atomically(&out.join("summary.json"), &summary)?;
    for r in &summary.runs {
        println!(
            "{:<10} seed {}: best dev accuracy {:.3} in {} evaluations: {}",
            r.strategy, r.seed, r.best_dev_accuracy, r.evaluations, r.best_configuration
        );
    }
    println!(
        "best overall ({}): test accuracy retrained {} times {:.2} % +- {:.2}; results in {}",
        summary.best_strategy,
        summary.test_accuracies.len(),
        100.0 * mean,
        100.0 * sd,
        out.display()
    );
    Ok(())
}
