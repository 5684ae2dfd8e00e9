//! End-to-end tests of never losing a search: SIGKILL at random moments and resume gives the
//! uninterrupted run's results exactly; SIGINT stops cleanly; bad checkpoints are refused.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

/// The figures of summary.json that must not depend on interruptions.
fn figures(s: &serde_json::Value) -> Vec<serde_json::Value> {
    [
        "rollouts_done",
        "best_architecture",
        "best_dev_accuracy",
        "best_times_sampled",
        "final_test_accuracies",
        "search_protocol_test_accuracies",
        "candidates",
        "distinct_architectures",
        "last_mean_accuracy",
        "rollout_reaching_level",
        "settings",
    ]
    .iter()
    .map(|k| s[*k].clone())
    .collect()
}

#[test]
fn killed_at_random_moments_and_resumed_is_the_same_search() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let o = archsearch_quick(&[
        "--rollouts",
        "1000",
        "--seed",
        "3",
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let pieces = dir.path().join("pieces");
    let pieces_s = pieces.to_str().unwrap();
    // Kill moments from a fixed pseudo-random sequence, after the first checkpoint exists.
    let mut x: u64 = 12345;
    let mut kills = 0;
    let mut args = vec![
        "--rollouts",
        "1000",
        "--seed",
        "3",
        "--out",
        pieces_s,
        "--quiet",
    ];
    args.extend(QUICK_FINAL);
    loop {
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Kill moments are counted in rows written, not in time, so they fall inside the run
        // however fast or loaded this machine is: after a pseudo-random number of rows (up to
        // 400 more than the run started with, so later kills may land in the final training),
        // once the first checkpoint exists (a run killed before it has nothing to resume).
        let rows = || {
            std::fs::read(pieces.join("rollouts.csv"))
                .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
                .unwrap_or(0)
                .saturating_sub(1)
        };
        let target = rows() + 1 + (x >> 33) % 400;
        while (!pieces.join("checkpoint.json").exists() || rows() < target)
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let finished = child.try_wait().unwrap().is_some();
        if !finished && kills < 4 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        } else {
            let status = child.wait().unwrap();
            assert!(status.success());
            break;
        }
        args = vec!["--resume", pieces_s, "--quiet"];
    }
    assert!(
        kills >= 1,
        "the run was never killed; the test proves nothing"
    );
    assert_eq!(csv_without_seconds(&pieces), csv_without_seconds(&whole));
    assert_eq!(figures(&summary(&pieces)), figures(&summary(&whole)));
    assert_eq!(summary(&pieces)["interrupted"], false);
}

#[test]
fn sigint_stops_cleanly_with_a_summary_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = bin()
        .args(["--rollouts", "100000", "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Timed from the run's first line, printed once its signal handlers are installed: a
    // loaded machine's slow start cannot turn SIGINT into death by signal. stderr is read to
    // the end meanwhile, so the run never blocks on a full pipe.
    let lines = stderr_lines(&mut child);
    wait_for(&lines, "archsearch: 100000 rollouts");
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    let text: Vec<String> = lines.iter().collect();
    assert_eq!(status.code(), Some(130), "{}", text.join("\n"));
    let s = summary(&out);
    assert_eq!(s["interrupted"], true);
    let done = s["rollouts_done"].as_u64().unwrap();
    assert!(done > 0 && done < 100000);
    assert_eq!(csv_without_seconds(&out).len() as u64, done);
    // The plots of what exists; nothing is trained after the stop (no retraining, so no
    // boundary.png and no test accuracy until the run is resumed).
    for png in ["accuracy.png", "halfmoon.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    assert_eq!(s["final_test_accuracies"], serde_json::json!([]));
}

#[test]
fn bad_checkpoints_are_refused_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let o = archsearch_quick(&["--rollouts", "10", "--seed", "1", "--out", out_s, "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Another configuration: a different seed or rollout count than the checkpoint's.
    let before = snapshot(&out);
    let o = archsearch(&["--resume", out_s, "--seed", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("seed: was 1, now 2"), "{err}");
    let o = archsearch(&["--resume", out_s, "--set", "controller_lr=0.5"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("controller_lr: was 0.01, now 0.5"));
    let o = archsearch(&["--resume", out_s, "--preset", "reference"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("preset: was \"default\", now \"reference\"")
    );
    let o = archsearch(&["--resume", out_s, "--rollouts", "20"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("rollouts: was 10, now 20"));
    assert_eq!(snapshot(&out), before);

    // A truncated checkpoint.
    let ckpt = out.join("checkpoint.json");
    let bytes = std::fs::read(&ckpt).unwrap();
    std::fs::write(&ckpt, &bytes[..bytes.len() / 2]).unwrap();
    let before = snapshot(&out);
    let o = archsearch(&["--resume", out_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("corrupt or truncated"), "{err}");
    assert!(!err.contains("panicked"));
    assert_eq!(snapshot(&out), before);

    // A folder without a checkpoint.
    let o = archsearch(&["--resume", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn resuming_a_finished_run_changes_no_result_and_force_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    assert!(
        archsearch_quick(&["--rollouts", "8", "--out", out_s, "--quiet"])
            .status
            .success()
    );
    let rows = csv_without_seconds(&out);
    let o = archsearch(&["--resume", out_s, "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(csv_without_seconds(&out), rows);

    // Non-empty --out: refused, then replaced with --force.
    let o = archsearch(&["--rollouts", "4", "--out", out_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert!(
        archsearch_quick(&["--rollouts", "4", "--out", out_s, "--force", "--quiet"])
            .status
            .success()
    );
    assert_eq!(csv_without_seconds(&out).len(), 4);
}
