//! The end of a search: accuracy.png, the best architecture chosen and trained with the final
//! protocol over several seeds, each tested once (boundary.png), the same architecture trained
//! as the search trains children for comparison, and summary.json with the figures the README
//! quotes.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::config::{DataSettings, Settings, LAST_ROLLOUTS};
use crate::data::{Source, Splits};
use crate::nn::child::{Child, TensorData};
use crate::nn::final_training::{self, FinalJob};
use crate::outdir::device_name;
use crate::outdir::Stop;
use crate::output::plot;
use crate::output::report::{self, distinct_architectures, mean_sd, moving_average};
use crate::search::{self, RolloutRecord};
use crate::selection::{self, Judged};
use crate::space::SearchSpace;

/// The moving-average level whose first crossing summary.json reports.
pub const REACH_LEVEL: f64 = 0.90;

/// summary.json.
#[derive(Serialize)]
pub struct Summary {
    pub archsearch_version: &'static str,
    pub command: String,
    pub settings: Settings,
    pub data: DataSummary,
    pub seed: u64,
    pub device: String,
    pub torch_threads: i32,
    pub wall_seconds: f64,
    pub rollouts_done: usize,
    pub interrupted: bool,
    /// The architecture chosen by the rule of `selection` (docs/algorithms.md §3).
    pub best_architecture: Option<String>,
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
    /// Per search, when several ran in lockstep.
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
    pub seed: u64,
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
    pub space: &'a dyn SearchSpace,
    pub splits: &'a Splits,
    pub tensors: &'a TensorData,
    pub records: &'a [RolloutRecord],
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
        space,
        splits,
        tensors,
        records,
        done,
        source,
        wall_seconds,
        interrupted,
        quiet,
        stop,
    } = *f;
    let window = settings.moving_average;
    let per_search: Vec<Vec<&RolloutRecord>> = (0..settings.searches)
        .map(|s| records.iter().filter(|r| r.search == s).collect())
        .collect();
    accuracy_figure(&out.join("accuracy.png"), &per_search, window)?;

    let final_started = std::time::Instant::now();
    let all: Vec<&RolloutRecord> = records.iter().collect();
    let best = choose_best(space, tensors, settings, &all, stop, quiet)?;
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
    let figures = |rs: &[&RolloutRecord]| {
        let acc: Vec<f64> = rs.iter().map(|r| r.accuracy).collect();
        let tail = &acc[acc.len().saturating_sub(LAST_ROLLOUTS)..];
        let last = if tail.is_empty() {
            0.0
        } else {
            tail.iter().sum::<f64>() / tail.len() as f64
        };
        (
            last,
            report::first_reaching(&acc, window, REACH_LEVEL),
            tail.len(),
        )
    };
    let searches: Vec<SearchFigures> = if settings.searches > 1 {
        per_search
            .iter()
            .enumerate()
            .map(|(s, rs)| -> Result<SearchFigures> {
                let b = choose_best(space, tensors, settings, rs, stop, true)?;
                let (last, reached, _) = figures(rs);
                let mean = |tests: &[f64]| (!tests.is_empty()).then(|| mean_sd(tests).0);
                Ok(SearchFigures {
                    search: s,
                    seed: search::search_seed(settings.seed, s),
                    best_architecture: b.as_ref().map(|b| b.architecture.clone()),
                    best_dev_accuracy: b.as_ref().map(|b| b.candidate.search_best_dev_accuracy),
                    final_test_accuracy_mean: b.as_ref().and_then(|b| mean(&b.final_tests)),
                    search_protocol_test_accuracy_mean: b
                        .as_ref()
                        .and_then(|b| mean(&b.search_tests)),
                    last_mean_accuracy: last,
                    rollout_reaching_level: reached,
                })
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
        device: device_name(tensors.device),
        torch_threads: tch::get_num_threads(),
        wall_seconds,
        rollouts_done: done,
        // A stop during the retraining interrupts the run too: fewer test accuracies.
        interrupted: interrupted || stop.requested(),
        best_architecture: best.as_ref().map(|b| b.architecture.clone()),
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
        distinct_architectures: distinct_architectures(records),
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

/// The architecture a search's records choose, and how it tests.
struct Best {
    architecture: String,
    /// How the search saw it.
    candidate: selection::Candidate,
    /// Every candidate the final protocol trained (empty when stopped before).
    judged: Vec<Judged>,
    /// Final protocol: test accuracy per seed, and the first seed's net.
    final_tests: Vec<f64>,
    final_child: Option<Child>,
    /// The search's child training: the same.
    search_tests: Vec<f64>,
    search_child: Option<Child>,
    final_interrupted: bool,
}

impl Best {
    fn chosen(&self) -> Option<&Judged> {
        self.judged.iter().find(|j| j.chosen)
    }
}

/// Chooses the best architecture of `records` (`selection`): the first `final.candidates` by
/// their shrunk mean dev accuracy are trained with the final protocol, one training per
/// retraining seed, and the best mean dev accuracy less one standard error wins. Only the
/// winner is tested, with both protocols. Stopped before or during the final trainings, the
/// choice falls on the best judged so far, or on the first candidate.
fn choose_best(
    space: &dyn SearchSpace,
    tensors: &TensorData,
    settings: &Settings,
    records: &[&RolloutRecord],
    stop: &Stop,
    quiet: bool,
) -> Result<Option<Best>> {
    let fs = &settings.final_training;
    let candidates = selection::candidates(
        records
            .iter()
            .map(|r| (r.architecture.as_str(), r.accuracy)),
        fs.candidates,
        fs.prior_samples,
    );
    let Some(first) = candidates.first().cloned() else {
        return Ok(None);
    };
    let decisions: HashMap<&str, &[usize]> = records
        .iter()
        .map(|r| (r.architecture.as_str(), r.decisions.as_slice()))
        .collect();
    let spec_of = |architecture: &str| {
        space.decode(
            decisions[architecture],
            tensors.n_features,
            tensors.n_classes,
        )
    };
    let seeds: Vec<u64> = (0..settings.retrain_seeds)
        .map(|i| retrain_seed(settings.seed, i))
        .collect();
    let (mut candidate, mut judged, mut final_children, mut final_interrupted) =
        (first, Vec::new(), Vec::new(), true);
    if !stop.requested() {
        crate::output::progress::say(
            quiet,
            &format!(
                "choosing the best architecture: {} candidates, each trained {} times for {} epochs",
                candidates.len(),
                seeds.len(),
                fs.max_epochs
            ),
        );
        let data = final_training::train_data(tensors);
        let choice = selection::choose(candidates, |c| {
            let job = FinalJob::new(spec_of(&c.architecture), fs);
            final_training::train_seeds(&job, &data, &seeds, stop.flag())
        })?;
        final_interrupted = choice.interrupted;
        if let Some((i, trainings)) = choice.chosen {
            candidate = choice.judged[i].candidate.clone();
            final_children = trainings.children;
        }
        judged = choice.judged;
    }
    let final_tests = final_children
        .iter()
        .map(|c| c.accuracy(&tensors.test))
        .collect();
    let (search_tests, search_child) = retrain_and_test(
        &spec_of(&candidate.architecture),
        &settings.child,
        tensors,
        settings.seed,
        settings.retrain_seeds,
        stop,
    );
    Ok(Some(Best {
        architecture: candidate.architecture.clone(),
        candidate,
        judged,
        final_tests,
        final_child: final_children.into_iter().next(),
        search_tests,
        search_child,
        final_interrupted,
    }))
}

/// Trains `spec` from scratch `times` times (seeds from `seed`) and tests each child once;
/// returns the test accuracies and the first child (for the boundary plot). Once `stop` is
/// requested no child starts and the one in training is dropped: only whole retrainings count.
pub fn retrain_and_test(
    spec: &crate::nn::mlp::MlpSpec,
    child: &crate::config::ChildSettings,
    tensors: &TensorData,
    seed: u64,
    times: usize,
    stop: &Stop,
) -> (Vec<f64>, Option<Child>) {
    let mut first = None;
    let mut accuracies = Vec::new();
    for i in 0..times {
        if stop.requested() {
            break;
        }
        let (trained, _) = crate::nn::cpu_mlp::train_fresh_child(
            spec,
            tensors,
            child,
            retrain_seed(seed, i),
            stop,
        );
        if stop.requested() {
            break;
        }
        accuracies.push(trained.accuracy(&tensors.test));
        first.get_or_insert(trained);
    }
    (accuracies, first)
}

/// The seed of the `i`-th retraining of the best architecture.
pub fn retrain_seed(seed: u64, i: usize) -> u64 {
    search::splitmix64(seed ^ 0x7E57_7E57_7E57_7E57).wrapping_add(i as u64)
}

/// accuracy.png: one search as points and moving averages; several as mean and min-max band.
fn accuracy_figure(path: &Path, per_search: &[Vec<&RolloutRecord>], window: usize) -> Result<()> {
    if per_search.len() == 1 {
        let acc: Vec<f64> = per_search[0].iter().map(|r| r.accuracy).collect();
        let rew: Vec<f64> = per_search[0].iter().map(|r| r.reward).collect();
        return plot::accuracy(path, &acc, &rew, window);
    }
    let band = |f: fn(&RolloutRecord) -> f64, label: String| {
        let mas: Vec<Vec<f64>> = per_search
            .iter()
            .map(|rs| moving_average(&rs.iter().map(|r| f(r)).collect::<Vec<_>>(), window))
            .collect();
        let n = mas.iter().map(Vec::len).min().unwrap_or(0);
        let at = |i: usize| mas.iter().map(move |m| m[i]);
        plot::Curve {
            label,
            values: (0..n)
                .map(|i| at(i).sum::<f64>() / mas.len() as f64)
                .collect(),
            band: Some((
                (0..n).map(|i| at(i).fold(f64::MAX, f64::min)).collect(),
                (0..n).map(|i| at(i).fold(f64::MIN, f64::max)).collect(),
            )),
        }
    };
    let s = per_search.len();
    let curves = [
        band(
            |r| r.accuracy,
            format!(
                "dev accuracy, moving average of {window}: mean of {s} searches, band min to max"
            ),
        ),
        band(
            |r| r.reward,
            format!("reward, moving average of {window}: mean of {s} searches, band min to max"),
        ),
    ];
    let low = curves[1]
        .band
        .as_ref()
        .map(|b| b.0.iter().copied().fold(0.0f64, f64::min))
        .unwrap_or(0.0)
        .max(-1.2);
    plot::curves(
        path,
        &format!("Architecture search: {s} searches in lockstep"),
        "rollout",
        "dev accuracy / reward",
        &curves,
        (low - 0.02, 1.02),
    )
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
            "  search {} (seed {}): best {} dev {:.3}, final test {:.2} % (search protocol {:.2} %), last-{} mean {:.3}, reached {:.2} at {}",
            f.search,
            f.seed,
            f.best_architecture.as_deref().unwrap_or("-"),
            f.best_dev_accuracy.unwrap_or(0.0),
            100.0 * f.final_test_accuracy_mean.unwrap_or(0.0),
            100.0 * f.search_protocol_test_accuracy_mean.unwrap_or(0.0),
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
