//! End-to-end tests of `archsearch choice-list` (feature `choice-list`): a short search with
//! each strategy writes every output (the DeepCAVE run folders among them), and mistakes in the space file exit 2 naming the line.
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
        let o = archsearch_quick(&[
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
        assert_eq!(
            summary["final_test_accuracies"].as_array().unwrap().len(),
            2
        );
        assert_eq!(summary["settings"]["final"]["candidates"], 2);
        let chosen: Vec<&serde_json::Value> = summary["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["chosen"] == true)
            .collect();
        assert_eq!(chosen.len(), 1);
        let chosen: serde_json::Value =
            serde_json::from_str(chosen[0]["architecture"].as_str().unwrap()).unwrap();
        assert_eq!(chosen, summary["best_configuration"]);
        assert!(summary["best_configuration"]["hidden"].is_array());
    }
}

#[test]
fn all_strategies_over_seeds_share_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all");
    let o = archsearch_quick(&[
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
    let runs = summary["searches"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    assert!(runs.iter().all(|r| r["rollouts"] == 8));
    // deepcave/: one DeepCAVE run folder per search, one history line per rollout.
    for strategy in ["reinforce", "evolution", "random"] {
        for seed in 0..2 {
            let run = out.join(format!("deepcave/{strategy}-seed{seed}"));
            for f in [
                "configspace.json",
                "configs.json",
                "origins.json",
                "meta.json",
                "history.jsonl",
            ] {
                assert!(run.join(f).is_file(), "{}: {f} missing", run.display());
            }
            let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
            assert_eq!(history.lines().count(), 8, "{}", run.display());
            let origins: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.join("origins.json")).unwrap())
                    .unwrap();
            assert!(origins.as_object().unwrap().values().all(|o| o == strategy));
        }
    }
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

#[test]
fn killed_and_resumed_it_is_the_same_search() {
    use std::process::Stdio;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &str| -> Vec<String> {
        [
            "choice-list",
            "--space",
            &space("mlp.yaml"),
            "--strategy",
            "all",
            "--evaluations",
            "24",
            "--out",
            out,
            "--quiet",
        ]
        .iter()
        .chain(QUICK_FINAL.iter())
        .map(|s| s.to_string())
        .collect()
    };
    let whole = dir.path().join("whole");
    let o = archsearch(
        &args(whole.to_str().unwrap())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let pieces = dir.path().join("pieces");
    let pieces_s = pieces.to_str().unwrap().to_string();
    let mut next: Vec<String> = args(&pieces_s);
    let mut kills = 0;
    for wait in [300u64, 600, 900, 60_000] {
        let mut child = bin()
            .args(&next)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Timed from the moment the run's files exist: a loaded machine may take a while to
        // get there, and a kill before it leaves nothing to resume.
        while !pieces.join("run.json").exists() && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let deadline = std::time::Instant::now() + Duration::from_millis(wait);
        while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
        } else {
            break;
        }
        next = vec![
            "choice-list".into(),
            "--resume".into(),
            pieces_s.clone(),
            "--quiet".into(),
        ];
    }
    let o = archsearch(&["choice-list", "--resume", &pieces_s, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(kills >= 1, "never killed: the test proves nothing");
    assert_eq!(csv_without_seconds(&pieces), csv_without_seconds(&whole));
    assert_eq!(
        summary(&pieces)["best_configuration"],
        summary(&whole)["best_configuration"]
    );
    assert_eq!(
        summary(&pieces)["final_test_accuracies"],
        summary(&whole)["final_test_accuracies"]
    );
}
