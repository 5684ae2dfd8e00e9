//! End-to-end tests of `archsearch enas` and `archsearch enas-trial` (feature `enas`): a short
//! search writes every file, Katib's trial strings train and print Katib's metric lines, bad
//! Katib files exit 2 naming the field before anything is written, a SIGKILLed search resumes
//! into the same search, and the deploy/katib files match the CLI.
#![cfg(feature = "enas")]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{archsearch, bin, stderr};

/// A search of seconds: 3 epochs of 5 controller steps, a tiny final stage.
const TINY: [&str; 14] = [
    "--set",
    "epochs=3",
    "--set",
    "controller_train_steps=5",
    "--set",
    "final_samples=3",
    "--set",
    "retrain_seeds=2",
    "--set",
    "final_epochs=2",
    "--set",
    "batch_size=64",
    "--quiet",
    "--device=cpu",
];

fn tiny(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["enas", "--out", out.to_str().unwrap()];
    args.extend_from_slice(&TINY);
    args.extend_from_slice(extra);
    archsearch(&args)
}

#[test]
fn a_short_search_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = tiny(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "rollouts.csv",
        "summary.json",
        "architecture.json",
        "nn_config.json",
        "accuracy.png",
        "architecture.png",
        "checkpoint.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let rows = csv::Reader::from_path(out.join("rollouts.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(rows, 3 * 5, "one row per controller sample");
    // The DeepCAVE folder: a trial per sample, each configuration a point of its space.
    let dc = out.join("deepcave").join("enas-seed0");
    let history = std::fs::read_to_string(dc.join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 3 * 5);
    let space: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dc.join("configspace.json")).unwrap())
            .unwrap();
    let choices: std::collections::HashMap<String, Vec<String>> = space["hyperparameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let c = h["choices"].as_array().unwrap();
            let c = c.iter().map(|v| v.as_str().unwrap().to_string()).collect();
            (h["name"].as_str().unwrap().to_string(), c)
        })
        .collect();
    // 6 layers: an operation each and 0 + 1 + ... + 5 skip flags.
    assert_eq!(choices.len(), 6 + 15);
    let configs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dc.join("configs.json")).unwrap()).unwrap();
    for (_, config) in configs.as_object().unwrap() {
        let config = config.as_object().unwrap();
        assert_eq!(config.len(), choices.len());
        for (name, value) in config {
            assert!(
                choices[name].contains(&value.as_str().unwrap().to_string()),
                "{name}"
            );
        }
    }
    let s = common::summary(&out);
    assert_eq!(s["parameter_sharing"], true);
    assert_eq!(s["best"]["test_accuracies"].as_array().unwrap().len(), 2);
    // architecture.json is Katib's string of the summary's best; nn_config embeds its ids.
    let arch = std::fs::read_to_string(out.join("architecture.json")).unwrap();
    assert_eq!(s["best"]["katib_architecture"], arch.as_str());
    let rows: Vec<Vec<i64>> = serde_json::from_str(&arch).unwrap();
    assert_eq!(rows.len(), 6);
    let nn: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("nn_config.json")).unwrap())
            .unwrap();
    assert_eq!(nn["input_sizes"], serde_json::json!([8, 8, 1]));
    for row in &rows {
        assert!(nn["embedding"][row[0].to_string()]["opt_type"].is_string());
    }
    let quoted = s["best"]["katib_trial_parameters"]["nn_config"]
        .as_str()
        .unwrap();
    assert!(!quoted.contains('"') && quoted.contains("'embedding'"));
}

/// The seed's example from Katib's documentation, its sizes set to the digits'.
const SEED_ARCH: &str = "[[27], [29, 0], [22, 1, 0], [13, 0, 0, 0], [26, 1, 1, 0, 0], [30, 1, 0, 1, 0, 0], [11, 0, 1, 1, 0, 1, 1], [9, 1, 0, 0, 1, 0, 0, 0]]";

fn seed_nn_config() -> String {
    let conv = |id: u32, f: u32, n: u32, s: u32| {
        format!(
            "'{id}': {{'opt_id': {id}, 'opt_type': 'convolution', 'opt_params': {{'filter_size': '{f}', 'num_filter': '{n}', 'stride': '{s}'}}}}"
        )
    };
    let pool = "'30': {'opt_id': 30, 'opt_type': 'reduction', 'opt_params': {'reduction_type': 'max_pooling', 'pool_size': 2}}";
    format!(
        "{{'num_layers': 8, 'input_sizes': [8, 8, 1], 'output_sizes': [10], 'embedding': {{{}, {}, {}, {}, {}, {pool}, {}, {}}}}}",
        conv(27, 7, 96, 2),
        conv(29, 7, 128, 2),
        conv(22, 7, 48, 1),
        conv(13, 5, 48, 2),
        conv(26, 7, 96, 1),
        conv(11, 5, 32, 2),
        conv(9, 3, 128, 2)
    )
}

#[test]
fn a_trial_of_the_seed_example_prints_katibs_metric_lines() {
    let arch = format!("\"{}\"", SEED_ARCH.replace('"', "'"));
    let o = archsearch(&[
        "enas-trial",
        "--architecture",
        &arch,
        "--nn-config",
        &seed_nn_config(),
        "--num-epochs",
        "2",
        "--dataset",
        "digits",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // Katib's default filter: ([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)
    let mut found = std::collections::BTreeMap::<String, Vec<f64>>::new();
    for line in text.lines() {
        if let Some((name, value)) = line.split_once('=') {
            let ok_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '|');
            if ok_name {
                let v: f64 = value.trim().parse().expect("a plain number");
                found.entry(name.to_string()).or_default().push(v);
            }
        }
    }
    for name in [
        "Training-Accuracy",
        "Training-Loss",
        "Validation-Accuracy",
        "Validation-Loss",
    ] {
        let values = &found[name];
        assert_eq!(values.len(), 2, "{name} once per epoch");
        assert!(values.iter().all(|v| v.is_finite()));
    }
    assert!(found["Validation-Accuracy"]
        .iter()
        .all(|&a| (0.0..=1.0).contains(&a)));
}

#[test]
fn a_trial_refuses_sizes_that_do_not_match_the_dataset() {
    let nn = seed_nn_config().replace("[8, 8, 1]", "[32, 32, 3]");
    let o = archsearch(&[
        "enas-trial",
        "--architecture",
        SEED_ARCH,
        "--nn-config",
        &nn,
        "--device",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("inputSizes is [32, 32, 3]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_katib_files_exit_2_naming_the_field_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spaces/enas-digits.yaml"
    ))
    .unwrap();
    let cases: Vec<(String, &str, &str)> = vec![
        ("spec: {}\n".into(), "--katib-experiment", "spec.nasConfig"),
        (
            good.replace("operationType: reduction", "operationType: dilated"),
            "--space",
            "operations[2].operationType",
        ),
        (
            good.replace("list: [\"3\", \"5\"]", "list: []"),
            "--space",
            "feasibleSpace.list",
        ),
        (
            good.replace("min: \"3\"", "min: \"4\""),
            "--space",
            "min 4 is above max 3",
        ),
        (
            good.replace("numLayers: 6", "numLayers: 0"),
            "--space",
            "numLayers",
        ),
        (
            good.replace("[8, 8, 1]", "[28, 28, 1]"),
            "--space",
            "inputSizes",
        ),
        ("foo: 1\n".into(), "--space", "no nasConfig"),
    ];
    for (i, (text, flag, field)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join(format!("out{i}"));
        let o = archsearch(&[
            "enas",
            flag,
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "case {i}: {}", stderr(&o));
        assert!(stderr(&o).contains(field), "case {i}: {}", stderr(&o));
        assert!(!out.exists(), "case {i}: a folder was written");
    }
}

fn without(v: &serde_json::Value, keys: &[&str]) -> serde_json::Value {
    let mut v = v.clone();
    for k in keys {
        v.as_object_mut().unwrap().remove(*k);
    }
    v
}

#[test]
fn a_search_killed_and_resumed_is_the_same_search() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let o = tiny(&whole, &["--set", "epochs=4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let killed = dir.path().join("killed");
    let mut args: Vec<String> = vec![
        "enas".into(),
        "--out".into(),
        killed.to_str().unwrap().into(),
    ];
    args.extend(TINY.iter().map(|s| s.to_string()));
    args.extend(["--set".to_string(), "epochs=4".to_string()]);
    let mut child = bin()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL once the first epoch's checkpoint is there (and the run is not finished).
    let started = Instant::now();
    let mut was_killed = false;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        let text = std::fs::read_to_string(killed.join("checkpoint.json")).unwrap_or_default();
        if text.contains("\"epochs_done\":1") || text.contains("\"epochs_done\":2") {
            child.kill().unwrap();
            child.wait().unwrap();
            was_killed = true;
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        was_killed,
        "the run ended before it could be killed; the test proves nothing"
    );
    assert!(!killed.join("summary.json").exists());
    let o = archsearch(&["enas", "--resume", killed.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |d: &Path| std::fs::read_to_string(d.join("rollouts.csv")).unwrap();
    assert_eq!(
        read(&whole),
        read(&killed),
        "rollouts.csv differs after resume"
    );
    for f in ["architecture.json", "nn_config.json"] {
        assert_eq!(
            std::fs::read(whole.join(f)).unwrap(),
            std::fs::read(killed.join(f)).unwrap(),
            "{f} differs"
        );
    }
    let times = [
        "search_seconds",
        "final_seconds",
        "wall_seconds",
        "shared_seconds_per_epoch",
        "shared_cpu_seconds_per_epoch",
    ];
    assert_eq!(
        without(&common::summary(&whole), &times),
        without(&common::summary(&killed), &times)
    );
}

#[test]
fn no_sharing_trains_every_sample_from_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = tiny(
        &out,
        &[
            "--no-sharing",
            "--set",
            "epochs=1",
            "--set",
            "controller_train_steps=2",
            "--set",
            "no_sharing_epochs=1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = common::summary(&out);
    assert_eq!(s["parameter_sharing"], false);
    assert_eq!(s["shared_steps"], 0);
    assert_eq!(s["controller_samples"], 2);
}

/// The Katib Experiments of deploy/katib: they parse as Experiments of archsearch's reader,
/// the trial command is one the CLI accepts, and every trial parameter it references exists.
#[test]
fn the_deploy_files_match_the_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/katib");
    let mut checked = 0;
    for name in [
        "enas-katib-trials.yaml",
        "enas-archsearch-single-trial.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let doc = archsearch::enas::katib::parse_yaml(&text).unwrap();
        let input = archsearch::enas::katib::read(&doc, true).unwrap();
        assert!(input.space.num_operations() > 0);
        let params: Vec<String> = doc
            .pointer("/spec/trialTemplate/trialParameters")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let container = doc
            .pointer("/spec/trialTemplate/trialSpec/spec/template/spec/containers/0")
            .unwrap();
        let command: Vec<String> = container["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(command[0], "archsearch");
        // Every ${trialParameters.X} names a declared parameter; substituted, the CLI parses it.
        let mut args = Vec::new();
        for arg in &command[1..] {
            let mut a = arg.clone();
            while let Some(start) = a.find("${trialParameters.") {
                let end = a[start..].find('}').unwrap() + start;
                let p = &a[start + 18..end];
                assert!(
                    params.iter().any(|q| q == p),
                    "{name}: {p} is not a trial parameter"
                );
                let value = if p.contains("Architecture") {
                    "[[0]]"
                } else {
                    "{}"
                };
                a.replace_range(start..=end, value);
            }
            args.push(a);
        }
        let parsed = <archsearch::cli::Cli as clap::Parser>::try_parse_from(
            std::iter::once("archsearch".to_string()).chain(args.clone()),
        );
        assert!(
            parsed.is_ok(),
            "{name}: {args:?} does not parse: {:?}",
            parsed.err()
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(docker.contains("--features enas") || docker.contains("--all-features"));
}
