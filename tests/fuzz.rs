//! Property test of the whole command line (issue 9): random flags and `--set` values drawn
//! from the settings' names (extreme numbers, NaN, huge integers, strings), random small YAML
//! spaces for `choice-list`, and random CSV bytes for `--data`. Every run is bounded: still
//! running after PATIENCE, it gets SIGTERM and must exit 130 within GRACE. Whatever the input,
//! the exit code is 0, 2 or 130 (never a panic's 101, an abort's 134 or a signal's death), no
//! panic text reaches stderr, and a refusal (exit 2) leaves no output folder.
//!
//! Cases found failing are kept as fixed cases in `fixed_cases_found_by_fuzzing` (and by
//! proptest in tests/fuzz.proptest-regressions, replayed first).

mod bounded;

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Runs longer than this get SIGTERM (a run with tiny work ends well before).
const PATIENCE: Duration = Duration::from_secs(5);
/// After SIGTERM, the run must have exited with 130 within this.
const GRACE: Duration = Duration::from_secs(2);
/// Cases per property, chosen for about a minute each on a 2-core machine (a case runs the
/// binary once, most in about half a second; the three properties run side by side).
const CASES: u32 = 64;

fn config() -> Config {
    Config {
        // PROPTEST_CASES=500 for a deeper search by hand.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        max_shrink_iters: 24,
        // Failing cases are kept here and replayed first (the default place is found from a
        // src/ file, which an integration test does not have).
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz.proptest-regressions",
        ))),
        max_shrink_time: 60_000,
        ..Config::default()
    }
}

/// Runs one case in a fresh folder and checks the guarantees; `Err` says which one failed.
fn check(args: &[String], files: &[(&str, Vec<u8>)]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let e = bounded::run(args, dir.path(), PATIENCE, GRACE);
    let what = || format!("archsearch {}\nended {e:?}", shell(args));
    if std::env::var_os("FUZZ_LOG").is_some() {
        eprintln!(
            "FUZZ {:?} {:?} {:.1}s {} :: {}",
            e.code,
            e.terminated,
            e.seconds,
            shell(args),
            e.stderr.lines().last().unwrap_or("")
        );
    }
    prop_assert!(!e.hung, "still running {GRACE:?} after SIGTERM: {}", what());
    prop_assert!(
        !bounded::crashed(&e.stderr),
        "a crash on stderr: {}",
        what()
    );
    if e.terminated {
        // A run that had finished its work as the signal came may end with 0; one that had not
        // must stop with 130 (a run deaf to the signal fails the `hung` check above).
        prop_assert!(
            matches!(e.code, Some(130) | Some(0)),
            "SIGTERM must end it with 130: {}",
            what()
        );
    } else {
        prop_assert!(
            matches!(e.code, Some(0) | Some(2)),
            "exit 0 or 2 expected: {}",
            what()
        );
    }
    if e.code == Some(2) {
        prop_assert!(
            leftovers(dir.path()).is_empty(),
            "a refusal left {:?}: {}",
            leftovers(dir.path()),
            what()
        );
    }
    Ok(())
}

/// Folders a run created in its working directory (`out`, or the default `runs/`).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The command line as one could paste it into a shell.
fn shell(args: &[String]) -> String {
    args.iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every setting's summary.json name (`child.lr` for nested ones), read from the settings
/// themselves so a new setting is fuzzed too; plus names that are not settings.
fn setting_names() -> Vec<String> {
    fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v.as_object() {
            Some(map) => {
                for (k, child) in map {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&name, child, out);
                }
            }
            None => out.push(prefix.to_string()),
        }
    }
    let mut names = Vec::new();
    let settings = serde_json::to_value(archsearch::config::Settings::default()).unwrap();
    leaves("", &settings, &mut names);
    names.extend(["child", "nonsense", "child.nope", "", "settings.seed"].map(String::from));
    names
}

/// Values for `--set`: ordinary, extreme and odd numbers, and things that are not numbers.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "0.5",
    "0.999",
    "1.0",
    "10",
    "64",
    "256",
    "257",
    "4096",
    "4097",
    "100000",
    "10000000",
    "1e308",
    "-1e308",
    "1e39",
    "1e-320",
    "NaN",
    "inf",
    "-inf",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "-0",
    "1e3",
    "true",
    "false",
    "null",
    "0.01",
    "0.1",
    "0.9",
    "0.0001",
    "-0.5",
    "5",
    "16",
    "32",
    "1000",
    "\"x\"",
    "abc",
    "",
    "[1]",
    "{}",
    "reference",
    " 2 ",
];

/// Numbers for flags and YAML: small ones most of the time, extremes now and then.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..5).prop_map(|n| n.to_string()),
        1 => prop::sample::select(VALUES).prop_map(String::from),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| x.to_string()),
    ]
}

/// A small count (`0..limit`), or now and then any number.
fn small(limit: u32) -> impl Strategy<Value = String> {
    prop_oneof![6 => (0..limit).prop_map(|n| n.to_string()), 1 => number()]
}

/// One of `usual` most of the time, else one of `odd`.
fn mostly(usual: &'static [&'static str], odd: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        5 => prop::sample::select(usual).prop_map(String::from),
        1 => prop::sample::select(odd).prop_map(String::from),
    ]
    .boxed()
}

/// A flag and its value.
fn flag(name: &'static str, values: BoxedStrategy<String>) -> BoxedStrategy<Vec<String>> {
    values.prop_map(move |v| vec![name.to_string(), v]).boxed()
}

/// `--set KEY=VALUE` with a setting's name (or not) and a value of any kind.
fn set_flag() -> BoxedStrategy<Vec<String>> {
    let value = prop_oneof![
        3 => prop::sample::select(VALUES).prop_map(String::from),
        1 => number(),
    ];
    (prop::sample::select(setting_names()), value)
        .prop_map(|(k, v)| vec!["--set".to_string(), format!("{k}={v}")])
        .boxed()
}

/// A flag of the default command (no data source) with its value; tiny work unless the case
/// is about it.
fn search_flag() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        1 => flag("--rollouts", small(4).boxed()),
        1 => flag("--searches", small(4).boxed()),
        1 => flag("--rollouts-per-update", small(4).boxed()),
        1 => flag("--seed", small(1000).boxed()),
        1 => flag("--preset", mostly(&["default", "reference"], &["best", ""])),
        1 => flag("--device", mostly(&["cpu", "auto"], &["gpu", "cuda:9", "cuda"])),
        3 => set_flag(),
        1 => Just(vec!["--quiet".to_string()]),
    ]
    .boxed()
}

/// `--out out` most of the time; sometimes the default folder (runs/ in the working directory).
fn out_flag() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![4 => Just(vec!["--out".to_string(), "out".to_string()]), 1 => Just(vec![])]
}

/// A YAML scalar: numbers (extreme too), names, activations, booleans, null.
fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        number(),
        prop::sample::select(
            &[
                "Tanh",
                "ReLU",
                "Sigmoid",
                "LeakyReLU",
                "conv1d",
                "x",
                "~",
                "true",
                "null",
                "'8'",
                ".nan",
                ".inf",
                "-.inf"
            ][..]
        )
        .prop_map(String::from),
    ]
}

/// A random small space node in flow style: scalars, lists (Choices) and the mappings of
/// hannah's parameter types, with random (often extreme) numbers.
fn yaml_node() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "width",
            "activation",
            "hidden",
            "lower",
            "upper",
            "min",
            "max",
            "choices",
            "size",
            "partition",
            "int",
            "log",
            "_target_",
            "kernel_size",
        ][..],
    );
    yaml_scalar().prop_recursive(3, 16, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            (number(), number(), any::<bool>(), any::<bool>()).prop_map(
                |(lo, hi, int, log)| format!(
                    "{{lower: {lo}, upper: {hi}, int: {int}, log: {log}}}"
                )
            ),
            (
                number(),
                number(),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(min, max, c)| format!(
                    "{{min: {min}, max: {max}, choices: [{}]}}",
                    c.join(", ")
                )),
            (number(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(size, c)| format!("{{size: {size}, choices: [{}]}}", c.join(", "))),
            (number(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(k, c)| format!("{{partition: {k}, choices: [{}]}}", c.join(", "))),
            prop::collection::vec((key.clone(), inner), 0..3).prop_map(|fields| {
                let f: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", f.join(", "))
            }),
        ]
    })
}

/// A space of the MLP child's shape (as spaces/mlp.yaml) with random, sometimes extreme,
/// numbers: most are valid, so the searches themselves are exercised too.
fn mlp_space() -> impl Strategy<Value = String> {
    let widths = prop_oneof![
        4 => prop::collection::btree_set(1u32..20, 1..4)
            .prop_map(|w| w.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
        1 => prop::collection::vec(number(), 1..3).prop_map(|w| w.join(", ")),
    ];
    let activations = prop::collection::btree_set(
        prop::sample::select(&["Tanh", "ReLU", "Sigmoid", "LeakyReLU", "Softmax"][..]),
        1..3,
    )
    .prop_map(|a| a.into_iter().collect::<Vec<_>>().join(", "));
    let lengths = prop_oneof![
        5 => (0u32..3, 1u32..4).prop_map(|(min, n)| (min.to_string(), (min + n).to_string())),
        1 => (number(), number()),
    ];
    let hidden = (lengths, widths, activations).prop_map(|((min, max), w, a)| {
        format!(
            "hidden: {{min: {min}, max: {max}, choices: [{{width: [{w}], activation: [{a}]}}]}}\n"
        )
    });
    let lr = prop_oneof![
        3 => Just("learning_rate: {lower: 0.001, upper: 0.1, log: true}\n".to_string()),
        1 => (number(), number()).prop_map(|(lo, hi)| format!("learning_rate: {{lower: {lo}, upper: {hi}}}\n")),
    ];
    let training = (
        small(70),
        small(10),
        small(5),
        mostly(
            &["0.0", "0.5", "[0.0, {lower: 0.1, upper: 0.4}]"],
            &["0.99", "1", "-0.1"],
        ),
    )
        .prop_map(|(b, e, p, d)| {
            format!("batch_size: [{b}]\nmax_epochs: {e}\npatience: {p}\ndropout: {d}\n")
        });
    (hidden, prop::option::of(lr), prop::option::of(training))
        .prop_map(|(h, lr, t)| format!("{h}{}{}", lr.unwrap_or_default(), t.unwrap_or_default()))
}

/// A space file: the MLP child's shape with random numbers, random nodes under random
/// top-level keys, or random bytes.
fn space_file() -> impl Strategy<Value = Vec<u8>> {
    let top = prop::sample::select(
        &[
            "hidden",
            "learning_rate",
            "batch_size",
            "dropout",
            "max_epochs",
            "patience",
            "model",
            "optimizer",
        ][..],
    );
    prop_oneof![
        4 => mlp_space().prop_map(String::into_bytes),
        2 => prop::collection::vec((top, yaml_node()), 1..4).prop_map(|fields| {
            fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect::<String>().into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// A flag of `choice-list` with its value; tiny work unless the case is about it.
fn choice_list_flag() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        2 => flag("--strategy", mostly(&["reinforce", "evolution", "random", "all"], &["annealing", ""])),
        1 => flag("--evaluations", small(9).boxed()),
        1 => flag("--seeds", mostly(&["1", "2"], &["0", "101", "-1", "100"])),
        1 => flag("--seed", small(1000).boxed()),
        1 => flag("--device", mostly(&["cpu", "auto"], &["tpu", "cuda:3"])),
        1 => Just(vec!["--quiet".to_string()]),
    ]
    .boxed()
}

/// A CSV field that is not a plain small number.
const ODD_FIELDS: &[&str] = &[
    "1e39",
    "-1e308",
    "3.4e38",
    "3.5e38",
    "-3.5e38",
    "1e-45",
    "NaN",
    "inf",
    "-inf",
    "0x10",
    "\"1\"",
    "",
    " ",
    "abc",
    "1,2",
    "\u{0}",
    "1e3",
    "-0",
    "99999999999999999999",
];

/// A `--data` file: a header of d features and rows of small numbers (labels 0 and 1, or 0 to
/// 2; sometimes sorted by label, sometimes all one class), with an odd field or label put in
/// now and then; or random bytes.
fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    let row = (prop::collection::vec(-300i32..300, 3), 0u8..3);
    let odd = (
        any::<prop::sample::Index>(),
        0usize..4,
        prop::sample::select(ODD_FIELDS),
    );
    let odd_label = prop::sample::select(&["-1", "1000", "1001", "a", "", "0.5"][..]);
    let structured = (
        1usize..4,
        prop::collection::vec(row, 0..40),
        prop::sample::select(&["two", "three", "one", "sorted"][..]),
        prop::option::weighted(0.3, odd),
        prop::option::weighted(0.1, (any::<prop::sample::Index>(), odd_label)),
    )
        .prop_map(|(d, rows, classes, odd, odd_label)| {
            let mut lines: Vec<(Vec<String>, String)> = rows
                .iter()
                .map(|(xs, l)| {
                    let label = match classes {
                        "two" | "sorted" => l % 2,
                        "three" => *l,
                        _ => 1,
                    };
                    let fields = xs[..d]
                        .iter()
                        .map(|x| format!("{}", *x as f64 / 100.0))
                        .collect();
                    (fields, label.to_string())
                })
                .collect();
            if classes == "sorted" {
                lines.sort_by(|a, b| a.1.cmp(&b.1));
            }
            if let (Some((i, column, text)), false) = (odd, lines.is_empty()) {
                let n = lines.len();
                let line = &mut lines[i.index(n)];
                if column < d {
                    line.0[column] = text.to_string();
                } else {
                    line.1 = text.to_string();
                }
            }
            if let (Some((i, text)), false) = (odd_label, lines.is_empty()) {
                let n = lines.len();
                lines[i.index(n)].1 = text.to_string();
            }
            let header: Vec<String> = (1..=d)
                .map(|i| format!("x{i}"))
                .chain(["label".into()])
                .collect();
            let mut text = header.join(",") + "\n";
            for (fields, label) in lines {
                text.push_str(&format!("{},{label}\n", fields.join(",")));
            }
            text.into_bytes()
        });
    prop_oneof![6 => structured, 1 => prop::collection::vec(any::<u8>(), 0..300)]
}

/// A command line from `head` and random flags: a flag given twice keeps its first value (clap
/// refuses repeats; `--set` may repeat), and each of `defaults` (tiny work, the output folder)
/// is added when the flags do not name it.
fn command(head: &[&str], flags: Vec<Vec<String>>, defaults: &[Vec<String>]) -> Vec<String> {
    let mut args: Vec<String> = head.iter().map(|a| a.to_string()).collect();
    let mut named: Vec<String> = Vec::new();
    for flag in flags.into_iter().chain(defaults.iter().cloned()) {
        let name = flag[0].clone();
        if name != "--set" && named.contains(&name) {
            continue;
        }
        named.push(name);
        args.extend(flag);
    }
    args
}

fn pair(name: &str, value: impl ToString) -> Vec<String> {
    vec![name.to_string(), value.to_string()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_default_command_never_crashes_hangs_or_leaves_a_refused_folder(
        flags in prop::collection::vec(search_flag(), 0..5),
        dataset in prop::option::weighted(0.2, mostly(&["iris"], &["mnist", "winequality"])),
        out in out_flag(),
        rollouts in (1u32..4),
    ) {
        let mut flags = flags;
        flags.extend(dataset.map(|name| pair("--dataset", name)));
        flags.extend([out].into_iter().filter(|o| !o.is_empty()));
        check(&command(&[], flags, &[pair("--rollouts", rollouts)]), &[])?;
    }

    #[test]
    fn choice_list_never_crashes_hangs_or_leaves_a_refused_folder(
        space in space_file(),
        flags in prop::collection::vec(choice_list_flag(), 0..4),
        out in out_flag(),
    ) {
        let mut flags = flags;
        flags.extend([out].into_iter().filter(|o| !o.is_empty()));
        let head = ["choice-list", "--space", "space.yaml"];
        let args = command(&head, flags, &[pair("--evaluations", 2)]);
        check(&args, &[("space.yaml", space)])?;
    }

    #[test]
    fn any_data_file_is_searched_or_refused_never_crashing_or_hanging(
        csv in csv_file(),
        flags in prop::collection::vec(search_flag(), 0..2),
    ) {
        let defaults = [pair("--rollouts", 2), pair("--out", "out")];
        let args = command(&["--data", "points.csv"], flags, &defaults);
        check(&args, &[("points.csv", csv)])?;
    }
}

/// Inputs that failed during development, replayed as fixed cases.
#[test]
fn fixed_cases_found_by_fuzzing() {
    /// Arguments, and files (name, text) written into the working folder first.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        // Aborted allocating 1.9 TB for the list's decisions (now CL_LIST_LENGTH_MAX).
        (
            &[
                "choice-list",
                "--space",
                "s.yaml",
                "--strategy",
                "reinforce",
                "--out",
                "out",
                "--evaluations",
                "2",
            ],
            &[(
                "s.yaml",
                "hidden: {min: 0, max: 481784728038, choices: [Sigmoid]}\n",
            )],
        ),
        // Retrained 2^64 - 1 times, deaf to SIGTERM (now RETRAIN_SEEDS_MAX).
        (
            &[
                "--set",
                "retrain_seeds=18446744073709551615",
                "--rollouts",
                "2",
                "--out",
                "out",
            ],
            &[],
        ),
        // A long final retraining must stop on SIGTERM with 130.
        (
            &[
                "--set",
                "retrain_seeds=64",
                "--rollouts",
                "2",
                "--out",
                "out",
            ],
            &[],
        ),
    ];
    for (args, files) in cases {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let files: Vec<(&str, Vec<u8>)> = files
            .iter()
            .map(|(n, t)| (*n, t.as_bytes().to_vec()))
            .collect();
        check(&args, &files).unwrap_or_else(|e| panic!("{e}"));
    }
}
