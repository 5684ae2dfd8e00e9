//! The one search loop of every command: each search asks its strategy for proposals, the
//! evaluator trains (or scores) their children, each strategy is told the outcomes, and the
//! records go to the caller, who writes them and checkpoints. Several searches (strategies and
//! seeds) advance side by side, so their children train as one batch. The loop sees strategies
//! only through `Strategy` and children only through `Evaluator`: it names no space and no
//! model.

use std::time::Instant;

use anyhow::Result;
use rand_pcg::Pcg64;

use crate::nn::evaluator::{EvalJob, Evaluator};
use crate::output::checkpoint::SearchCheckpoint;
use crate::output::record::Record;
use crate::seeds::child_seed;
use crate::strategy::reinforce::Diverged;
use crate::strategy::Strategy;

/// One search: a strategy, its seed and its random stream.
pub struct Search<'a> {
    pub strategy: Box<dyn Strategy + 'a>,
    pub seed: u64,
    pub rng: Pcg64,
}

impl<'a> Search<'a> {
    /// A search of `strategy`, its stream drawn from `seed`.
    pub fn new(strategy: Box<dyn Strategy + 'a>, seed: u64, rng: Pcg64) -> Self {
        Search {
            strategy,
            seed,
            rng,
        }
    }
}

/// Everything the loop needs to continue: the searches and how far they got.
pub struct SearchState<'a> {
    pub searches: Vec<Search<'a>>,
    /// Rollouts done per search (the searches advance together).
    pub done: usize,
}

impl<'a> SearchState<'a> {
    /// Each search's (strategy, seed): what tells its records apart.
    pub fn keys(&self) -> Vec<(String, u64)> {
        self.searches
            .iter()
            .map(|s| (s.strategy.name().to_string(), s.seed))
            .collect()
    }

    /// What a checkpoint keeps; an error names the search whose state is not finite.
    pub fn checkpoint(&self) -> Result<Vec<SearchCheckpoint>> {
        self.searches
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(SearchCheckpoint {
                    strategy: s.strategy.name().to_string(),
                    seed: s.seed,
                    rng: s.rng.clone(),
                    state: s
                        .strategy
                        .state()
                        .map_err(|e| anyhow::anyhow!("search {i}'s {e}"))?,
                })
            })
            .collect()
    }

    /// Continues from a checkpoint of the same searches, `done` rollouts each.
    pub fn restore(&mut self, saved: &[SearchCheckpoint], done: usize) -> Result<()> {
        anyhow::ensure!(
            saved.len() == self.searches.len(),
            "the checkpoint holds {} searches, the settings {}",
            saved.len(),
            self.searches.len()
        );
        for (s, c) in self.searches.iter_mut().zip(saved) {
            anyhow::ensure!(
                s.strategy.name() == c.strategy && s.seed == c.seed,
                "the checkpoint holds a search of {} seed {} where this run has {} seed {}",
                c.strategy,
                c.seed,
                s.strategy.name(),
                s.seed
            );
            s.strategy.restore(&c.state)?;
            s.rng = c.rng.clone();
        }
        self.done = done;
        Ok(())
    }
}

/// How far the loop goes and in what steps.
#[derive(Clone, Copy, Debug)]
pub struct LoopSettings {
    /// Rollouts per search.
    pub rollouts: usize,
    /// Proposals each search asks for at once (and its strategy learns from at once).
    pub per_update: usize,
}

/// Runs updates until every search has done `settings.rollouts` rollouts or `keep_going` says
/// stop (or the evaluator gives a batch up on a stop); `on_update` gets each update's records
/// (every search's, in search order) after the strategies learned.
pub fn run(
    evaluator: &mut dyn Evaluator,
    settings: LoopSettings,
    state: &mut SearchState,
    on_update: &mut dyn FnMut(&[Record], &SearchState) -> Result<()>,
    keep_going: &dyn Fn() -> bool,
) -> Result<()> {
    while state.done < settings.rollouts && keep_going() {
        let started = Instant::now();
        let k = settings.per_update.min(settings.rollouts - state.done);
        // A strategy's `ask` changes only its stream (and what it keeps for `tell`): the
        // streams are kept to forget the batch if a stop cuts its evaluation short.
        let streams: Vec<Pcg64> = state.searches.iter().map(|s| s.rng.clone()).collect();
        let mut proposals = Vec::with_capacity(state.searches.len());
        for s in state.searches.iter_mut() {
            let asked = s.strategy.ask(k, &mut s.rng)?;
            anyhow::ensure!(
                asked.len() == k,
                "{} proposed {} of {k}",
                s.strategy.name(),
                asked.len()
            );
            proposals.push(asked);
        }
        let done = state.done;
        let jobs: Vec<EvalJob> = state
            .searches
            .iter()
            .zip(&proposals)
            .flat_map(|(s, ps)| {
                ps.iter().enumerate().map(move |(j, p)| EvalJob {
                    config: &p.config,
                    seed: p.seed.unwrap_or(child_seed(s.seed, done + j + 1)),
                })
            })
            .collect();
        let Some(outcomes) = evaluator.evaluate(&jobs)? else {
            // Stopped mid-batch: the state is as if the batch had never been proposed, so the
            // checkpoint written next resumes exactly.
            for (s, rng) in state.searches.iter_mut().zip(streams) {
                s.rng = rng;
            }
            return Ok(());
        };
        let seconds = started.elapsed().as_secs_f64() / jobs.len() as f64;
        let mut records = Vec::with_capacity(jobs.len());
        for (i, (s, ps)) in state.searches.iter_mut().zip(proposals).enumerate() {
            let outcomes = &outcomes[i * k..(i + 1) * k];
            let results: Vec<_> = ps
                .into_iter()
                .zip(outcomes)
                .map(|(p, o)| (p, o.accuracy))
                .collect();
            let told =
                s.strategy
                    .tell(&results)
                    .map_err(|e| match e.downcast_ref::<Diverged>() {
                        Some(why) => diverged(i, state.done + k, &why.0),
                        None => e,
                    })?;
            for (j, ((p, _), o)) in results.iter().zip(outcomes).enumerate() {
                records.push(Record {
                    search: i,
                    strategy: s.strategy.name().to_string(),
                    seed: s.seed,
                    rollout: state.done + j + 1,
                    architecture: match &p.config {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    },
                    accuracy: o.accuracy,
                    reward: told.rewards.get(j).copied().unwrap_or(o.accuracy),
                    beta: told.beta,
                    loss: told.loss,
                    epochs: o.epochs,
                    seconds,
                    diverged: o.diverged,
                    details: told.details.get(j).cloned().unwrap_or_default(),
                });
            }
        }
        state.done += k;
        on_update(&records, state)?;
    }
    Ok(())
}

/// `run` without a caller of its own per update: every record, in order. Stops as `run` does.
pub fn run_collecting(
    evaluator: &mut dyn Evaluator,
    settings: LoopSettings,
    state: &mut SearchState,
    keep_going: &dyn Fn() -> bool,
) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    run(
        evaluator,
        settings,
        state,
        &mut |new, _| {
            records.extend_from_slice(new);
            Ok(())
        },
        keep_going,
    )?;
    Ok(records)
}

/// The error that stops a search whose controller update would leave numbers that are not
/// finite.
pub fn diverged(search: usize, rollout: usize, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the controller of search {search} diverged at rollout {rollout} ({why}); the search stopped \
         without applying that update, so what was written (checkpoint included) holds finite \
         numbers and resumes. For a new run, lower controller_lr, entropy_beta or the penalties"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::child::TrainOutcome;
    use crate::seeds::{search_seed, stream};
    use crate::strategy::{Proposal, Told};
    use serde_json::{json, Value};

    #[test]
    fn child_seeds_differ_across_rollouts_and_searches() {
        let mut seen = std::collections::HashSet::new();
        for s in 0..4 {
            for r in 1..=1000 {
                assert!(seen.insert(child_seed(search_seed(7, s), r)));
            }
        }
    }

    /// Proposes 0, 1, 2, ... and remembers the fitness it was told.
    struct Counter {
        next: i64,
        told: Vec<f64>,
    }

    impl Strategy for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn ask(&mut self, n: usize, _: &mut Pcg64) -> Result<Vec<Proposal>> {
            Ok((0..n as i64)
                .map(|i| Proposal::of(json!(self.next + i)))
                .collect())
        }
        fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
            self.told.extend(results.iter().map(|(_, f)| f));
            self.next += results.len() as i64;
            Ok(Told::default())
        }
        fn state(&self) -> Result<Value> {
            Ok(json!([self.next, self.told]))
        }
        fn restore(&mut self, state: &Value) -> Result<()> {
            let (next, told): (i64, Vec<f64>) = serde_json::from_value(state.clone())?;
            self.next = next;
            self.told = told;
            Ok(())
        }
    }

    /// Accuracy = the configuration / 100; stops (None) at the `stop_at`-th call.
    struct Scorer {
        calls: usize,
        stop_at: usize,
        seeds: Vec<u64>,
    }

    impl Evaluator for Scorer {
        fn evaluate(&mut self, jobs: &[EvalJob]) -> Result<Option<Vec<TrainOutcome>>> {
            self.calls += 1;
            if self.calls == self.stop_at {
                return Ok(None);
            }
            self.seeds.extend(jobs.iter().map(|j| j.seed));
            Ok(Some(
                jobs.iter()
                    .map(|j| TrainOutcome {
                        accuracy: j.config.as_f64().unwrap() / 100.0,
                        epochs: 1,
                        diverged: false,
                        history: Vec::new(),
                    })
                    .collect(),
            ))
        }
    }

    fn two_searches<'a>() -> SearchState<'a> {
        let counter = || {
            Box::new(Counter {
                next: 0,
                told: vec![],
            }) as Box<dyn Strategy>
        };
        SearchState {
            searches: vec![
                Search::new(counter(), 5, stream(5, None)),
                Search::new(counter(), 6, stream(6, None)),
            ],
            done: 0,
        }
    }

    #[test]
    fn searches_advance_together_and_each_is_told_its_own_outcomes() {
        let mut state = two_searches();
        let mut ev = Scorer {
            calls: 0,
            stop_at: 0,
            seeds: vec![],
        };
        let settings = LoopSettings {
            rollouts: 5,
            per_update: 2,
        };
        let records = run_collecting(&mut ev, settings, &mut state, &|| true).unwrap();
        assert_eq!(state.done, 5);
        // Batches of 2, 2 and 1 per search, search 0's first in each batch.
        let order: Vec<(usize, usize)> = records.iter().map(|r| (r.search, r.rollout)).collect();
        assert_eq!(
            order,
            vec![
                (0, 1),
                (0, 2),
                (1, 1),
                (1, 2),
                (0, 3),
                (0, 4),
                (1, 3),
                (1, 4),
                (0, 5),
                (1, 5)
            ]
        );
        assert!(records
            .iter()
            .all(|r| r.accuracy == (r.rollout - 1) as f64 / 100.0));
        // The child seeds are those of each search's rollouts, whatever the batching.
        let mut expected: Vec<u64> = Vec::new();
        for (from, to) in [(1, 2), (3, 4), (5, 5)] {
            for seed in [5, 6] {
                expected.extend((from..=to).map(|r| child_seed(seed, r)));
            }
        }
        assert_eq!(ev.seeds, expected);
    }

    #[test]
    fn a_stopped_batch_is_forgotten_and_a_restored_state_continues_identically() {
        let settings = LoopSettings {
            rollouts: 6,
            per_update: 2,
        };
        let mut whole = two_searches();
        let mut all = Vec::new();
        let mut ev = Scorer {
            calls: 0,
            stop_at: 0,
            seeds: vec![],
        };
        run(
            &mut ev,
            settings,
            &mut whole,
            &mut |r, _| {
                all.extend_from_slice(r);
                Ok(())
            },
            &|| true,
        )
        .unwrap();

        // Stopped in the second batch: one batch done, the second forgotten.
        let mut part = two_searches();
        let mut first = Vec::new();
        let mut ev = Scorer {
            calls: 0,
            stop_at: 2,
            seeds: vec![],
        };
        run(
            &mut ev,
            settings,
            &mut part,
            &mut |r, _| {
                first.extend_from_slice(r);
                Ok(())
            },
            &|| true,
        )
        .unwrap();
        assert_eq!(part.done, 2);
        let saved = part.checkpoint().unwrap();
        let mut resumed = two_searches();
        resumed.restore(&saved, part.done).unwrap();
        let mut rest = Vec::new();
        let mut ev = Scorer {
            calls: 0,
            stop_at: 0,
            seeds: vec![],
        };
        run(
            &mut ev,
            settings,
            &mut resumed,
            &mut |r, _| {
                rest.extend_from_slice(r);
                Ok(())
            },
            &|| true,
        )
        .unwrap();
        first.extend(rest);
        let strip = |rs: &[Record]| -> Vec<(usize, usize, String, f64)> {
            rs.iter()
                .map(|r| (r.search, r.rollout, r.architecture.clone(), r.accuracy))
                .collect()
        };
        assert_eq!(strip(&first), strip(&all));
        assert!(
            resumed.restore(&saved[..1], 2).is_err(),
            "a search is missing"
        );
    }
}
