//! Which architecture a search reports as its best (docs/algorithms.md §3). A child's dev
//! accuracy on 100 points is a noisy reading, so the highest single one is mostly luck (the
//! winner's curse). Instead: rank what the search evaluated by its mean dev accuracy, shrunk
//! towards the search's mean so that one lucky sample counts for little; train the first few
//! candidates with the final protocol over the same seeds; keep the highest mean dev accuracy
//! less one standard error, so a candidate whose trainings disagree needs a higher mean to win,
//! and among equal scores (a dev split the nets all but saturate) the lowest mean dev
//! cross-entropy. The test split plays no part.

use std::collections::HashMap;

use anyhow::Result;
use serde::Serialize;

/// An architecture (or choice-list configuration) as the search saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// The architecture in the search's notation, or a configuration as JSON.
    pub architecture: String,
    pub times_sampled: usize,
    pub search_mean_dev_accuracy: f64,
    pub search_best_dev_accuracy: f64,
    /// The mean shrunk towards the search's mean: `(sum + k m) / (n + k)` for `n` samples,
    /// `k` prior samples and the mean `m` of every sample of the search.
    pub search_score: f64,
    /// Index of its first sample.
    #[serde(skip)]
    pub first_seen: usize,
}

/// Every architecture among `samples` (architecture, dev accuracy; in the order evaluated),
/// ranked by `search_score`, then by samples (more first), then by first appearance; the first
/// `n` of them.
pub fn candidates<'a>(
    samples: impl IntoIterator<Item = (&'a str, f64)>,
    n: usize,
    prior_samples: f64,
) -> Vec<Candidate> {
    let mut by_architecture: HashMap<&str, usize> = HashMap::new();
    let mut found: Vec<(Candidate, f64)> = Vec::new(); // with the sum of accuracies
    let (mut total, mut count) = (0.0, 0usize);
    for (i, (architecture, accuracy)) in samples.into_iter().enumerate() {
        total += accuracy;
        count += 1;
        let k = *by_architecture.entry(architecture).or_insert_with(|| {
            found.push((
                Candidate {
                    architecture: architecture.to_string(),
                    times_sampled: 0,
                    search_mean_dev_accuracy: 0.0,
                    search_best_dev_accuracy: f64::NEG_INFINITY,
                    search_score: 0.0,
                    first_seen: i,
                },
                0.0,
            ));
            found.len() - 1
        });
        let (c, sum) = &mut found[k];
        c.times_sampled += 1;
        *sum += accuracy;
        c.search_best_dev_accuracy = c.search_best_dev_accuracy.max(accuracy);
    }
    let mean_of_search = total / count.max(1) as f64;
    let mut ranked: Vec<Candidate> = found
        .into_iter()
        .map(|(mut c, sum)| {
            let n = c.times_sampled as f64;
            c.search_mean_dev_accuracy = sum / n;
            c.search_score = (sum + prior_samples * mean_of_search) / (n + prior_samples);
            c
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.search_score
            .total_cmp(&a.search_score)
            .then(b.times_sampled.cmp(&a.times_sampled))
            .then(a.first_seen.cmp(&b.first_seen))
    });
    ranked.truncate(n);
    ranked
}

/// A candidate after its final trainings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Judged {
    #[serde(flatten)]
    pub candidate: Candidate,
    /// Dev accuracy of the weights each final training kept, one per seed.
    pub final_dev_accuracies: Vec<f64>,
    pub final_dev_accuracy_mean: f64,
    pub final_dev_accuracy_sd: f64,
    /// `mean - sd / sqrt(trainings)`: what the choice maximises.
    pub final_score: f64,
    /// Mean cross-entropy on dev of the kept weights: what breaks ties of `final_score`.
    pub final_dev_loss_mean: f64,
    pub chosen: bool,
}

/// Mean, sample sd and `mean - sd / sqrt(n)` of a candidate's final dev accuracies.
pub fn score(dev_accuracies: &[f64]) -> (f64, f64, f64) {
    let (mean, sd) = crate::stats::mean_sd(dev_accuracies);
    (
        mean,
        sd,
        mean - sd / (dev_accuracies.len().max(1) as f64).sqrt(),
    )
}

/// Scores closer than this are equal (the same dev accuracies summed in another order).
const SCORE_TIE: f64 = 1e-9;

/// The index of the highest `(score, -loss)`: scores within SCORE_TIE tie and go to the lower
/// loss, then to the earlier (better ranked) candidate. NaN scores (no finished training) never
/// win.
pub fn pick(scores: &[(f64, f64)]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &(s, loss)) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => {
                let (bs, bl) = scores[b];
                s > bs + SCORE_TIE || (s >= bs - SCORE_TIE && loss < bl)
            }
        };
        if better {
            best = Some(i);
        }
    }
    best
}

/// The outcome of a choice: every candidate judged, and the winner's index with what its
/// trainings produced.
pub struct Choice<R> {
    pub judged: Vec<Judged>,
    pub chosen: Option<(usize, R)>,
    /// The stop flag ended the trainings early; candidates not judged are left out.
    pub interrupted: bool,
}

/// What training one candidate gave: its dev accuracies and losses (one per seed) and whatever
/// else the caller keeps for the winner (trained networks, say).
pub struct Trained<R> {
    pub dev_accuracies: Vec<f64>,
    pub dev_losses: Vec<f64>,
    pub payload: R,
    pub interrupted: bool,
}

/// Trains each candidate with `train`, in rank order, and picks the winner by `score`. Only the
/// current leader's payload is kept.
pub fn choose<R>(
    candidates: Vec<Candidate>,
    mut train: impl FnMut(&Candidate) -> Result<Trained<R>>,
) -> Result<Choice<R>> {
    let mut judged = Vec::new();
    let mut leader: Option<(usize, R)> = None;
    let mut interrupted = false;
    for candidate in candidates {
        let trained = train(&candidate)?;
        interrupted = trained.interrupted;
        if trained.dev_accuracies.is_empty() {
            break;
        }
        let (mean, sd, s) = score(&trained.dev_accuracies);
        judged.push(Judged {
            candidate,
            final_dev_accuracies: trained.dev_accuracies,
            final_dev_accuracy_mean: mean,
            final_dev_accuracy_sd: sd,
            final_score: s,
            final_dev_loss_mean: crate::stats::mean_sd(&trained.dev_losses).0,
            chosen: false,
        });
        let scores: Vec<(f64, f64)> = judged
            .iter()
            .map(|j| (j.final_score, j.final_dev_loss_mean))
            .collect();
        if pick(&scores) == Some(judged.len() - 1) {
            leader = Some((judged.len() - 1, trained.payload));
        }
        if interrupted {
            break;
        }
    }
    if let Some((i, _)) = &leader {
        judged[*i].chosen = true;
    }
    Ok(Choice {
        judged,
        chosen: leader,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(list: &[(&'static str, f64)]) -> Vec<(&'static str, f64)> {
        list.to_vec()
    }

    #[test]
    fn one_lucky_sample_ranks_below_a_steady_architecture() {
        // The search's mean is (0.98 + 9 * 0.95 + 2 * 0.5) / 12 = 0.8775 (hand computed);
        // [lucky] scores (0.98 + 0.8775) / 2 = 0.92875, [steady] (8.55 + 0.8775) / 10 = 0.94275,
        // [bad] (1.0 + 0.8775) / 3 = 0.62583.
        let s = samples(&[
            ("[bad]", 0.5),
            ("[lucky]", 0.98),
            ("[steady]", 0.95),
            ("[bad]", 0.5),
        ]);
        let mut all = s.clone();
        all.extend(std::iter::repeat_n(("[steady]", 0.95), 8));
        let ranked = candidates(all.iter().copied(), 10, 1.0);
        let names: Vec<&str> = ranked.iter().map(|c| c.architecture.as_str()).collect();
        assert_eq!(names, ["[steady]", "[lucky]", "[bad]"]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(ranked[0].search_score, 0.94275));
        assert!(close(ranked[1].search_score, 0.92875));
        assert!(close(ranked[2].search_score, 1.8775 / 3.0));
        assert_eq!(
            (ranked[0].times_sampled, ranked[0].first_seen),
            (9, 2),
            "counted over every sample"
        );
        assert!(close(ranked[0].search_mean_dev_accuracy, 0.95));
        assert_eq!(ranked[1].search_best_dev_accuracy, 0.98);
        // The highest single accuracy wins only without the prior: the old rule's winner.
        let raw = candidates(all.iter().copied(), 1, 0.0);
        assert_eq!(raw[0].architecture, "[lucky]");
        assert_eq!(candidates(all.iter().copied(), 2, 1.0).len(), 2);
    }

    #[test]
    fn ties_in_rank_go_to_more_samples_then_to_the_first_seen() {
        // Every sample 0.75 (exact in binary): all scores equal the search's mean.
        let s = samples(&[("[a]", 0.75), ("[b]", 0.75), ("[c]", 0.75), ("[b]", 0.75)]);
        let names: Vec<String> = candidates(s.iter().copied(), 3, 1.0)
            .into_iter()
            .map(|c| c.architecture)
            .collect();
        assert_eq!(names, ["[b]", "[a]", "[c]"]);
        assert!(candidates(std::iter::empty(), 3, 1.0).is_empty());
    }

    #[test]
    fn the_score_is_the_mean_less_one_standard_error() {
        // [0.98, 0.96]: mean 0.97, sample sd sqrt(2 * 0.0001) = 0.014142, se 0.01.
        let (mean, sd, s) = score(&[0.98, 0.96]);
        assert!((mean - 0.97).abs() < 1e-12);
        assert!((sd - 0.0002f64.sqrt()).abs() < 1e-12);
        assert!((s - 0.96).abs() < 1e-12);
        // One training: no spread measured, the score is the accuracy.
        assert_eq!(score(&[0.9]), (0.9, 0.0, 0.9));
    }

    #[test]
    fn agreeing_trainings_beat_a_higher_but_scattered_mean() {
        // The case: one architecture whose trainings scatter (mean 0.92, sd 0.0430,
        // se 0.0192: score 0.9008), one steadier (mean 0.91, sd 0.0071, se 0.0032: 0.9068).
        let scattered = [0.96, 0.88, 0.87, 0.96, 0.93];
        let steady = [0.91, 0.91, 0.90, 0.92, 0.91];
        let (m1, _, s1) = score(&scattered);
        let (m2, _, s2) = score(&steady);
        assert!(m1 > m2 && s2 > s1);
        assert_eq!(pick(&[(s1, 0.1), (s2, 0.2)]), Some(1));
        // With equal spread the higher mean wins whatever the loss; equal scores go to the lower
        // dev loss, then to the earlier candidate.
        assert_eq!(pick(&[(0.9, 0.01), (0.95, 0.3), (0.94, 0.2)]), Some(1));
        assert_eq!(pick(&[(0.99, 0.05), (0.99, 0.04), (0.99, 0.06)]), Some(1));
        assert_eq!(pick(&[(0.99, 0.05), (0.99, 0.05)]), Some(0));
        // The same accuracies in another order give the same score, up to rounding: a tie.
        let (_, _, a) = score(&[0.99, 0.98, 0.97, 0.99, 0.96]);
        let (_, _, b) = score(&[0.96, 0.99, 0.97, 0.98, 0.99]);
        assert_eq!(pick(&[(a, 0.05), (b, 0.04)]), Some(1));
        assert_eq!(pick(&[(f64::NAN, 0.0), (0.5, 1.0)]), Some(1));
        assert_eq!(pick(&[]), None);
    }

    fn candidate(name: &str) -> Candidate {
        Candidate {
            architecture: name.into(),
            times_sampled: 1,
            search_mean_dev_accuracy: 0.9,
            search_best_dev_accuracy: 0.9,
            search_score: 0.9,
            first_seen: 0,
        }
    }

    #[test]
    fn choose_trains_every_candidate_and_keeps_the_winners_payload() {
        let dev: HashMap<&str, Vec<f64>> = [
            ("[a]", vec![0.95, 0.85, 0.95]),
            ("[b]", vec![0.92, 0.92, 0.93]),
            ("[c]", vec![0.90, 0.90, 0.90]),
        ]
        .into_iter()
        .collect();
        let mut trained = Vec::new();
        let choice = choose(
            vec![candidate("[a]"), candidate("[b]"), candidate("[c]")],
            |c| {
                trained.push(c.architecture.clone());
                Ok(Trained {
                    dev_accuracies: dev[c.architecture.as_str()].clone(),
                    dev_losses: vec![0.1; 3],
                    payload: c.architecture.clone(),
                    interrupted: false,
                })
            },
        )
        .unwrap();
        assert_eq!(trained, ["[a]", "[b]", "[c]"]);
        let (i, payload) = choice.chosen.unwrap();
        assert_eq!((i, payload.as_str()), (1, "[b]"));
        let flags: Vec<bool> = choice.judged.iter().map(|j| j.chosen).collect();
        assert_eq!(flags, [false, true, false]);
        assert!(!choice.interrupted);
        assert_eq!(choice.judged[2].final_dev_accuracy_sd, 0.0);
    }

    #[test]
    fn a_saturated_dev_split_is_decided_by_the_dev_loss() {
        // Every training of both scores 0.99 on dev: the lower cross-entropy wins.
        let loss: HashMap<&str, f64> = [("[a]", 0.06), ("[b]", 0.04)].into_iter().collect();
        let choice = choose(vec![candidate("[a]"), candidate("[b]")], |c| {
            Ok(Trained {
                dev_accuracies: vec![0.99; 5],
                dev_losses: vec![loss[c.architecture.as_str()]; 5],
                payload: (),
                interrupted: false,
            })
        })
        .unwrap();
        assert_eq!(choice.chosen.map(|(i, _)| i), Some(1));
        assert!((choice.judged[1].final_dev_loss_mean - 0.04).abs() < 1e-12);
    }

    #[test]
    fn an_interruption_judges_what_finished_and_stops() {
        let mut calls = 0;
        let choice = choose(vec![candidate("[a]"), candidate("[b]")], |_| {
            calls += 1;
            Ok(Trained {
                dev_accuracies: vec![0.9],
                dev_losses: vec![0.3],
                payload: (),
                interrupted: true,
            })
        })
        .unwrap();
        assert_eq!((calls, choice.judged.len()), (1, 1));
        assert!(choice.interrupted && choice.chosen.is_some());
        let none = choose(vec![candidate("[a]")], |_| {
            Ok(Trained {
                dev_accuracies: vec![],
                dev_losses: vec![],
                payload: (),
                interrupted: true,
            })
        })
        .unwrap();
        assert!(none.judged.is_empty() && none.chosen.is_none());
    }
}
