//! End-to-end tests of the guarantees against losing or destroying work (issue 9, part A):
//! `--force` never deletes what archsearch did not write, a refused resume changes no byte,
//! a relative `--data` resumes from anywhere, every long loop stops on SIGTERM, a full stdout or
//! stderr loses nothing, and bad output files are refused before any work.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary in the working folder `cwd`, with extra environment variables.
fn archsearch_in(cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = bin();
    command.current_dir(cwd).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

fn refused(o: &Output, expected: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(expected), "expected `{expected}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn marker(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(".archsearch-run")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

#[test]
fn force_never_deletes_what_archsearch_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    // The reproduction: `--out . --force` in a folder of the user's.
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::write(scratch.join("keep"), "mine").unwrap();
    let o = archsearch_in(&scratch, &["--out", ".", "--force", "--rollouts", "2"], &[]);
    refused(&o, "working folder");
    assert_eq!(
        std::fs::read_to_string(scratch.join("keep")).unwrap(),
        "mine"
    );
    // The working folder, its parents, the root and the home folder: refused, even empty.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(
        &archsearch_in(&empty, &["--out", ".", "--rollouts", "2"], &[]),
        "working folder",
    );
    for parent in ["..", "../..", "/"] {
        refused(
            &archsearch_in(
                &scratch,
                &["--out", parent, "--force", "--rollouts", "2"],
                &[],
            ),
            "parent of the working folder",
        );
    }
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join(".profile"), "mine").unwrap();
    let o = archsearch_in(
        &scratch,
        &[
            "--out",
            home.to_str().unwrap(),
            "--force",
            "--rollouts",
            "2",
        ],
        &[("HOME", &home)],
    );
    refused(&o, "home folder");
    assert!(home.join(".profile").exists());
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 1);

    // A non-empty folder without the run marker: refused untouched.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("rollouts.csv"), "not ours").unwrap();
    let before = snapshot(&theirs);
    let o = archsearch(&[
        "--out",
        theirs.to_str().unwrap(),
        "--force",
        "--rollouts",
        "2",
    ]);
    refused(&o, "holds none, so nothing was deleted");
    assert_eq!(snapshot(&theirs), before);

    // A run folder archsearch wrote, marked with the command and version, is replaced...
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    assert!(
        archsearch_quick(&["--rollouts", "2", "--out", run_s, "--quiet"])
            .status
            .success()
    );
    assert_eq!(marker(&run)["command"], "search");
    assert_eq!(
        marker(&run)["archsearch_version"],
        env!("CARGO_PKG_VERSION")
    );
    let o = archsearch_quick(&["--rollouts", "3", "--out", run_s, "--force", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(csv_without_seconds(&run).len(), 3);
    // ...but not once it holds a file of the user's.
    std::fs::write(run.join("notes.txt"), "mine").unwrap();
    let before = snapshot(&run);
    let o = archsearch_quick(&["--rollouts", "2", "--out", run_s, "--force"]);
    refused(&o, "notes.txt");
    assert_eq!(snapshot(&run), before);
}

#[cfg(feature = "choice-list")]
#[test]
fn choice_list_folders_are_marked_and_force_is_refused_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let space = format!("{}/spaces/mlp.yaml", env!("CARGO_MANIFEST_DIR"));
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("keep"), "mine").unwrap();
    let o = archsearch(&[
        "choice-list",
        "--space",
        &space,
        "--evaluations",
        "8",
        "--out",
        theirs.to_str().unwrap(),
        "--force",
    ]);
    refused(&o, "holds none");
    assert_eq!(snapshot(&theirs).len(), 1);
    let o = archsearch_in(
        &theirs,
        &[
            "choice-list",
            "--space",
            &space,
            "--evaluations",
            "8",
            "--out",
            ".",
            "--force",
        ],
        &[],
    );
    refused(&o, "working folder");
    assert_eq!(snapshot(&theirs).len(), 1);

    let run = dir.path().join("run");
    let args = [
        "choice-list",
        "--space",
        &space,
        "--strategy",
        "random",
        "--evaluations",
        "8",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
        "--set",
        "final.max_epochs=6",
        "--set",
        "retrain_seeds=2",
    ];
    assert!(archsearch(&args).status.success());
    assert_eq!(marker(&run)["command"], "choice-list");
    // Each command resumes only its own runs, and says which command to use.
    let run_s = run.to_str().unwrap();
    refused(
        &archsearch(&["--resume", run_s]),
        &format!("resume it with `archsearch choice-list --resume {run_s}`"),
    );
    let search = dir.path().join("search");
    let search_s = search.to_str().unwrap();
    assert!(
        archsearch_quick(&["--rollouts", "2", "--out", search_s, "--quiet"])
            .status
            .success()
    );
    refused(
        &archsearch(&["choice-list", "--resume", search_s]),
        &format!("resume it with `archsearch --resume {search_s}`"),
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = archsearch(&forced);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[cfg(feature = "choice-list")]
#[test]
fn choice_list_resume_refuses_changed_flags_and_any_bad_row_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let space = format!("{}/spaces/mlp.yaml", env!("CARGO_MANIFEST_DIR"));
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = archsearch(&[
        "choice-list",
        "--space",
        &space,
        "--strategy",
        "random",
        "--evaluations",
        "24",
        "--out",
        run_s,
        "--quiet",
        "--set",
        "final.max_epochs=6",
        "--set",
        "retrain_seeds=2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&run);
    let resume = |extra: &[&str]| {
        let mut args = vec!["choice-list", "--resume", run_s, "--quiet"];
        args.extend_from_slice(extra);
        archsearch(&args)
    };
    // Flags that differ from the folder's: refused by name.
    refused(
        &resume(&["--strategy", "evolution"]),
        "strategy: was random, now evolution",
    );
    refused(
        &resume(&["--evaluations", "20"]),
        "rollouts: was 24, now 20",
    );
    let o = resume(&["--seed", "5", "--seeds", "2"]);
    refused(&o, "seed: was 0, now 5");
    refused(&o, "seeds: was 1, now 2");
    refused(&resume(&["--device", "gpu"]), "unknown device `gpu`");
    assert_eq!(snapshot(&run), before);
    // The same flags given again are no difference.
    let o = resume(&["--strategy", "random", "--evaluations", "24", "--seed", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // rollouts.csv missing a row in the middle (the case): refused, not a byte changed.
    let csv = run.join("rollouts.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut cut: Vec<&str> = lines.clone();
    cut.remove(5);
    std::fs::write(&csv, cut.join("\n") + "\n").unwrap();
    let before = snapshot(&run);
    let o = resume(&[]);
    refused(&o, "rollout 6 where rollout 5 was expected");
    assert_eq!(snapshot(&run), before);
    // Rows cut short of the checkpoint: refused.
    std::fs::write(&csv, lines[..21].join("\n") + "\n").unwrap();
    let before = snapshot(&run);
    refused(&resume(&[]), "holds 20 rows up to rollout 24");
    assert_eq!(snapshot(&run), before);
    // A row whose configuration was edited out of the space: found before any write.
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[3] = edited[3].replacen(
        "\"\"learning_rate\"\":",
        "\"\"learning_rate\"\":1e-3,\"\"x\"\":",
        1,
    );
    std::fs::write(&csv, edited.join("\n") + "\n").unwrap();
    let before = snapshot(&run);
    refused(&resume(&[]), "holds a configuration outside the space");
    assert_eq!(snapshot(&run), before);
}

#[test]
fn a_refused_resume_changes_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = archsearch_quick(&["--rollouts", "60", "--out", run_s, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The case: a checkpoint with a valid checksum, 50 rollouts done (so rollouts.csv
    // has rows past it, which a resume cuts) and a controller of the wrong size.
    let mut saved = archsearch::output::checkpoint::load(&run).unwrap();
    saved.done = 50;
    saved.searches[0].state["controller"]
        .as_array_mut()
        .unwrap()
        .pop();
    archsearch::output::checkpoint::save(&run, &saved).unwrap();
    let before = snapshot(&run);
    let o = archsearch(&["--resume", run_s, "--quiet"]);
    refused(&o, "does not fit the settings it holds");
    assert_eq!(snapshot(&run), before);

    // A good checkpoint, but rollouts.csv with a row repeated where one is missing.
    let mut saved = archsearch::output::checkpoint::load(&run).unwrap();
    saved.searches[0].state["controller"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(0.0));
    archsearch::output::checkpoint::save(&run, &saved).unwrap();
    let csv = run.join("rollouts.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[10] = lines[9];
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let before = snapshot(&run);
    refused(
        &archsearch(&["--resume", run_s, "--quiet"]),
        "rollout 9 where rollout 10 was expected",
    );
    assert_eq!(snapshot(&run), before);
    // An unreadable number in a row (its `seconds`).
    let original: Vec<&str> = text.lines().collect();
    let fields: Vec<&str> = original[10].rsplitn(4, ',').collect();
    let unreadable = format!("{},{},zero,{}", fields[3], fields[2], fields[0]);
    lines[10] = &unreadable;
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let before = snapshot(&run);
    refused(
        &archsearch(&["--resume", run_s, "--quiet"]),
        "`zero` is not a number",
    );
    assert_eq!(snapshot(&run), before);

    // A run killed before its first checkpoint (only the marker written): refused, with advice
    // that works.
    let early = dir.path().join("early");
    std::fs::create_dir(&early).unwrap();
    std::fs::copy(run.join(".archsearch-run"), early.join(".archsearch-run")).unwrap();
    let early_s = early.to_str().unwrap();
    refused(
        &archsearch(&["--resume", early_s]),
        &format!("holds no checkpoint: its run was stopped before it wrote the first one, so there is nothing to resume; start it again with `--out {early_s} --force`"),
    );
    let o = archsearch_quick(&["--rollouts", "2", "--out", early_s, "--force", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_relative_data_path_resumes_from_any_working_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (here, elsewhere) = (dir.path().join("here"), dir.path().join("elsewhere"));
    std::fs::create_dir(&here).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    let o = archsearch_in(&here, &["moons", "--out", "points.csv"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = archsearch_in(
        &here,
        &[
            "--data",
            "points.csv",
            "--rollouts",
            "4",
            "--set",
            "retrain_seeds=1",
            "--out",
            "run",
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = here.join("run");
    let points = here.join("points.csv").canonicalize().unwrap();
    // The checkpoint names the file by its absolute, canonical path.
    let saved = archsearch::output::checkpoint::load(&run).unwrap();
    assert_eq!(saved.source, archsearch::data::Source::Csv(points.clone()));
    // From another folder: without --data, with the absolute path, with another relative one.
    let run_s = run.to_str().unwrap();
    for data in [
        None,
        Some(points.to_str().unwrap()),
        Some("../here/points.csv"),
    ] {
        let mut args = vec!["--resume", run_s, "--quiet"];
        if let Some(d) = data {
            args.extend(["--data", d]);
        }
        let o = archsearch_in(&elsewhere, &args, &[]);
        assert!(o.status.success(), "{data:?}: {}", stderr(&o));
    }
    // Another file is still another file.
    std::fs::copy(&points, elsewhere.join("points.csv")).unwrap();
    let o = archsearch_in(
        &elsewhere,
        &["--resume", run_s, "--data", "points.csv"],
        &[],
    );
    refused(&o, "was searched on");
}

/// SIGTERM to `child`; its exit code, or a failure when it has not exited after `seconds`.
fn terminate(child: &mut Child, seconds: u64) -> Option<i32> {
    // SAFETY: kill(2) with the id of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    panic!("SIGTERM was ignored for {seconds} s");
}

fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_during_the_final_retraining_stops_it_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    // 1000 retrainings (the limit) take minutes: only a stop ends this run in seconds.
    let mut child = spawn(&[
        "--rollouts",
        "4",
        "--set",
        "retrain_seeds=1000",
        "--out",
        run_s,
    ]);
    let lines = stderr_lines(&mut child);
    wait_for(&lines, "choosing the best architecture");
    assert_eq!(terminate(&mut child, 10), Some(130));
    let s = summary(&run);
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["rollouts_done"], 4);
    assert!(std::fs::read(run.join("accuracy.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    let saved = archsearch::output::checkpoint::load(&run).unwrap();
    assert_eq!((saved.done, saved.settings.retrain_seeds), (4, 1000));
    assert_eq!(csv_without_seconds(&run).len(), 4);

    // Resumed, it goes straight to the retraining, which stops again the same way.
    let mut child = spawn(&["--resume", run_s]);
    let lines = stderr_lines(&mut child);
    wait_for(&lines, "choosing the best architecture");
    assert_eq!(terminate(&mut child, 10), Some(130));
    assert_eq!(summary(&run)["interrupted"], true);
    assert_eq!(csv_without_seconds(&run).len(), 4);
}

#[test]
fn sigterm_stops_a_child_that_would_train_for_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    // Each child trains 100000 epochs (no early stopping): minutes for one. Two children side
    // by side, so the parallel trainer is the one stopped.
    let mut child = spawn(&[
        "--rollouts",
        "4",
        "--rollouts-per-update",
        "2",
        "--set",
        "child.max_epochs=100000",
        "--set",
        "child.patience=100000",
        "--out",
        run_s,
    ]);
    let lines = stderr_lines(&mut child);
    wait_for(&lines, "archsearch: 4 rollouts");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(terminate(&mut child, 10), Some(130));
    let s = summary(&run);
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["rollouts_done"], 0);
    // The batch cut short is forgotten: the checkpoint is the state before it.
    let saved = archsearch::output::checkpoint::load(&run).unwrap();
    assert_eq!(saved.done, 0);
    assert_eq!(csv_without_seconds(&run).len(), 0);
}

#[test]
fn a_full_stdout_or_stderr_loses_no_result() {
    if !Path::new("/dev/full").exists() {
        return; // Linux only
    }
    let dir = tempfile::tempdir().unwrap();
    let full = || {
        Stdio::from(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    for (name, stdout_full, stderr_full) in [
        ("out", true, false),
        ("err", false, true),
        ("both", true, true),
    ] {
        let run = dir.path().join(name);
        let mut command = bin();
        command.args(["--rollouts", "3", "--out", run.to_str().unwrap()]);
        command.stdout(if stdout_full { full() } else { Stdio::piped() });
        command.stderr(if stderr_full { full() } else { Stdio::piped() });
        let o = command.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert_eq!(summary(&run)["rollouts_done"], 3, "{name}");
        assert_eq!(csv_without_seconds(&run).len(), 3, "{name}");
    }
    // A refused input still exits 2 with stderr full.
    let o = bin()
        .args(["--rollouts", "0"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = bin()
        .args(["--device", "tpu", "--rollouts", "2"])
        .current_dir(dir.path())
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let csv = dir.path().join("m.csv");
    let o = bin()
        .args(["moons", "--out", csv.to_str().unwrap()])
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(csv.is_file());
}

#[test]
fn a_bad_output_file_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let at = |name: &str| d.join(name).to_str().unwrap().to_string();
    refused(&archsearch(&["moons", "--out", &at("m.txt")]), "CSV only");
    refused(&archsearch(&["moons", "--out", &at("m")]), "CSV only");
    refused(
        &archsearch(&["moons", "--out", &at("no/such/folder/m.csv")]),
        "does not exist",
    );
    refused(
        &archsearch(&["moons", "--out", d.to_str().unwrap()]),
        "CSV only",
    );
    // compare: checked before the runs are read.
    let o = archsearch(&["compare", "--out", &at("c.txt"), "a=/no/such/run"]);
    refused(&o, "PNG only");
    refused(
        &archsearch(&["compare", "--out", &at("no/c.png"), "a=/no/such/run"]),
        "does not exist",
    );
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
    // A good name works.
    let o = archsearch(&["moons", "--out", &at("m.CSV")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = d.join("run");
    assert!(
        archsearch_quick(&["--rollouts", "3", "--out", run.to_str().unwrap(), "--quiet"])
            .status
            .success()
    );
    let o = archsearch(&[
        "compare",
        "--out",
        &at("c.png"),
        &format!("a={}", run.display()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(d.join("c.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
}

#[test]
fn stopped_mid_batch_by_sigterm_and_resumed_it_is_the_same_search() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        [
            "--rollouts",
            "400",
            "--rollouts-per-update",
            "2",
            "--seed",
            "5",
            "--set",
            "retrain_seeds=2",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let whole = dir.path().join("whole");
    let o = bin().args(args(&whole)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // Stopped while children train (a batch is given up), then resumed, three times over. The
    // CPU kernel trains 400 rollouts in about a second, so the signals come early.
    let pieces = dir.path().join("pieces");
    let pieces_s = pieces.to_str().unwrap().to_string();
    let mut next = args(&pieces);
    let mut stops = 0;
    for wait in [50u64, 200, 400] {
        let mut child = bin()
            .args(&next)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = stderr_lines(&mut child);
        wait_for(&lines, "archsearch: 400 rollouts");
        std::thread::sleep(Duration::from_millis(wait));
        match terminate(&mut child, 60) {
            Some(130) => stops += 1,
            Some(0) => break,
            other => panic!("exit {other:?}"),
        }
        next = vec!["--resume".into(), pieces_s.clone()];
    }
    assert!(stops >= 1, "never stopped: the test proves nothing");
    let o = bin().args(&next).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(csv_without_seconds(&pieces), csv_without_seconds(&whole));
    for key in ["best_architecture", "final_test_accuracies", "interrupted"] {
        assert_eq!(summary(&pieces)[key], summary(&whole)[key], "{key}");
    }
}

#[cfg(feature = "choice-list")]
#[test]
fn choice_list_stopped_by_sigterm_and_resumed_is_the_same_search() {
    let dir = tempfile::tempdir().unwrap();
    let space = format!("{}/spaces/mlp.yaml", env!("CARGO_MANIFEST_DIR"));
    let args = |out: &Path| -> Vec<String> {
        [
            "choice-list",
            "--space",
            &space,
            "--strategy",
            "all",
            "--evaluations",
            "16",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let whole = dir.path().join("whole");
    let o = bin().args(args(&whole)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let pieces = dir.path().join("pieces");
    let pieces_s = pieces.to_str().unwrap().to_string();
    let mut next = args(&pieces);
    let mut stops = 0;
    for wait in [300u64, 900, 1500] {
        let mut child = bin()
            .args(&next)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // From the run's first line on stderr: it is printed after the signal handlers are
        // installed, so a loaded machine's slow start cannot turn SIGTERM into death by signal.
        let lines = stderr_lines(&mut child);
        wait_for(&lines, "");
        std::thread::sleep(Duration::from_millis(wait));
        match terminate(&mut child, 60) {
            Some(130) => stops += 1,
            Some(0) => break,
            other => panic!("exit {other:?}"),
        }
        assert_eq!(summary(&pieces)["interrupted"], true);
        next = vec!["choice-list".into(), "--resume".into(), pieces_s.clone()];
    }
    assert!(stops >= 1, "never stopped: the test proves nothing");
    let o = bin().args(&next).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(csv_without_seconds(&pieces), csv_without_seconds(&whole));
    for key in ["best_configuration", "final_test_accuracies", "interrupted"] {
        assert_eq!(summary(&pieces)[key], summary(&whole)[key], "{key}");
    }
}
