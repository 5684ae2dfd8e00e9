//! A run folder in the layout of DeepCAVE (the automl project's analysis tool, Sass et al. 2022):
//! `configspace.json`, `configs.json`, `origins.json`, `meta.json` and `history.jsonl`, as its
//! `Run.save` writes them and its `DeepCAVERun.from_path` reads them back (docs/formats.md,
//! "DeepCAVE run folders"). Independent of any search space: the caller gives the space as
//! ConfigSpace JSON and each trial's configuration as a JSON object of hyperparameter values.
//!
//! The layout, as DeepCAVE 1.4 has it:
//! - configs get ids 0, 1, 2, … in the order they first appear; a configuration seen again keeps
//!   its id. `configs.json` maps each id (a string key) to the configuration, `origins.json` each
//!   id to the origin of the trial that first brought it (a string, or null);
//! - `meta.json`: `objectives` (name, lower, upper, lock_lower, lock_upper, optimize), the sorted
//!   `budgets` and `seeds` of the trials, and any further keys;
//! - `history.jsonl`: one trial a line, a JSON array `[config_id, budget, seed, costs,
//!   start_time, end_time, status, additional]`, times rounded to 2 decimals, status as DeepCAVE's
//!   integer code. That is the 8-field line of DeepCAVE up to 1.3; 1.4 writes a 9th field
//!   (`cpu_time`, after `costs`) but its reader (1.4.1 on PyPI, checked by hand) fails on 9-field
//!   lines and reads only 8-field ones, so the 8-field line is the one every release opens (1.4
//!   then shows the times one field off: see docs/formats.md).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

/// Which way an objective is optimised (DeepCAVE's `optimize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimize {
    Lower,
    Upper,
}

impl Optimize {
    pub fn name(self) -> &'static str {
        match self {
            Optimize::Lower => "lower",
            Optimize::Upper => "upper",
        }
    }
}

/// One objective: its name, bounds (None: taken from the trials' costs, unlocked, as DeepCAVE
/// does) and direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    pub name: String,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub optimize: Optimize,
}

/// A trial's status, with DeepCAVE's integer codes (`deepcave.runs.status.Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Success = 1,
    Timeout = 2,
    MemoryOut = 3,
    Crashed = 4,
    Aborted = 5,
    NotEvaluated = 6,
    Failed = 7,
    Pruned = 8,
    Unknown = 9,
}

/// One evaluated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// Hyperparameter name -> value, as in the configuration space.
    pub config: Map<String, Value>,
    /// The fidelity it was evaluated at (epochs, rollouts, …).
    pub budget: f64,
    /// The seed of the evaluation.
    pub seed: i64,
    /// One cost per objective; None for a trial without a result (written as null).
    pub costs: Vec<Option<f64>>,
    /// Seconds since the run started.
    pub start_time: f64,
    pub end_time: f64,
    pub status: Status,
    /// Which strategy proposed it.
    pub origin: Option<String>,
    /// Further figures of the trial (DeepCAVE shows them; `traceback` is one it reads).
    pub additional: Map<String, Value>,
}

/// Everything one DeepCAVE run folder holds.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    /// The configuration space, in ConfigSpace's JSON layout.
    pub configspace: &'a Value,
    pub objectives: &'a [Objective],
    /// Budgets and seeds to list in meta.json besides those of the trials.
    pub budgets: &'a [f64],
    pub seeds: &'a [i64],
    /// Further meta.json keys (the command, the strategy, …).
    pub meta: Map<String, Value>,
    pub trials: &'a [Trial],
}

/// The five files' contents.
#[derive(Clone, Debug, PartialEq)]
pub struct Documents {
    pub configspace: Value,
    pub configs: Value,
    pub origins: Value,
    pub meta: Value,
    /// One JSON array per trial.
    pub history: Vec<Value>,
}

/// `x` rounded to 2 decimals, as DeepCAVE rounds start and end times.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Sorted, without repeats; NaNs dropped.
fn sorted_unique(mut v: Vec<f64>) -> Vec<f64> {
    v.retain(|x| !x.is_nan());
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

impl Run<'_> {
    /// The files' contents; a trial whose costs do not match the objectives is an error.
    pub fn documents(&self) -> Result<Documents> {
        let mut configs: Vec<&Map<String, Value>> = Vec::new();
        let mut origins: Vec<Option<&str>> = Vec::new();
        let mut history = Vec::with_capacity(self.trials.len());
        for (i, t) in self.trials.iter().enumerate() {
            if t.costs.len() != self.objectives.len() {
                anyhow::bail!(
                    "trial {i} has {} costs for {} objectives",
                    t.costs.len(),
                    self.objectives.len()
                );
            }
            let id = match configs.iter().position(|c| **c == t.config) {
                Some(id) => id,
                None => {
                    configs.push(&t.config);
                    origins.push(t.origin.as_deref());
                    configs.len() - 1
                }
            };
            let costs: Vec<Value> = t
                .costs
                .iter()
                .map(|c| match c {
                    Some(x) if x.is_finite() => json!(x),
                    _ => Value::Null,
                })
                .collect();
            history.push(json!([
                id,
                t.budget,
                t.seed,
                costs,
                round2(t.start_time),
                round2(t.end_time),
                t.status as i64,
                t.additional,
            ]));
        }
        let objectives: Vec<Value> = (self.objectives.iter().enumerate())
            .map(|(k, o)| {
                let costs = || {
                    self.trials
                        .iter()
                        .filter_map(|t| t.costs[k])
                        .filter(|x| x.is_finite())
                };
                let lower = o.lower.or_else(|| costs().reduce(f64::min));
                let upper = o.upper.or_else(|| costs().reduce(f64::max));
                json!({
                    "name": o.name,
                    "lower": lower,
                    "upper": upper,
                    "lock_lower": o.lower.is_some(),
                    "lock_upper": o.upper.is_some(),
                    "optimize": o.optimize.name(),
                })
            })
            .collect();
        let budgets = sorted_unique(
            (self.budgets.iter().copied())
                .chain(self.trials.iter().map(|t| t.budget))
                .collect(),
        );
        let mut seeds: Vec<i64> = (self.seeds.iter().copied())
            .chain(self.trials.iter().map(|t| t.seed))
            .collect();
        seeds.sort_unstable();
        seeds.dedup();
        let mut meta = Map::new();
        meta.insert("objectives".into(), Value::Array(objectives));
        meta.insert("budgets".into(), json!(budgets));
        meta.insert("seeds".into(), json!(seeds));
        for (k, v) in &self.meta {
            if !meta.contains_key(k) {
                meta.insert(k.clone(), v.clone());
            }
        }
        let by_id = |values: Vec<Value>| {
            Value::Object(
                values
                    .into_iter()
                    .enumerate()
                    .map(|(id, v)| (id.to_string(), v))
                    .collect(),
            )
        };
        Ok(Documents {
            configspace: self.configspace.clone(),
            configs: by_id(
                configs
                    .into_iter()
                    .map(|c| Value::Object(c.clone()))
                    .collect(),
            ),
            origins: by_id(origins.into_iter().map(|o| json!(o)).collect()),
            meta: Value::Object(meta),
            history,
        })
    }

    /// Writes the five files into `dir` (created if needed), each atomically, history.jsonl
    /// last (DeepCAVE takes a folder with history.jsonl for a run).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let docs = self.documents()?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        use crate::outdir::{write_atomically, write_json_atomically};
        write_json_atomically(&dir.join("configspace.json"), &docs.configspace)?;
        write_json_atomically(&dir.join("configs.json"), &docs.configs)?;
        write_json_atomically(&dir.join("origins.json"), &docs.origins)?;
        write_json_atomically(&dir.join("meta.json"), &docs.meta)?;
        let mut lines = String::new();
        for line in &docs.history {
            lines.push_str(&serde_json::to_string(line)?);
            lines.push('\n');
        }
        write_atomically(&dir.join("history.jsonl"), lines.as_bytes())
    }
}

/// Writes one DeepCAVE run folder per search into `dir`: `dir/NAME/` for each `(NAME, trials)`
/// (NAME such as `evolution-seed3`; DeepCAVE opens each, or groups them), all sharing the space,
/// the objectives, budgets and meta keys. Returns the folders written.
pub fn write_searches(
    dir: &Path,
    configspace: &Value,
    objectives: &[Objective],
    budgets: &[f64],
    meta: &Map<String, Value>,
    searches: &[(String, Vec<Trial>)],
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, trials) in searches {
        let path = dir.join(name);
        Run {
            configspace,
            objectives,
            budgets,
            seeds: &[],
            meta: meta.clone(),
            trials,
        }
        .write(&path)
        .with_context(|| format!("cannot write the DeepCAVE run {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Value {
        json!({"name": "toy", "hyperparameters": [
            {"name": "op", "type": "categorical", "choices": ["a", "b"], "weights": null,
             "default_value": "a", "meta": null}],
            "conditions": [], "forbiddens": [], "format_version": 0.4})
    }

    fn trial(op: &str, budget: f64, cost: Option<f64>, start: f64, origin: &str) -> Trial {
        let mut config = Map::new();
        config.insert("op".into(), json!(op));
        Trial {
            config,
            budget,
            seed: 0,
            costs: vec![cost],
            start_time: start,
            end_time: start + 1.234,
            status: if cost.is_some() {
                Status::Success
            } else {
                Status::Crashed
            },
            origin: Some(origin.into()),
            additional: Map::new(),
        }
    }

    /// Two trials of one config at two budgets, a third config that crashed: the documents
    /// against a hand-written expectation.
    #[test]
    fn documents_match_a_hand_written_run() {
        let objectives = [Objective {
            name: "error".into(),
            lower: Some(0.0),
            upper: None,
            optimize: Optimize::Lower,
        }];
        let trials = [
            trial("b", 4.0, Some(0.25), 0.0, "random"),
            trial("b", 12.0, Some(0.125), 1.5, "evolution"),
            trial("a", 12.0, None, 3.0, "evolution"),
        ];
        let mut meta = Map::new();
        meta.insert("command".into(), json!("test"));
        let run = Run {
            configspace: &space(),
            objectives: &objectives,
            budgets: &[1.0, 12.0],
            seeds: &[],
            meta,
            trials: &trials,
        };
        let docs = run.documents().unwrap();
        assert_eq!(docs.configspace, space());
        assert_eq!(docs.configs, json!({"0": {"op": "b"}, "1": {"op": "a"}}));
        assert_eq!(docs.origins, json!({"0": "random", "1": "evolution"}));
        assert_eq!(
            docs.meta,
            json!({"objectives": [{"name": "error", "lower": 0.0, "upper": 0.25,
                "lock_lower": true, "lock_upper": false, "optimize": "lower"}],
                "budgets": [1.0, 4.0, 12.0], "seeds": [0], "command": "test"})
        );
        assert_eq!(
            docs.history,
            vec![
                json!([0, 4.0, 0, [0.25], 0.0, 1.23, 1, {}]),
                json!([0, 12.0, 0, [0.125], 1.5, 2.73, 1, {}]),
                json!([1, 12.0, 0, [null], 3.0, 4.23, 4, {}]),
            ]
        );
    }

    #[test]
    fn unlocked_bounds_without_costs_are_null_and_costs_must_match_objectives() {
        let objectives = [Objective {
            name: "error".into(),
            lower: None,
            upper: None,
            optimize: Optimize::Upper,
        }];
        let trials = [trial("a", 1.0, None, 0.0, "random")];
        let run = Run {
            configspace: &space(),
            objectives: &objectives,
            budgets: &[],
            seeds: &[],
            meta: Map::new(),
            trials: &trials,
        };
        let meta = run.documents().unwrap().meta;
        assert_eq!(meta["objectives"][0]["lower"], Value::Null);
        assert_eq!(meta["objectives"][0]["lock_upper"], json!(false));
        assert_eq!(meta["objectives"][0]["optimize"], json!("upper"));
        let two = [Objective {
            name: "time".into(),
            ..objectives[0].clone()
        }];
        let run = Run {
            objectives: &[objectives[0].clone(), two[0].clone()],
            ..run
        };
        assert!(run.documents().unwrap_err().to_string().contains("1 costs"));
    }

    #[test]
    fn the_folder_holds_five_files_that_read_back() {
        let objectives = [Objective {
            name: "error".into(),
            lower: Some(0.0),
            upper: Some(1.0),
            optimize: Optimize::Lower,
        }];
        let trials = [
            trial("a", 1.0, Some(0.5), 0.0, "random"),
            trial("b", 1.0, Some(0.75), 0.5, "random"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let written = write_searches(
            dir.path(),
            &space(),
            &objectives,
            &[1.0],
            &Map::new(),
            &[("random-seed0".to_string(), trials.to_vec())],
        )
        .unwrap();
        assert_eq!(written, vec![dir.path().join("random-seed0")]);
        let mut names: Vec<String> = std::fs::read_dir(&written[0])
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "configs.json",
                "configspace.json",
                "history.jsonl",
                "meta.json",
                "origins.json"
            ]
        );
        let history = std::fs::read_to_string(written[0].join("history.jsonl")).unwrap();
        let lines: Vec<Value> = history
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], json!([1, 1.0, 0, [0.75], 0.5, 1.73, 1, {}]));
        let configs: Value = serde_json::from_str(
            &std::fs::read_to_string(written[0].join("configs.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(configs, json!({"0": {"op": "a"}, "1": {"op": "b"}}));
    }
}
