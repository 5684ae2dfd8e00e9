//! The best architecture of a search: chosen by the rule of `selection.rs` among the rollouts
//! (the top candidates trained with the final protocol of `nn/final_training.rs`), then tested
//! once per retraining seed, beside the same architecture trained as the search trains its
//! children (docs/algorithms.md §3).

use anyhow::Result;

use crate::config::{ChildSettings, Settings};
use crate::nn::child::{Child, TensorData};
use crate::nn::final_training::{self, FinalJob};
use crate::nn::mlp::MlpSpec;
use crate::outdir::Stop;
use crate::selection::{self, Judged};

/// A rollout's architecture (its rollouts.csv text) as an MLP and its child training, with
/// `defaults` for what the configuration does not set: the reading of the space's evaluator.
pub type Interpret<'a> = dyn Fn(&str, &ChildSettings) -> Result<(MlpSpec, ChildSettings)> + 'a;

/// The architecture a search's records choose, and how it tests.
pub struct Best {
    pub architecture: String,
    /// How the search saw it.
    pub candidate: selection::Candidate,
    /// Every candidate the final protocol trained (empty when stopped before).
    pub judged: Vec<Judged>,
    /// Final protocol: test accuracy per seed, and the first seed's net.
    pub final_tests: Vec<f64>,
    pub final_child: Option<Child>,
    /// The search's child training: the same.
    pub search_tests: Vec<f64>,
    pub search_child: Option<Child>,
    pub final_interrupted: bool,
}

impl Best {
    pub fn chosen(&self) -> Option<&Judged> {
        self.judged.iter().find(|j| j.chosen)
    }
}

/// Chooses the best architecture of `records` (`selection`): the first `final.candidates` by
/// their shrunk mean dev accuracy are trained with the final protocol, one training per
/// retraining seed, and the best mean dev accuracy less one standard error wins. Only the
/// winner is tested, with both protocols. Stopped before or during the final trainings, the
/// choice falls on the best judged so far, or on the first candidate.
pub fn choose_best(
    settings: &Settings,
    tensors: &TensorData,
    interpret: &Interpret,
    rollouts: &[(&str, f64)],
    stop: &Stop,
    quiet: bool,
) -> Result<Option<Best>> {
    let fs = &settings.final_training;
    let candidates =
        selection::candidates(rollouts.iter().copied(), fs.candidates, fs.prior_samples);
    let Some(first) = candidates.first().cloned() else {
        return Ok(None);
    };
    let seeds: Vec<u64> = (0..settings.retrain_seeds)
        .map(|i| crate::seeds::retrain_seed(settings.seed, i))
        .collect();
    let (mut candidate, mut judged, mut final_children, mut final_interrupted) =
        (first, Vec::new(), Vec::new(), true);
    if !stop.requested() {
        say(
            quiet,
            &format!(
                "choosing the best architecture: {} candidates, each trained {} times for {} epochs",
                candidates.len(),
                seeds.len(),
                fs.max_epochs
            ),
        );
        let data = final_training::train_data(tensors);
        // What the configuration does not set (its learning rate, batch size, dropout) the
        // final protocol sets.
        let defaults = final_training::child_defaults(fs, &settings.child);
        let choice = selection::choose(candidates, |c| {
            let (spec, child) = interpret(&c.architecture, &defaults)?;
            let job = FinalJob::with_child(spec, fs, &child);
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
    let (spec, child) = interpret(&candidate.architecture, &settings.child)?;
    let (search_tests, search_child) = retrain_and_test(
        &spec,
        &child,
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
            crate::seeds::retrain_seed(seed, i),
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

/// A progress message on stderr, unless quiet.
fn say(quiet: bool, text: &str) {
    if !quiet {
        crate::errln!("{text}");
    }
}
