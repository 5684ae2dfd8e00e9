//! The end of every search: the learning-curve figures, the best architecture chosen and
//! trained with the final protocol over several seeds, each tested once (boundary.png), the same
//! architecture trained as the search trains children for comparison, and summary.json with the
//! figures the README quotes; one writer for every command.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::best::{choose_best, Interpret};
use crate::config::{DataSettings, Settings, LAST_ROLLOUTS, REACH_LEVEL};
use crate::data::{Source, Splits};
use crate::nn::child::TensorData;
use crate::outdir::device_name;
use crate::outdir::Stop;
use crate::output::record::Record;
use crate::output::{figures, plot};
use crate::selection::Judged;
use crate::stats::{self, mean_sd};

/// summary.json.
#[derive(Serialize)]
pub struct Summary {
    pub archsearch_version: &'static str,
    pub command: String,
    pub settings: Settings,
    pub data: DataSummary,
    pub seed: u64,
    /// The YAML space searched (choice-list); none for the built-in half-moon space.
    pub space: Option<String>,
    /// The strategies searched, and the seeds each ran with.
    pub strategies: Vec<String>,
    pub seeds: Vec<u64>,
    pub device: String,
    pub torch_threads: i32,
    pub wall_seconds: f64,
    pub rollouts_done: usize,
    pub interrupted: bool,
    /// The architecture chosen by the rule of `selection` (docs/algorithms.md §3) over every
    /// search's rollouts, as rollouts.csv writes it, and as a configuration (JSON).
    pub best_architecture: Option<String>,
    pub best_configuration: Option<serde_json::Value>,
    /// The strategy that first proposed it.
    pub best_strategy: Option<String>,
    /// Its highest and mean dev accuracy during the search, and how often it was sampled.
    pub best_dev_accuracy: Option<f64>,
    pub best_mean_dev_accuracy: Option<f64>,
    pub best_times_sampled: Option<usize>,
    /// The chosen architecture trained with the final protocol (`settings.final`), once per
    /// retraining seed, each tested once: the figure to quote.
    pub final_test_accuracies: Vec<f64>,
    pub final_test_accuracy_mean: Option<f64>,
    pub final_test_accuracy_sd: Option<f64>,
    /// The same architecture trained as the search trains children (`settings.child`), with
    /// the same number of seeds: what the search saw.
    pub search_protocol_test_accuracies: Vec<f64>,
    pub search_protocol_test_accuracy_mean: Option<f64>,
    pub search_protocol_test_accuracy_sd: Option<f64>,
    /// Every candidate trained with the final protocol, its dev figures, and which was chosen.
    pub candidates: Vec<Judged>,
    /// A stop signal cut the final trainings short: the figures cover what finished.
    pub final_training_interrupted: bool,
    /// Wall seconds of choosing and training the best (all searches), not in `wall_seconds`.
    pub final_training_seconds: f64,
    /// On the moons: the Bayes-optimal classifier's accuracy on this test split, the ceiling
    /// the test accuracy is to be read against (97.1 % on average over splits).
    pub bayes_test_accuracy: Option<f64>,
    pub distinct_architectures: usize,
    /// Mean dev accuracy of the last LAST_ROLLOUTS rollouts (all of them when fewer).
    pub last_mean_accuracy: f64,
    pub last_rollouts: usize,
    /// First rollout at which the moving average of dev accuracy reached REACH_LEVEL.
    pub rollout_reaching_level: Option<usize>,
    pub reach_level: f64,
    pub moving_average_window: usize,
    /// Per search, when several ran side by side.
    pub searches: Vec<SearchFigures>,
}

#[derive(Serialize)]
pub struct DataSummary {
    pub source: Source,
    pub generator: Option<DataSettings>,
    pub train: usize,
    pub dev: usize,
    pub test: usize,
    pub features: usize,
    pub classes: usize,
}

/// Figures of one search of several.
#[derive(Serialize)]
pub struct SearchFigures {
    pub search: usize,
    pub strategy: String,
    pub seed: u64,
    pub rollouts: usize,
    /// Chosen by the rule of `selection` among this search's rollouts when every search ran the
    /// same strategy (repeats over seeds); else its highest dev accuracy (no final training).
    pub best_architecture: Option<String>,
    pub best_dev_accuracy: Option<f64>,
    /// Mean test accuracy of this search's best architecture trained with the final protocol.
    pub final_test_accuracy_mean: Option<f64>,
    /// The same with the search's child training.
    pub search_protocol_test_accuracy_mean: Option<f64>,
    pub last_mean_accuracy: f64,
    pub rollout_reaching_level: Option<usize>,
}

/// What a finished (or interrupted) search hands to `finish`.
pub struct Finished<'a> {
    pub out: &'a Path,
    pub settings: &'a Settings,
    /// Each search's (strategy, seed), in the loop's order (`Record::search` indexes it).
    pub searches: &'a [(String, u64)],
    /// The YAML space's file, if the run searched one.
    pub space: Option<String>,
    /// A rollout's architecture (its rollouts.csv text) as an MLP and its child training, with
    /// `defaults` for what the configuration does not set: the space's evaluator's reading.
    pub interpret: &'a Interpret<'a>,
    pub splits: &'a Splits,
    pub tensors: &'a TensorData,
    pub records: &'a [Record],
    pub done: usize,
    pub source: &'a Source,
    /// Wall seconds over every session of the run.
    pub wall_seconds: f64,
    /// The search stopped before its last rollout.
    pub interrupted: bool,
    pub quiet: bool,
    /// Set by SIGINT or SIGTERM: the final trainings stop (or do not start).
    pub stop: &'a Stop,
}

/// Plots, retraining of the best architecture on the test split, and summary.json.
pub fn finish(f: &Finished) -> Result<Summary> {
    let Finished {
        out,
        settings,
        splits,
        tensors,
        records,
        done,
        source,
        wall_seconds,
        interrupted,
        quiet,
        stop,
        ..
    } = *f;
    let window = settings.moving_average;
    let per_search: Vec<Vec<&Record>> = (0..f.searches.len())
        .map(|s| records.iter().filter(|r| r.search == s).collect())
        .collect();
    let mut strategies: Vec<String> = Vec::new();
    let mut seeds: Vec<u64> = Vec::new();
    for (name, seed) in f.searches {
        if !strategies.contains(name) {
            strategies.push(name.clone());
        }
        if !seeds.contains(seed) {
            seeds.push(*seed);
        }
    }
    figures::accuracy_figure(
        &out.join("accuracy.png"),
        &per_search,
        &strategies,
        f.searches,
        window,
    )?;
    figures::best_so_far_figure(
        &out.join("strategies.png"),
        &per_search,
        &strategies,
        f.searches,
    )?;

    let final_started = std::time::Instant::now();
    let all: Vec<&Record> = records.iter().collect();
    let best = choose_best(settings, tensors, f.interpret, &pairs(&all), stop, quiet)?;
    if let Some(best) = &best {
        let child = best.final_child.as_ref().or(best.search_child.as_ref());
        if let (Some(child), 2) = (child, tensors.n_features) {
            let title = match best.chosen() {
                Some(j) => format!(
                    "Best architecture {} (final dev accuracy {:.3}), test points",
                    best.architecture, j.final_dev_accuracy_mean
                ),
                None => format!(
                    "Best architecture {} (search protocol), test points",
                    best.architecture
                ),
            };
            plot::child_boundary(
                &out.join("boundary.png"),
                &title,
                splits,
                child,
                tensors.device,
            )?;
        }
    }
    let figures_of = |tests: &[f64]| {
        let (mean, sd) = mean_sd(tests);
        (
            (!tests.is_empty()).then_some(mean),
            (!tests.is_empty()).then_some(sd),
        )
    };
    let no_tests = Vec::new();
    let final_tests = best.as_ref().map_or(&no_tests, |b| &b.final_tests);
    let search_tests = best.as_ref().map_or(&no_tests, |b| &b.search_tests);
    let (final_mean, final_sd) = figures_of(final_tests);
    let (search_mean, search_sd) = figures_of(search_tests);
    let figures = |rs: &[&Record]| {
        let acc: Vec<f64> = rs.iter().map(|r| r.accuracy).collect();
        let tail = &acc[acc.len().saturating_sub(LAST_ROLLOUTS)..];
        let last = if tail.is_empty() {
            0.0
        } else {
            tail.iter().sum::<f64>() / tail.len() as f64
        };
        (
            last,
            stats::first_reaching(&acc, window, REACH_LEVEL),
            tail.len(),
        )
    };
    // Repeats of one strategy over seeds: each search's own best, trained with the final
    // protocol (the figures of the README's preset table). Strategies compared side by side:
    // each search's highest dev accuracy; one final training, of the best over all.
    let repeats = strategies.len() == 1;
    let searches: Vec<SearchFigures> = if f.searches.len() > 1 {
        per_search
            .iter()
            .enumerate()
            .map(|(s, rs)| -> Result<SearchFigures> {
                let (last, reached, _) = figures(rs);
                let mean = |tests: &[f64]| (!tests.is_empty()).then(|| mean_sd(tests).0);
                let (strategy, seed) = f.searches[s].clone();
                let mut figures = SearchFigures {
                    search: s,
                    strategy,
                    seed,
                    rollouts: rs.len(),
                    best_architecture: None,
                    best_dev_accuracy: None,
                    final_test_accuracy_mean: None,
                    search_protocol_test_accuracy_mean: None,
                    last_mean_accuracy: last,
                    rollout_reaching_level: reached,
                };
                if repeats {
                    let b = choose_best(settings, tensors, f.interpret, &pairs(rs), stop, true)?;
                    figures.best_architecture = b.as_ref().map(|b| b.architecture.clone());
                    figures.best_dev_accuracy =
                        b.as_ref().map(|b| b.candidate.search_best_dev_accuracy);
                    figures.final_test_accuracy_mean =
                        b.as_ref().and_then(|b| mean(&b.final_tests));
                    figures.search_protocol_test_accuracy_mean =
                        b.as_ref().and_then(|b| mean(&b.search_tests));
                } else if let Some(top) = rs.iter().max_by(|a, b| {
                    a.accuracy
                        .total_cmp(&b.accuracy)
                        .then(b.rollout.cmp(&a.rollout))
                }) {
                    figures.best_architecture = Some(top.architecture.clone());
                    figures.best_dev_accuracy = Some(top.accuracy);
                }
                Ok(figures)
            })
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    // With several searches: the mean of their last-rollouts figures, and the slowest to reach
    // the level (none if one never did).
    let (last_mean, reached, last_n) = if searches.is_empty() {
        figures(&per_search[0])
    } else {
        let mean =
            searches.iter().map(|f| f.last_mean_accuracy).sum::<f64>() / searches.len() as f64;
        let slowest = searches
            .iter()
            .map(|f| f.rollout_reaching_level)
            .collect::<Option<Vec<_>>>()
            .and_then(|r| r.into_iter().max());
        (mean, slowest, figures(&per_search[0]).2)
    };
    let best_strategy = best.as_ref().and_then(|b| {
        records
            .iter()
            .find(|r| r.architecture == b.architecture)
            .map(|r| r.strategy.clone())
    });
    let summary = Summary {
        archsearch_version: env!("CARGO_PKG_VERSION"),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        settings: settings.clone(),
        data: DataSummary {
            source: source.clone(),
            generator: matches!(source, Source::Moons).then(DataSettings::default),
            train: splits.train.len(),
            dev: splits.dev.len(),
            test: splits.test.len(),
            features: splits.train.n_features,
            classes: splits.train.n_classes,
        },
        seed: settings.seed,
        space: f.space.clone(),
        strategies,
        seeds,
        device: device_name(tensors.device),
        torch_threads: tch::get_num_threads(),
        wall_seconds,
        rollouts_done: done,
        // A stop during the retraining interrupts the run too: fewer test accuracies.
        interrupted: interrupted || stop.requested(),
        best_architecture: best.as_ref().map(|b| b.architecture.clone()),
        best_configuration: best.as_ref().map(|b| {
            serde_json::from_str(&b.architecture)
                .unwrap_or_else(|_| serde_json::Value::String(b.architecture.clone()))
        }),
        best_strategy,
        best_dev_accuracy: best.as_ref().map(|b| b.candidate.search_best_dev_accuracy),
        best_mean_dev_accuracy: best.as_ref().map(|b| b.candidate.search_mean_dev_accuracy),
        best_times_sampled: best.as_ref().map(|b| b.candidate.times_sampled),
        final_test_accuracies: final_tests.clone(),
        final_test_accuracy_mean: final_mean,
        final_test_accuracy_sd: final_sd,
        search_protocol_test_accuracies: search_tests.clone(),
        search_protocol_test_accuracy_mean: search_mean,
        search_protocol_test_accuracy_sd: search_sd,
        final_training_interrupted: best.as_ref().is_some_and(|b| b.final_interrupted),
        final_training_seconds: final_started.elapsed().as_secs_f64(),
        candidates: best.map(|b| b.judged).unwrap_or_default(),
        bayes_test_accuracy: matches!(source, Source::Moons).then(|| {
            crate::data::moons_bayes_accuracy(&splits.test, DataSettings::default().noise)
        }),
        distinct_architectures: stats::distinct(records.iter().map(|r| r.architecture.as_str())),
        last_mean_accuracy: last_mean,
        last_rollouts: last_n,
        rollout_reaching_level: reached,
        reach_level: REACH_LEVEL,
        moving_average_window: window,
        searches,
    };
    crate::outdir::write_json_atomically(&out.join("summary.json"), &summary)?;
    Ok(summary)
}

/// Each record's (architecture, dev accuracy), as the rule for the best reads them.
fn pairs<'a>(records: &[&'a Record]) -> Vec<(&'a str, f64)> {
    records
        .iter()
        .map(|r| (r.architecture.as_str(), r.accuracy))
        .collect()
}

/// The short report at the end of a run, on stdout.
pub fn print_summary(summary: &Summary, out: &Path) {
    crate::outln!(
        "done: {} rollouts in {:.1} s, the best chosen and trained in {:.1} s",
        summary.rollouts_done,
        summary.wall_seconds,
        summary.final_training_seconds
    );
    if let (Some(arch), Some(acc), Some(mean)) = (
        &summary.best_architecture,
        summary.best_dev_accuracy,
        summary.best_mean_dev_accuracy,
    ) {
        let how = match summary.candidates.iter().find(|j| j.chosen) {
            Some(j) => format!(
                "chosen of {} candidates by final dev accuracy {:.3} +- {:.3}; ",
                summary.candidates.len(),
                j.final_dev_accuracy_mean,
                j.final_dev_accuracy_sd
            ),
            None => String::new(),
        };
        crate::outln!(
            "best architecture: {arch} ({how}in the search: sampled {} times, dev accuracy mean {mean:.3}, highest {acc:.3})",
            summary.best_times_sampled.unwrap_or(0)
        );
    }
    if let (Some(m), Some(sd)) = (
        summary.final_test_accuracy_mean,
        summary.final_test_accuracy_sd,
    ) {
        crate::outln!(
            "final test accuracy, {} trainings of {} epochs: {:.2} % +- {:.2}{}{}",
            summary.final_test_accuracies.len(),
            summary.settings.final_training.max_epochs,
            100.0 * m,
            100.0 * sd,
            summary
                .bayes_test_accuracy
                .map(|b| format!(
                    " (the Bayes-optimal classifier: {:.2} % on these test points)",
                    100.0 * b
                ))
                .unwrap_or_default(),
            if summary.final_training_interrupted {
                " [final trainings interrupted]"
            } else {
                ""
            }
        );
    }
    if let (Some(m), Some(sd)) = (
        summary.search_protocol_test_accuracy_mean,
        summary.search_protocol_test_accuracy_sd,
    ) {
        crate::outln!(
            "search-protocol test accuracy (trained as the search trains children, {} seeds): {:.2} % +- {:.2}",
            summary.search_protocol_test_accuracies.len(),
            100.0 * m,
            100.0 * sd
        );
    }
    crate::outln!(
        "mean dev accuracy of the last {} rollouts: {:.3}; moving average ({}) first reached {:.2} at rollout {}",
        summary.last_rollouts,
        summary.last_mean_accuracy,
        summary.moving_average_window,
        summary.reach_level,
        summary.rollout_reaching_level.map(|r| r.to_string()).unwrap_or_else(|| "never".into())
    );
    for f in &summary.searches {
        crate::outln!(
            "  search {} ({} seed {}): best {} dev {:.3}{}, last-{} mean {:.3}, reached {:.2} at {}",
            f.search,
            f.strategy,
            f.seed,
            f.best_architecture.as_deref().unwrap_or("-"),
            f.best_dev_accuracy.unwrap_or(0.0),
            match (f.final_test_accuracy_mean, f.search_protocol_test_accuracy_mean) {
                (Some(t), Some(p)) => format!(
                    ", final test {:.2} % (search protocol {:.2} %)",
                    100.0 * t,
                    100.0 * p
                ),
                _ => String::new(),
            },
            summary.last_rollouts,
            f.last_mean_accuracy,
            summary.reach_level,
            f.rollout_reaching_level.map(|r| r.to_string()).unwrap_or_else(|| "never".into())
        );
    }
    crate::outln!(
        "{} distinct architectures; results in {}",
        summary.distinct_architectures,
        out.display()
    );
}
