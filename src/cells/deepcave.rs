//! A cells search's queries as DeepCAVE run folders (the automl DeepCAVE project's layout,
//! `crate::output::deepcave`): one folder per search, `STRATEGY-seedN`, the cell space's
//! `configspace.json`, each query a trial at its epochs (the budget) on the search's simulated
//! clock, the table's budgets in meta.json.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::cell::Cell;
use super::configspace::{cell_to_config, configspace_json};
use super::table::Table;
use crate::output::deepcave::{write_searches, Objective, Optimize, Status, Trial};

/// One query of a search, as the search loop knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CellTrial {
    /// The optimiser's name (the trial's origin).
    pub strategy: String,
    pub search_seed: u64,
    pub cell: Cell,
    /// Epochs queried: the budget.
    pub epochs: usize,
    /// The training seed of the table that answered.
    pub training_seed: usize,
    /// Dev accuracy the optimiser was told.
    pub dev: f64,
    /// Simulated seconds of this query, and of the search once it was answered.
    pub cost: f64,
    pub clock: f64,
}

/// Writes `dir/STRATEGY-seedN/` for every search among `trials` (in order of first appearance);
/// returns the folders. The objective is the dev accuracy (higher is better, 0..1); each trial
/// also carries the cell's mean full-budget test accuracy, its string form and its cost.
pub fn write_deepcave(dir: &Path, table: &Table, trials: &[CellTrial]) -> Result<Vec<PathBuf>> {
    let mut searches: Vec<(String, Vec<Trial>)> = Vec::new();
    for t in trials {
        let name = format!("{}-seed{}", t.strategy, t.search_seed);
        let k = match searches.iter().position(|s| s.0 == name) {
            Some(k) => k,
            None => {
                searches.push((name, Vec::new()));
                searches.len() - 1
            }
        };
        let Value::Object(config) = cell_to_config(&t.cell) else {
            anyhow::bail!("the configuration of cell {} is not an object", t.cell);
        };
        let mut additional = Map::new();
        additional.insert("cell".into(), json!(t.cell.to_string()));
        additional.insert("test_accuracy".into(), json!(table.mean_test(&t.cell)));
        additional.insert("seconds".into(), json!(t.cost));
        searches[k].1.push(Trial {
            config,
            budget: t.epochs as f64,
            seed: t.training_seed as i64,
            costs: vec![t.dev.is_finite().then_some(t.dev)],
            start_time: t.clock - t.cost,
            end_time: t.clock,
            status: if t.dev.is_finite() {
                Status::Success
            } else {
                Status::Crashed
            },
            origin: Some(t.strategy.clone()),
            additional,
        });
    }
    let objectives = [Objective {
        name: "dev_accuracy".into(),
        lower: Some(0.0),
        upper: Some(1.0),
        optimize: Optimize::Upper,
    }];
    let budgets: Vec<f64> = table.meta.budgets.iter().map(|&b| b as f64).collect();
    let mut meta = Map::new();
    meta.insert("command".into(), json!("cells search"));
    meta.insert("table_dataset".into(), json!(table.meta.dataset));
    write_searches(
        dir,
        &configspace_json(),
        &objectives,
        &budgets,
        &meta,
        &searches,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_search_is_a_folder_of_its_queries() {
        let table = Table::from_fn(4, 2, vec![1, 2, 4], |cell, _, epoch| {
            let v = cell.index() as f64 / 15_625.0;
            (v * epoch as f64 / 4.0, v, 1.0)
        })
        .unwrap();
        let cell = |i| Cell::from_index(i).unwrap();
        let trial = |strategy: &str, i: usize, epochs: usize, clock: f64| CellTrial {
            strategy: strategy.into(),
            search_seed: 3,
            cell: cell(i),
            epochs,
            training_seed: 1,
            dev: 0.5,
            cost: epochs as f64,
            clock,
        };
        let trials = [
            trial("dehb", 100, 1, 1.0),
            trial("random", 200, 4, 4.0),
            trial("dehb", 100, 4, 5.0),
        ];
        let dir = tempfile::tempdir().unwrap();
        let written = write_deepcave(dir.path(), &table, &trials).unwrap();
        assert_eq!(
            written,
            [
                dir.path().join("dehb-seed3"),
                dir.path().join("random-seed3")
            ]
        );
        let read = |f: &str| std::fs::read_to_string(written[0].join(f)).unwrap();
        let lines: Vec<Value> = read("history.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // one configuration at two budgets, on the search's clock
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0][0], json!(0));
        assert_eq!(lines[1][0], json!(0));
        assert_eq!(lines[1][1], json!(4.0));
        assert_eq!(
            (lines[1][4].clone(), lines[1][5].clone()),
            (json!(1.0), json!(5.0))
        );
        let configs: Value = serde_json::from_str(&read("configs.json")).unwrap();
        assert_eq!(configs["0"], cell_to_config(&cell(100)));
        let meta: Value = serde_json::from_str(&read("meta.json")).unwrap();
        assert_eq!(meta["budgets"], json!([1.0, 2.0, 4.0]));
        let space: Value = serde_json::from_str(&read("configspace.json")).unwrap();
        assert_eq!(space, configspace_json());
    }
}
