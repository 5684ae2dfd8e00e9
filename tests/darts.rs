//! End-to-end tests of `archsearch darts` and `archsearch darts-train` (feature `darts`): a
//! short search writes every file, Katib's trial arguments and Experiment drive it, bad input
//! exits 2 before any file is written, a hand-written genotype trains, and a search killed with
//! SIGKILL and resumed is the same search.
#![cfg(feature = "darts")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{archsearch, bin, stderr};

/// Settings that make a search take seconds: a few images, a tiny supernet, one epoch of
/// final training, one random genotype.
const TINY: [&str; 20] = [
    "--set",
    "train_images=64",
    "--set",
    "init_channels=2",
    "--set",
    "stem_multiplier=1",
    "--set",
    "num_nodes=2",
    "--set",
    "batch_size=16",
    "--set",
    "retrain_epochs=1",
    "--set",
    "retrain_seeds=1",
    "--set",
    "random_genotypes=1",
    "--device",
    "cpu",
    "--quiet",
    "--num-layers=2",
];

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn a_short_search_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = vec![
        "darts",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "num_epochs=2",
    ];
    args.extend(TINY);
    let o = archsearch(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "rollouts.csv",
        "alphas.csv",
        "summary.json",
        "genotype.txt",
        "accuracy.png",
        "alphas.png",
        "normal.png",
        "reduce.png",
        "checkpoint.ot",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert_eq!(rows(&out.join("rollouts.csv")).len(), 2);
    // 2 epochs x 2 cell kinds x 5 edges x 7 primitives.
    assert_eq!(rows(&out.join("alphas.csv")).len(), 2 * 2 * 5 * 7);
    let genotype = std::fs::read_to_string(out.join("genotype.txt")).unwrap();
    let text = stdout(&o);
    let re = regex::Regex::new(r"([\w-]+)=(Genotype.*)").unwrap();
    let caps = re.captures(&text).unwrap();
    assert_eq!(&caps[1], "Best-Genotype");
    assert_eq!(caps[2].trim(), genotype.trim());
    let summary = common::summary(&out);
    assert_eq!(summary["genotype"].as_str().unwrap(), genotype.trim());
    assert_eq!(
        summary["edge_weight_spread"]["normal"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        summary["retrained"]["darts"]["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        summary["retrained"]["random"]["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Two epochs of a tiny alpha step cannot separate the alphas: the summary says so.
    assert!(summary["near_uniform_warning"].is_string());
}

#[test]
fn katibs_trial_arguments_drive_a_search() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args = vec![
        "darts",
        "--out",
        out.to_str().unwrap(),
        "--algorithm-settings=\"{'num_epochs': '1', 'w_lr': 0.025, 'num_workers': 4, 'init_channels': '2', 'stem_multiplier': 1, 'num_nodes': '1', 'batch_size': 16}\"",
        "--search-space=\"['max_pooling_3x3', 'skip_connection']\"",
    ];
    // TINY but for its num_nodes, which --algorithm-settings gives here.
    let tiny: Vec<&str> = TINY[..18]
        .chunks(2)
        .filter(|pair| pair[1] != "num_nodes=2")
        .flatten()
        .copied()
        .collect();
    args.extend(tiny);
    args.extend(["--quiet", "--num-layers=\"1\""]);
    let o = archsearch(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // One cell, one node: two edges of three primitives (none added), normal cell only.
    assert_eq!(rows(&out.join("alphas.csv")).len(), 2 * 3);
    let line = stdout(&o);
    assert!(line.contains("reduce=[]"), "{line}");
    assert!(line.contains("normal_concat=range(2,3)"), "{line}");
    assert!(!out.join("reduce.png").exists());
}

#[test]
fn katibs_experiment_file_runs_the_trial() {
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/katib/darts-digits.yaml"),
    )
    .unwrap();
    assert!(yaml.contains("algorithmName: darts"));
    assert!(yaml.contains(r#"- "([\\w-]+)=(Genotype.*)""#));
    assert!(yaml.contains("objectiveMetricName: Best-Genotype"));
    // The trial command, with the parameters substituted as Katib's DARTS service does:
    // its defaults as numbers, the Experiment's settings as strings, in single quotes.
    let mut settings = vec![
        ("num_epochs", "50".to_string()),
        ("w_lr", "0.025".into()),
        ("w_lr_min", "0.001".into()),
        ("w_momentum", "0.9".into()),
        ("w_weight_decay", "0.0003".into()),
        ("w_grad_clip", "5.0".into()),
        ("alpha_lr", "0.0003".into()),
        ("alpha_weight_decay", "0.001".into()),
        ("batch_size", "128".into()),
        ("num_workers", "4".into()),
        ("init_channels", "16".into()),
        ("print_step", "50".into()),
        ("num_nodes", "4".into()),
        ("stem_multiplier", "3".into()),
    ];
    let lines: Vec<&str> = yaml.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(name) = l.trim().strip_prefix("- name: ") {
            if let Some(v) = lines
                .get(i + 1)
                .and_then(|n| n.trim().strip_prefix("value: "))
            {
                let v = format!("'{}'", v.trim_matches('"'));
                match settings.iter_mut().find(|(k, _)| *k == name) {
                    Some(slot) => slot.1 = v,
                    None => panic!("{name} is not a Katib setting"),
                }
            }
        }
    }
    let dict = settings
        .iter()
        .map(|(k, v)| format!("'{k}': {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let dict = format!("{{{dict}}}");
    let space = "['separable_convolution_3x3', 'dilated_convolution_3x3', 'dilated_convolution_5x5', 'avg_pooling_3x3', 'max_pooling_3x3', 'skip_connection']";
    let layers = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("numLayers: "))
        .unwrap();
    let start = yaml.find("command:").unwrap();
    let command: Vec<String> = yaml[start..]
        .lines()
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|a| {
            a.replace("${trialParameters.algorithmSettings}", &dict)
                .replace("${trialParameters.searchSpace}", space)
                .replace("${trialParameters.numberLayers}", layers)
        })
        .collect();
    assert_eq!(command[0], "archsearch");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The Experiment's own epochs and widths, shrunk for a test by --set (applied last).
    let o = bin()
        .args(&command[1..])
        .args(["--out", out.to_str().unwrap(), "--set", "num_epochs=1"])
        .args(&TINY[..16])
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let re = regex::Regex::new(r"([\w-]+)=(Genotype.*)").unwrap();
    assert!(re.is_match(&stdout(&o)));
    let summary = common::summary(&out);
    assert_eq!(summary["settings"]["alpha_lr"], 0.003);
    assert_eq!(summary["settings"]["num_layers"], 3);
}

#[test]
fn bad_input_exits_2_naming_it_before_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    for (args, says) in [
        (vec!["darts", "--out", o, "--search-space", "['conv_7x7']"], "conv_7x7"),
        (vec!["darts", "--out", o, "--search-space", "[]"], "empty"),
        (vec!["darts", "--out", o, "--num-layers", "0"], "--num-layers"),
        (
            vec!["darts", "--out", o, "--algorithm-settings", "{'num_epochs': 'many'}"],
            "num_epochs",
        ),
        (vec!["darts", "--out", o, "--set", "alpha_lr=fast"], "alpha_lr"),
        (vec!["darts-train", "--genotype", "Genotype(normal=[[('skip_connection',0)]"], "malformed genotype"),
        (
            vec!["darts-train", "--genotype", "Genotype(normal=[[('skip_connection',0),('skip_connection',1)]],normal_concat=range(2,3),reduce=[],reduce_concat=range(2,3))", "--num-layers", "3"],
            "--num-layers 1",
        ),
    ] {
        let r = archsearch(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
        assert!(stderr(&r).contains(says), "{args:?}: {}", stderr(&r));
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

#[test]
fn darts_train_trains_a_hand_written_genotype() {
    let g = "Genotype(normal=[[('separable_convolution_3x3', 0), ('skip_connection', 1)], [('max_pooling_3x3', 2), ('dilated_convolution_3x3', 0)]], normal_concat=range(2, 4), reduce=[[('avg_pooling_3x3', 0), ('skip_connection', 1)], [('separable_convolution_5x5', 2), ('dilated_convolution_5x5', 1)]], reduce_concat=range(2, 4))";
    let o = archsearch(&[
        "darts-train",
        "--genotype",
        g,
        "--num-layers",
        "2",
        "--set",
        "retrain_epochs=6",
        "--set",
        "retrain_seeds=1",
        "--set",
        "init_channels=4",
        "--set",
        "train_images=400",
        "--device",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let acc: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Test-Accuracy="))
        .unwrap()
        .parse()
        .unwrap();
    // Six epochs on 400 digits: far above the 10 % of guessing.
    assert!(acc > 0.5, "{text}");
}

/// rollouts.csv without its `seconds` column.
fn without_seconds(path: &Path) -> Vec<Vec<String>> {
    rows(path)
        .into_iter()
        .map(|mut r| {
            r.remove(9);
            r
        })
        .collect()
}

#[test]
fn killed_and_resumed_is_the_same_search() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let run = |out: &Path| {
        let mut args = vec![
            "darts",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "num_epochs=4",
        ];
        args.extend(TINY);
        args.extend(["--set", "random_genotypes=0"]);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let o = bin().args(run(&a)).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The same search, killed once its second epoch is written.
    let mut child = bin().args(run(&b)).spawn().unwrap();
    let started = Instant::now();
    loop {
        let done = std::fs::read(b.join("rollouts.csv"))
            .map(|t| t.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if done >= 3 || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run ended before the kill");
    let o = archsearch(&[
        "darts",
        "--resume",
        b.to_str().unwrap(),
        "--quiet",
        "--device",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        without_seconds(&a.join("rollouts.csv")),
        without_seconds(&b.join("rollouts.csv"))
    );
    assert_eq!(rows(&a.join("alphas.csv")), rows(&b.join("alphas.csv")));
    assert_eq!(
        std::fs::read(a.join("genotype.txt")).unwrap(),
        std::fs::read(b.join("genotype.txt")).unwrap()
    );
}
