//! End-to-end tests of hostile inputs (issue 9, part B): each defect found by a hostile new
//! user, by its reproduction, and the classes they belong to: limits named in the message and
//! enforced before any folder is written, whatever way the value arrives; no panic, no abort,
//! no hang; NaN and infinity refused or stopped. Every run is bounded in time (tests/bounded).

mod bounded;

use std::path::Path;
use std::time::Duration;

use bounded::{crashed, strings, Ended};

/// Far beyond what any of these runs needs: only a hang reaches it.
const PATIENCE: Duration = Duration::from_secs(120);
const GRACE: Duration = Duration::from_secs(5);

fn run(dir: &Path, args: &[&str]) -> Ended {
    let e = bounded::run(&strings(args), dir, PATIENCE, GRACE);
    assert!(!e.terminated, "{args:?} ran for {PATIENCE:?}: {}", e.stderr);
    assert!(!crashed(&e.stderr), "{args:?}: {}", e.stderr);
    e
}

/// Exit 2 with `expected` in the message, and no `out` folder (every case writes to `out`).
fn refused(dir: &Path, args: &[&str], expected: &str) -> String {
    let e = run(dir, args);
    assert_eq!(e.code, Some(2), "{args:?}: {}", e.stderr);
    assert!(
        e.stderr.contains(expected),
        "{args:?}: expected `{expected}` in: {}",
        e.stderr
    );
    assert!(
        !dir.join("out").exists(),
        "{args:?}: nothing is written before the input is checked"
    );
    e.stderr
}

fn succeeded(dir: &Path, args: &[&str]) -> Ended {
    let e = run(dir, args);
    assert_eq!(e.code, Some(0), "{args:?}: {}", e.stderr);
    e
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn spaces_with_no_choice_are_refused_or_searched_never_panic() {
    // Defect 2: `{}` and a single one-option decision under --strategy reinforce panicked.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = write(d, "empty.yaml", "{}\n");
    for strategy in ["reinforce", "evolution", "random"] {
        let args = [
            "choice-list",
            "--space",
            &empty,
            "--strategy",
            strategy,
            "--out",
            "out",
        ];
        refused(d, &args, "the space has no parameters");
    }
    // One configuration (one option, or constants only): searched by evaluating it.
    for (name, text) in [("one", "batch_size: [16]\n"), ("const", "batch_size: 16\n")] {
        let space = write(d, &format!("{name}.yaml"), text);
        let args = ["choice-list", "--space", &space, "--strategy", "reinforce"];
        succeeded(
            d,
            &[&args[..], &["--evaluations", "3", "--out", name, "-q"][..]].concat(),
        );
        let s = summary(&d.join(name));
        assert_eq!(
            s["best_configuration"],
            serde_json::json!({"batch_size": 16})
        );
        assert_eq!(s["rollouts_done"], 3);
    }
}

#[test]
fn a_controller_of_hidden_size_one_searches() {
    // Defect 2: `--set controller_hidden=1` panicked in the GRU cell.
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--set",
        "controller_hidden=1",
        "--rollouts",
        "3",
        "--out",
        "out",
        "-q",
    ];
    succeeded(dir.path(), &args);
    assert_eq!(summary(&dir.path().join("out"))["rollouts_done"], 3);
}

#[test]
fn values_beyond_the_f32_range_are_refused_by_line_and_column() {
    // Defect 3: 1e39 passed the finite check as f64, became infinite as f32, and the data plot
    // looped for ever; with more features the children silently diverged.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let two = write(
        d,
        "two.csv",
        "x1,x2,label\n0.1,0.2,0\n0.3,1e39,1\n0.5,0.6,0\n",
    );
    let err = refused(
        d,
        &["--data", &two, "--out", "out"],
        "line 3: x2 must be a finite number",
    );
    assert!(err.contains("1e39"), "{err}");
    let three = write(
        d,
        "three.csv",
        "x1,x2,x3,label\n0.1,0.2,0.3,0\n-1e308,0.5,0.6,1\n",
    );
    refused(
        d,
        &["--data", &three, "--out", "out"],
        "line 3: x1 must be a finite number",
    );
}

#[test]
fn sizes_that_exhaust_memory_or_time_are_refused_by_their_named_limit() {
    // Defect 4: aborts (a 12 TB allocation), an OOM kill and a hang, after --out was created.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (set, limit) in [
        ("controller_hidden=1000000", "CONTROLLER_HIDDEN_MAX"),
        ("searches=100000", "SEARCHES_MAX"),
        ("rollouts=100000000", "ROLLOUTS_MAX"),
        ("rollouts_per_update=100000", "ROLLOUTS_PER_UPDATE_MAX"),
        ("retrain_seeds=100000000", "RETRAIN_SEEDS_MAX"),
        ("child.max_epochs=100000000", "CHILD_MAX_EPOCHS_MAX"),
    ] {
        refused(d, &["--set", set, "--rollouts", "2", "--out", "out"], limit);
    }
    // Limits of products: each factor within its range, the product not.
    let args = [
        "--searches",
        "256",
        "--rollouts-per-update",
        "64",
        "--out",
        "out",
    ];
    refused(d, &args, "CHILDREN_PER_UPDATE_MAX");
    let args = [
        "--searches",
        "4",
        "--set",
        "controller_hidden=4096",
        "--out",
        "out",
    ];
    refused(d, &args, "CONTROLLER_WEIGHTS_MAX");
    for (name, text) in [
        (
            "huge.yaml",
            "hidden: {min: 0, max: 1000000000, choices: [{width: [4, 8]}]}\n",
        ),
        (
            "long.yaml",
            "hidden: {min: 999, max: 1000, choices: [{width: [4, 8]}]}\n",
        ),
    ] {
        let space = write(d, name, text);
        refused(
            d,
            &["choice-list", "--space", &space, "--out", "out"],
            "CL_LIST_LENGTH_MAX",
        );
    }
    let wide = write(
        d,
        "wide.yaml",
        "hidden: {min: 1, max: 3, choices: [{width: {lower: 1, upper: 1000000000, int: true}}]}\n",
    );
    refused(
        d,
        &["choice-list", "--space", &wide, "--out", "out"],
        "CHILD_WIDTH_MAX",
    );
}

#[test]
fn limits_hold_for_values_read_back_from_a_run_folder() {
    // A checkpoint edited with a valid checksum, and a choice-list run.json, are inputs too.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeded(d, &["--rollouts", "2", "--out", "run", "-q"]);
    let mut c = archsearch::output::checkpoint::load(&d.join("run")).unwrap();
    c.settings.controller_hidden = 1_000_000;
    archsearch::output::checkpoint::save(&d.join("run"), &c).unwrap();
    let e = run(d, &["--resume", "run"]);
    assert_eq!(e.code, Some(2), "{}", e.stderr);
    assert!(e.stderr.contains("CONTROLLER_HIDDEN_MAX"), "{}", e.stderr);

    let space = write(d, "one.yaml", "batch_size: [16, 32]\n");
    succeeded(
        d,
        &[
            "choice-list",
            "--space",
            &space,
            "--evaluations",
            "2",
            "--out",
            "cl",
            "-q",
        ],
    );
    let path = d.join("cl").join("run.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["rollouts"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(&path, spec.to_string()).unwrap();
    let e = run(d, &["choice-list", "--resume", "cl"]);
    assert_eq!(e.code, Some(2), "{}", e.stderr);
    assert!(e.stderr.contains("CL_ROLLOUTS_MAX"), "{}", e.stderr);
}

#[test]
fn settings_that_make_the_controller_diverge_are_refused_up_front() {
    // Defect 8: these ran, wrote NaN into the checkpoint as `null`, and --resume called it corrupt.
    let dir = tempfile::tempdir().unwrap();
    for (set, limit) in [
        ("gamma=1e300", "GAMMA_MAX"),
        ("entropy_beta=1e300", "ENTROPY_BETA_MAX"),
        ("repeat_penalty=1e308", "PENALTY_MAX"),
        ("early_eos_penalty=-1e308", "at least -10"),
        ("controller_lr=1e10", "CONTROLLER_LR_MAX"),
    ] {
        refused(
            dir.path(),
            &["--set", set, "--rollouts", "2", "--out", "out"],
            limit,
        );
    }
}

#[test]
fn a_diverging_controller_stops_with_a_message_and_a_checkpoint_that_resumes() {
    // Weights at both edges of f32 (finite, so a valid checkpoint) give logits whose
    // differences overflow, so the first update's loss is not finite:
    // the search stops with a message, and the checkpoint stays loadable and finite.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeded(d, &["--rollouts", "3", "--out", "run", "-q"]);
    let mut c = archsearch::output::checkpoint::load(&d.join("run")).unwrap();
    c.done = 1;
    let weights = c.searches[0].state["controller"].as_array_mut().unwrap();
    for (i, w) in weights.iter_mut().enumerate() {
        *w = serde_json::json!(if i % 2 == 0 { 3e38f32 } else { -3e38f32 });
    }
    archsearch::output::checkpoint::save(&d.join("run"), &c).unwrap();
    for _ in 0..2 {
        let e = run(d, &["--resume", "run", "-q"]);
        assert_eq!(e.code, Some(1), "{}", e.stderr);
        assert!(e.stderr.contains("diverged"), "{}", e.stderr);
        let text = std::fs::read_to_string(d.join("run").join("checkpoint.json")).unwrap();
        assert!(!text.contains("null"), "no NaN written as null");
        let saved = archsearch::output::checkpoint::load(&d.join("run")).unwrap();
        assert_eq!(
            saved.searches[0].state["controller"],
            c.searches[0].state["controller"]
        );
        assert_eq!(saved.done, 1);
    }
}

#[test]
fn dropout_and_presets_cannot_be_set_wrongly() {
    // Defect 9: dropout 1.5 crippled every net; `--set preset=reference` changed only a label.
    let dir = tempfile::tempdir().unwrap();
    for v in ["1.5", "1", "-1", "NaN"] {
        let set = format!("child.dropout={v}");
        refused(
            dir.path(),
            &["--set", &set, "--out", "out"],
            "child.dropout",
        );
    }
    let args = ["--set", "preset=reference", "--out", "out"];
    refused(dir.path(), &args, "use `--preset reference`");
}

#[test]
fn one_class_is_refused_and_a_class_missing_from_a_split_is_warned_about() {
    // Defect 12: a single class reported 100 % accuracy; a file sorted by label put one class
    // alone into dev and test without a word.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = |label: &dyn Fn(usize) -> usize| -> String {
        let body: String = (0..40)
            .map(|i| format!("{},{},{}\n", i % 7, i % 5, label(i)))
            .collect();
        format!("x1,x2,label\n{body}")
    };
    let single = write(d, "single.csv", &rows(&|_| 1));
    refused(
        d,
        &["--data", &single, "--out", "out"],
        "every point has label 1",
    );
    let sorted = write(d, "sorted.csv", &rows(&|i| usize::from(i >= 20)));
    let args = ["--data", &sorted, "--rollouts", "2", "--out", "out", "-q"];
    let e = succeeded(d, &args);
    // 40 points: train 0..28 (20 of class 0, 8 of class 1), dev 28..32, test 32..40: class 1.
    assert!(e.stderr.contains("warning: "), "{}", e.stderr);
    assert!(
        e.stderr.contains("class 0 from dev, class 0 from test"),
        "{}",
        e.stderr
    );
    assert!(
        e.stderr
            .contains("train {0: 20, 1: 8}; dev {0: 0, 1: 4}; test {0: 0, 1: 8}"),
        "{}",
        e.stderr
    );
}

#[test]
fn large_yaml_lists_validate_in_linear_time_or_are_refused_by_a_named_limit() {
    // Defect 13: 200 000 options or 20 000 `hidden` options took over 40 s with no output.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let many: Vec<String> = (1..=200_000).map(|i| i.to_string()).collect();
    let space = write(
        d,
        "many.yaml",
        &format!("batch_size: [{}]\n", many.join(", ")),
    );
    refused(
        d,
        &["choice-list", "--space", &space, "--out", "out"],
        "_MAX in src/config.rs",
    );
    // 20 000 distinct blocks, trained for one epoch each.
    let mut text =
        String::from("max_epochs: 1\npatience: 1\nhidden:\n  min: 0\n  max: 2\n  choices:\n");
    for activation in ["Tanh", "ReLU", "Sigmoid", "LeakyReLU", ""] {
        for width in 1..=4000 {
            match activation {
                "" => text.push_str(&format!("    - {{width: {width}}}\n")),
                a => text.push_str(&format!("    - {{width: {width}, activation: {a}}}\n")),
            }
        }
    }
    let space = write(d, "blocks.yaml", &text);
    let args = [
        "choice-list",
        "--space",
        &space,
        "--evaluations",
        "2",
        "--out",
        "blocks",
        "-q",
    ];
    succeeded(d, &args);
}

#[test]
fn a_hannah_space_of_conv1d_residual_children_gets_a_short_plain_message() {
    // The shape of hannah's config_unas.yaml parametrization: under `model:`, 2 to 5 residual
    // blocks of 1 to 3 conv1d layers. It was refused with 1.2 KB of JSON.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let unas = "model:\n  conv:\n    min: 2\n    max: 6\n    choices:\n      - target: residual\n        stride: 1\n        blocks:\n          min: 1\n          max: 4\n          choices:\n            - target: conv1d\n              kernel_size: [1, 3, 5, 7, 9]\n              stride: [1]\n              act: [false, true]\n              norm: true\n              out_channels: [8, 16, 24, 32, 40, 48, 56, 64]\n";
    let space = write(d, "config_unas.yaml", unas);
    let err = refused(
        d,
        &["choice-list", "--space", &space, "--out", "out"],
        "conv1d/residual",
    );
    assert!(
        err.contains("cannot train") && err.contains("hidden"),
        "{err}"
    );
    assert!(
        !err.contains("{\"") && err.len() < 500,
        "short, no JSON: {err}"
    );
}
