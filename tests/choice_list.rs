//! End-to-end tests of `archsearch choice-list` (feature `choice-list`): a short search with
//! each strategy writes every output, and mistakes in the space file exit 2 naming the line.
#![cfg(feature = "choice-list")]

mod common;
use common::*;

fn space(name: &str) -> String {
    format!("{}/spaces/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_short_search_with_each_strategy_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    for strategy in ["reinforce", "evolution", "random"] {
        let out = dir.path().join(strategy);
        let o = archsearch(&[
            "choice-list",
            "--space",
            &space("mlp.yaml"),
            "--strategy",
            strategy,
            "--evaluations",
            "12",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(
            o.status.success(),
            "{strategy}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for f in [
            "rollouts.csv",
            "summary.json",
            "accuracy.png",
            "halfmoon.png",
            "boundary.png",
            "strategies.png",
        ] {
            assert!(out.join(f).is_file(), "{strategy}: {f} missing");
        }
        let mut reader = csv::Reader::from_path(out.join("rollouts.csv")).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 12);
        for row in &rows {
            assert_eq!(&row[0], strategy);
            let config: serde_json::Value = serde_json::from_str(&row[3]).unwrap();
            let lr = config["learning_rate"].as_f64().unwrap();
            assert!((1e-4..1e-1).contains(&lr), "{config}");
            assert!(config["hidden"].as_array().unwrap().len() < 4);
        }
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["test_accuracies"].as_array().unwrap().len(), 5);
        assert!(summary["best_configuration"]["hidden"].is_array());
    }
}

#[test]
fn all_strategies_over_seeds_share_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all");
    let o = archsearch(&[
        "choice-list",
        "--space",
        &space("wide.yaml"),
        "--strategy",
        "all",
        "--seeds",
        "2",
        "--evaluations",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    assert!(runs.iter().all(|r| r["evaluations"] == 8));
}

#[test]
fn mistakes_in_the_space_exit_2_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "hidden:\n  min: 3\n  max: 2\n  choices: [8]\n").unwrap();
    let out = dir.path().join("never");
    let o = archsearch(&[
        "choice-list",
        "--space",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("hidden") && err.contains("line"), "{err}");
    std::fs::write(&bad, "optimizer: [sgd, adam]\n").unwrap();
    let o = archsearch(&[
        "choice-list",
        "--space",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`optimizer` is not a setting"), "{err}");
    assert!(!out.exists());
}
