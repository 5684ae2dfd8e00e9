//! End-to-end test of `archsearch cells space` (feature `cells`): the exported configspace.json
//! reads back as the six edge hyperparameters, and the unique count is NAS-Bench-201's.
#![cfg(feature = "cells")]

use std::process::Command;

#[test]
fn cells_space_writes_configspace_and_prints_unique_count() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("space");
    let run = Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .args(["cells", "space", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("6466 unique"));
    let text = std::fs::read_to_string(out.join("configspace.json")).unwrap();
    let space: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = space["hyperparameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]);
    assert_eq!(space["format_version"], 0.4);
    // A second run into the same folder is refused before writing (exit 2).
    let again = Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .args(["cells", "space", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
}

mod common;

/// A toy table file: test = share of convolution edges, dev that grown with the epochs plus a
/// seed offset, convolutions slower to train; four epochs, budgets 1, 2, 4.
fn toy_table(dir: &std::path::Path) -> std::path::PathBuf {
    use archsearch::cells::{table::Table, Op};
    let table = Table::from_fn(4, 2, vec![1, 2, 4], |cell, seed, epoch| {
        let convs = cell
            .ops
            .iter()
            .filter(|o| matches!(o, Op::NorConv1x1 | Op::NorConv3x3))
            .count() as f64;
        let v = convs / 6.0;
        (
            v * epoch as f64 / 4.0 - 0.01 * seed as f64,
            v,
            1.0 + 0.25 * convs,
        )
    })
    .unwrap();
    let path = dir.join("toy.csv.gz");
    table.write(&path).unwrap();
    path
}

fn search(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .args(["cells", "search", "--quiet"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cells_search_all_writes_every_file_and_resumes_a_killed_run_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let table = toy_table(tmp.path());
    let table = table.to_str().unwrap();
    let out = tmp.path().join("run");
    let run = search(&[
        "--strategy",
        "all",
        "--seeds",
        "2",
        "--budget",
        "300",
        "--table",
        table,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", common::stderr(&run));
    for file in [
        "rollouts.csv",
        "summary.json",
        "regret.png",
        "checkpoint.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // One DeepCAVE run folder per search (6 optimisers x 2 seeds), each with its five files.
    let deepcave: Vec<_> = std::fs::read_dir(out.join("deepcave")).unwrap().collect();
    assert_eq!(deepcave.len(), 12);
    for entry in deepcave {
        let folder = entry.unwrap().path();
        for file in [
            "configspace.json",
            "configs.json",
            "origins.json",
            "meta.json",
            "history.jsonl",
        ] {
            assert!(
                folder.join(file).is_file(),
                "{} has no {file}",
                folder.display()
            );
        }
    }
    let summary = common::summary(&out);
    let names: Vec<&str> = summary["optimisers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "random",
            "evolution",
            "reinforce",
            "bo",
            "hyperband",
            "dehb"
        ]
    );
    for o in summary["optimisers"].as_array().unwrap() {
        assert_eq!(o["searches"], 2);
        let regret = o["final_regret_mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&regret), "{o}");
        let test = o["final_test_mean"].as_f64().unwrap();
        assert!(
            (regret + test - 1.0).abs() < 1e-9,
            "regret = optimum - test: {o}"
        );
    }
    let text = std::fs::read_to_string(out.join("rollouts.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "strategy,seed,query,cell,budget,dev,seconds,regret,incumbent_test"
    );
    // Every search keeps within the budget, and the multi-fidelity ones use lower budgets.
    let mut budgets = std::collections::HashSet::new();
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        assert!(f[6].parse::<f64>().unwrap() <= 300.0, "{line}");
        budgets.insert((f[0].to_string(), f[4].to_string()));
    }
    assert!(budgets.contains(&("hyperband".into(), "1".into())));
    assert!(budgets.contains(&("dehb".into(), "1".into())));
    assert!(!budgets.contains(&("random".into(), "1".into())));

    // A kill after three searches: the checkpoint holds them, rollouts.csv has a torn row past
    // them. --resume redoes the rest and ends where the whole run ended.
    let checkpoint_path = out.join("checkpoint.json");
    let mut checkpoint: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&checkpoint_path).unwrap()).unwrap();
    let outcomes = checkpoint["outcomes"].as_array().unwrap().clone();
    let rows: usize = outcomes[..3]
        .iter()
        .map(|o| o["queries"].as_u64().unwrap() as usize)
        .sum();
    let bytes: usize = lines[..1 + rows].iter().map(|l| l.len() + 1).sum();
    checkpoint["outcomes"] = serde_json::Value::Array(outcomes[..3].to_vec());
    checkpoint["csv_bytes"] = bytes.into();
    std::fs::write(&checkpoint_path, checkpoint.to_string()).unwrap();
    let torn = format!("{}random,1,1,|none~0|+", &text[..bytes]);
    std::fs::write(out.join("rollouts.csv"), torn).unwrap();
    std::fs::remove_file(out.join("summary.json")).unwrap();
    let resumed = search(&["--resume", out.to_str().unwrap()]);
    assert!(resumed.status.success(), "{}", common::stderr(&resumed));
    assert_eq!(
        std::fs::read_to_string(out.join("rollouts.csv")).unwrap(),
        text
    );
    let again = common::summary(&out);
    assert_eq!(again["optimisers"].as_array().unwrap().len(), 6);
    for (a, b) in again["optimisers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(summary["optimisers"].as_array().unwrap())
    {
        assert_eq!(a["final_regret_mean"], b["final_regret_mean"]);
    }
}

#[test]
fn cells_search_refuses_bad_values_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let table = toy_table(tmp.path());
    let table = table.to_str().unwrap();
    let out = tmp.path().join("never");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--budget", "-1", "--table", table], "--budget"),
        (&["--budget", "2", "--table", table], "slowest cell"),
        (&["--seeds", "0", "--table", table], "--seeds"),
        (&["--strategy", "smac", "--table", table], "smac"),
        (&["--table", "/nonexistent/table.csv.gz"], "--table"),
    ];
    for (args, want) in cases {
        let run = search(&[args, &["--out", out]].concat());
        assert_refused(&run, &format!("{args:?}"), want);
        assert!(!std::path::Path::new(out).exists(), "{args:?} wrote --out");
    }
}

fn cells(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .arg("cells")
        .args(args)
        .output()
        .unwrap()
}

/// The rows of a build's rows.csv without the seconds column, sorted.
fn build_rows(dir: &std::path::Path) -> Vec<Vec<String>> {
    let mut rows = common::file_without_seconds(&dir.join("rows.csv"));
    rows.sort();
    rows
}

/// Asserts that `run` was refused with exit code 2 and a message containing `needle`.
/// Runs `archsearch cells ARGS` and kills it (SIGKILL) once its stderr shows `text`.
fn kill_after(args: &[&str], text: &str) {
    let mut child = common::bin()
        .arg("cells")
        .args(args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::stderr_lines(&mut child);
    common::wait_for(&lines, text);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn assert_refused(run: &std::process::Output, what: &str, needle: &str) {
    let err = common::stderr(run);
    assert_eq!(run.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains(needle), "{what}: {err}");
}

#[test]
fn a_tiny_build_writes_every_file_and_a_killed_build_resumes_to_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let args = ["build", "--limit", "16", "--seeds", "2", "--epochs", "1"];
    let run = cells(&[&args[..], &["--out", whole.to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", common::stderr(&run));
    for file in ["rows.csv", "build.json", "table.csv.gz", "table.json"] {
        assert!(whole.join(file).is_file(), "{file} missing");
    }
    let rows = build_rows(&whole);
    assert_eq!(rows.len(), 16 * 2);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("table.json")).unwrap()).unwrap();
    assert_eq!(meta["epochs"], 1);
    assert_eq!(meta["seeds"], 2);
    assert_eq!(meta["budgets"], serde_json::json!([1]));

    // Killed after the first tenth of its trainings, then resumed: the same rows (seconds aside).
    let killed = tmp.path().join("killed");
    let out = ["--out", killed.to_str().unwrap()];
    kill_after(&[&args[..], &out].concat(), "trainings  last");
    assert!(
        !killed.join("table.csv.gz").exists(),
        "the kill came after the end"
    );
    let resumed = cells(&["build", "--resume", killed.to_str().unwrap(), "--quiet"]);
    assert!(resumed.status.success(), "{}", common::stderr(&resumed));
    assert_eq!(build_rows(&killed), rows);
}

#[test]
fn cells_build_and_proxies_refuse_bad_input_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for (args, needle) in [
        (vec!["build", "--dataset", "nope"], "nope"),
        (
            vec!["build", "--resume", "/nonexistent/folder"],
            "no table build to resume",
        ),
        (
            vec!["proxies", "--table", "/nonexistent/t.csv.gz"],
            "t.csv.gz",
        ),
    ] {
        let mut all = args.clone();
        if !args.contains(&"--resume") {
            all.extend(["--out", out.to_str().unwrap()]);
        }
        let run = cells(&all);
        assert_refused(&run, &format!("{args:?}"), needle);
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

#[test]
fn cells_proxies_scores_rank_and_searches_on_a_toy_table() {
    let tmp = tempfile::tempdir().unwrap();
    let table = toy_table(tmp.path());
    // The toy table claims the digits, whose batch the proxies score on.
    let meta_path = tmp.path().join("toy.json");
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    meta["dataset"] = "digits".into();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let out = tmp.path().join("proxies");
    let flags = |out: &std::path::Path| -> Vec<String> {
        let table = table.to_str().unwrap();
        let out = out.to_str().unwrap();
        [
            "proxies", "--table", table, "--limit", "24", "--seeds", "3", "--batch", "16", "--out",
            out,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut quiet = flags(&out);
    quiet.push("--quiet".into());
    let run = cells(&quiet.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run.status.success(), "{}", common::stderr(&run));
    for file in ["proxies.csv", "proxies.png", "summary.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let summary = common::summary(&out);
    let proxies: Vec<&str> = summary["correlations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["proxy"].as_str().unwrap())
        .collect();
    assert_eq!(
        proxies,
        [
            "synflow",
            "snip",
            "grad_norm",
            "naswot",
            "jacob_cov",
            "combined",
            "dev_1_epoch"
        ]
    );
    assert_eq!(summary["cells_scored"], 24);
    // Every search found a cell of the toy table: its accuracy is a share of six edges.
    for s in summary["searches"].as_array().unwrap() {
        let t = s["test_mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&t), "{s}");
    }
    let csv = std::fs::read_to_string(out.join("proxies.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 24);

    // Killed after some classes, then resumed: the same scores as the run in one go.
    let killed = tmp.path().join("killed");
    kill_after(
        &flags(&killed)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "/24 cells",
    );
    assert!(
        !killed.join("proxies.csv").exists(),
        "the kill came after the end"
    );
    let resumed = cells(&["proxies", "--resume", killed.to_str().unwrap(), "--quiet"]);
    assert!(resumed.status.success(), "{}", common::stderr(&resumed));
    assert_eq!(
        common::file_without_seconds(&killed.join("proxies.csv")),
        common::file_without_seconds(&out.join("proxies.csv"))
    );
    // Resuming a folder that holds no proxies run is refused.
    let refused = cells(&["proxies", "--resume", tmp.path().to_str().unwrap()]);
    assert_refused(&refused, "resume of a non-run", "no proxies.json");
}
