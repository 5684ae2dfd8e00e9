//! How a choice-list configuration becomes a child to train: `hidden` blocks of a width and an
//! activation, and the training settings `learning_rate`, `batch_size`, `dropout`,
//! `max_epochs`, `patience` (the keys of `spaces/mlp.yaml`); and the check, before any work,
//! that every configuration of a space is such a child within the limits of src/config.rs.

use rand::SeedableRng;
use serde_json::Value;

use super::param::Param;
use crate::config::{ChildSettings, CHILD_WEIGHTS_MAX, CHILD_WIDTH_MAX};
use crate::nn::mlp::{Activation, Layer, MlpSpec, ACTIVATIONS};

/// The keys a configuration may have.
pub const KEYS: [&str; 6] = [
    "hidden",
    "learning_rate",
    "batch_size",
    "dropout",
    "max_epochs",
    "patience",
];

/// The network and training settings a configuration describes; keys it lacks keep `defaults`.
pub fn interpret(
    config: &Value,
    n_in: usize,
    n_out: usize,
    defaults: &ChildSettings,
) -> Result<(MlpSpec, ChildSettings), String> {
    let map = config
        .as_object()
        .ok_or("a configuration must be a mapping of named parameters")?;
    let mut settings = defaults.clone();
    let mut layers = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "hidden" => {
                let blocks = value
                    .as_array()
                    .ok_or("hidden: expected a list of blocks")?;
                for (i, block) in blocks.iter().enumerate() {
                    layers.extend(block_layers(block).map_err(|e| format!("hidden[{i}]: {e}"))?);
                }
            }
            "learning_rate" => settings.lr = number(value, key)?,
            "dropout" => settings.dropout = number(value, key)?,
            "batch_size" => settings.batch_size = count(value, key)?,
            "max_epochs" => settings.max_epochs = count(value, key)?,
            "patience" => settings.patience = count(value, key)?,
            other => {
                return Err(format!(
                    "`{other}` is not a setting of the MLP child, which trains {TRAINABLE}"
                ));
            }
        }
    }
    // The same ranges and limits as `--set child.*`, under the space's names.
    settings.validate(&|field| match field {
        "lr" => "learning_rate".into(),
        other => other.into(),
    })?;
    let spec = MlpSpec {
        n_in,
        n_out,
        layers,
    };
    if spec.n_params() > CHILD_WEIGHTS_MAX {
        return Err(format!(
            "hidden: a child of {} weights, above the limit of {CHILD_WEIGHTS_MAX} (CHILD_WEIGHTS_MAX in src/config.rs)",
            spec.n_params()
        ));
    }
    Ok((spec, settings))
}

/// What the MLP child trains, for messages.
const TRAINABLE: &str = "the keys hidden (a list of {width, activation} blocks), \
    learning_rate, batch_size, dropout, max_epochs and patience, as in spaces/mlp.yaml";

/// Words (in keys or values) of spaces of convolutional children, such as hannah's
/// conv1d/residual parametrizations.
const CONV_WORDS: [&str; 8] = [
    "conv",
    "residual",
    "pool",
    "kernel_size",
    "channels",
    "stride",
    "padding",
    "dilation",
];

/// Configurations sampled by `check_space` after the static checks.
const CHECK_SAMPLES: usize = 64;

/// Checks, before any work, that every configuration of `space` is an MLP child archsearch
/// can train within the limits of src/config.rs: no unknown key (with plain advice for a
/// space of convolutional children), the smallest and largest value of every setting and
/// width in range, the largest child within CHILD_WEIGHTS_MAX, and sampled configurations
/// readable as children. The error is short and names the key; it never dumps a configuration.
pub fn check_space(
    space: &Param,
    n_in: usize,
    n_out: usize,
    defaults: &ChildSettings,
    seed: u64,
) -> Result<(), String> {
    let Param::Map(entries) = space else {
        return Err(format!(
            "the space must be a mapping of the MLP child's settings: {TRAINABLE}"
        ));
    };
    let unknown: Vec<&(String, Param)> = entries
        .iter()
        .filter(|(name, _)| !KEYS.contains(&name.as_str()))
        .collect();
    if let Some((name, _)) = unknown.first() {
        let mut words = Vec::new();
        for (_, p) in &unknown {
            words_in(p, &mut words);
        }
        let mut conv: Vec<String> = words
            .into_iter()
            .filter(|w| {
                let w = w.to_lowercase();
                CONV_WORDS.iter().any(|c| w.contains(c))
            })
            .collect();
        conv.sort();
        conv.dedup();
        if conv.is_empty() {
            return Err(format!(
                "`{name}` is not a setting of the MLP child, which trains {TRAINABLE}"
            ));
        }
        conv.truncate(4);
        let names: Vec<String> = unknown.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(format!(
            "this space describes conv1d/residual children ({} with {}), which archsearch's MLP child cannot train; it trains {TRAINABLE}",
            names.join(", "),
            conv.join(", ")
        ));
    }
    for (name, p) in entries {
        let mut values = Vec::new();
        ends(p, &mut values);
        if name == "hidden" {
            // Widths: every number under `hidden`, tried as a block of its own.
            let widths: Vec<&Value> = values.iter().filter(|v| v.is_number()).collect();
            for w in &widths {
                let config = serde_json::json!({ "hidden": [w] });
                interpret(&config, n_in, n_out, defaults)
                    .map_err(|e| format!("{e} (a width this space allows)"))?;
            }
            let widest = widths.iter().filter_map(|w| w.as_u64()).max().unwrap_or(1) as usize;
            let blocks = longest(p);
            let bound = weights_bound(n_in, n_out, blocks, widest);
            if blocks > 0 && bound > CHILD_WEIGHTS_MAX {
                return Err(format!(
                    "hidden: up to {blocks} blocks of width up to {widest} make children of up to {bound} weights, above the limit of {CHILD_WEIGHTS_MAX} (CHILD_WEIGHTS_MAX in src/config.rs); use fewer or narrower blocks"
                ));
            }
        } else {
            for v in &values {
                let config = serde_json::json!({ name.as_str(): v });
                interpret(&config, n_in, n_out, defaults)
                    .map_err(|e| format!("{e} (a value this space allows)"))?;
            }
        }
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    for _ in 0..CHECK_SAMPLES {
        interpret(&super::sample(space, &mut rng), n_in, n_out, defaults)?;
    }
    Ok(())
}

/// Keys and string values anywhere in `p`.
fn words_in(p: &Param, out: &mut Vec<String>) {
    match p {
        Param::Const(Value::String(s)) => out.push(s.clone()),
        Param::Const(_) | Param::Interval(_) => {}
        Param::Choice(options) => options.iter().for_each(|o| words_in(o, out)),
        Param::ChoiceList(cl) => cl.choices().iter().for_each(|o| words_in(o, out)),
        Param::Subset(s) => s.choices().iter().for_each(|o| words_in(o, out)),
        Param::Partition(pt) => pt.choices().iter().for_each(|o| words_in(o, out)),
        Param::Map(entries) => {
            for (name, p) in entries {
                out.push(name.clone());
                words_in(p, out);
            }
        }
    }
}

/// The constants of `p` and the smallest and largest value of each of its intervals: every
/// scalar a configuration holds lies between some of them.
fn ends(p: &Param, out: &mut Vec<Value>) {
    match p {
        Param::Const(v) => out.push(v.clone()),
        Param::Interval(iv) => {
            let (lo, hi) = iv.ends();
            out.extend([lo, hi]);
        }
        Param::Choice(options) => options.iter().for_each(|o| ends(o, out)),
        Param::ChoiceList(cl) => cl.choices().iter().for_each(|o| ends(o, out)),
        Param::Subset(s) => s.choices().iter().for_each(|o| ends(o, out)),
        Param::Partition(pt) => pt.choices().iter().for_each(|o| ends(o, out)),
        Param::Map(entries) => entries.iter().for_each(|(_, p)| ends(p, out)),
    }
}

/// The longest list `p` gives (0 for a scalar).
fn longest(p: &Param) -> usize {
    match p {
        Param::ChoiceList(cl) => cl.max() - 1,
        Param::Subset(s) => s.size(),
        Param::Partition(pt) => pt.partition(),
        Param::Choice(options) => options.iter().map(longest).max().unwrap_or(0),
        _ => 0,
    }
}

/// Weights of an MLP of `blocks` hidden layers of `width` units (saturating).
fn weights_bound(n_in: usize, n_out: usize, blocks: usize, width: usize) -> usize {
    if blocks == 0 {
        return n_in * n_out + n_out;
    }
    let square = width.saturating_mul(width).saturating_add(width);
    (n_in.saturating_mul(width).saturating_add(width))
        .saturating_add((blocks - 1).saturating_mul(square))
        .saturating_add(width.saturating_mul(n_out).saturating_add(n_out))
}

/// A block: `{width, activation}` (either may be absent), a width alone, or an activation alone.
fn block_layers(block: &Value) -> Result<Vec<Layer>, String> {
    let width = |v: &Value| {
        v.as_u64()
            .filter(|&w| (1..=CHILD_WIDTH_MAX as u64).contains(&w))
            .map(|w| Layer::Linear(w as usize))
            .ok_or(format!(
                "width must be a whole number from 1 to {CHILD_WIDTH_MAX} (CHILD_WIDTH_MAX in src/config.rs), found {v}"
            ))
    };
    let activation = |v: &Value| {
        v.as_str()
            .and_then(Activation::from_name)
            .map(Layer::Act)
            .ok_or(format!(
                "activation must be one of {}, found {v}",
                ACTIVATIONS.map(|a| a.name()).join(", ")
            ))
    };
    match block {
        Value::Number(_) => Ok(vec![width(block)?]),
        Value::String(_) => Ok(vec![activation(block)?]),
        Value::Object(map) => {
            let mut layers = Vec::new();
            for (key, value) in map {
                match key.as_str() {
                    "width" => layers.insert(0, width(value)?),
                    "activation" => layers.push(activation(value)?),
                    other => {
                        return Err(format!(
                        "`{other}` is not part of a block; a block has a width and an activation"
                    ))
                    }
                }
            }
            Ok(layers)
        }
        other => Err(format!(
            "expected a block like {{width: 8, activation: Tanh}}, found {other}"
        )),
    }
}

fn number(value: &Value, key: &str) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or(format!("{key}: expected a number, found {value}"))
}

fn count(value: &Value, key: &str) -> Result<usize, String> {
    value
        .as_u64()
        .filter(|&v| v >= 1)
        .map(|v| v as usize)
        .ok_or(format!(
            "{key}: expected a whole number of at least 1, found {value}"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_configuration_of_spaces_mlp_yaml() {
        let c = json!({"hidden": [{"width": 8, "activation": "Tanh"}, {"width": 16, "activation": "ReLU"}],
                       "learning_rate": 0.003, "batch_size": 64, "dropout": 0.25});
        let (spec, s) = interpret(&c, 2, 2, &ChildSettings::default()).unwrap();
        assert_eq!(spec.linear_shapes(), vec![(2, 8), (8, 16), (16, 2)]);
        assert_eq!(spec.layers[1], Layer::Act(Activation::Tanh));
        assert_eq!(
            (s.lr, s.batch_size, s.dropout, s.max_epochs),
            (0.003, 64, 0.25, ChildSettings::default().max_epochs)
        );
    }

    #[test]
    fn mistakes_are_named() {
        let d = ChildSettings::default();
        assert!(interpret(&json!({"optimizer": "sgd"}), 2, 2, &d)
            .unwrap_err()
            .contains("`optimizer`"));
        assert!(interpret(&json!({"hidden": [{"width": 0}]}), 2, 2, &d)
            .unwrap_err()
            .contains("hidden[0]: width"));
        assert!(interpret(&json!({"hidden": ["Softmax"]}), 2, 2, &d)
            .unwrap_err()
            .contains("activation must be"));
        assert!(interpret(&json!({"dropout": 1.0}), 2, 2, &d)
            .unwrap_err()
            .contains("dropout"));
        assert!(interpret(&json!([1, 2]), 2, 2, &d).is_err());
    }

    fn checked(text: &str) -> Result<(), String> {
        let space = super::super::parse_space(text).map_err(|e| e.0)?;
        check_space(&space, 2, 2, &ChildSettings::default(), 0)
    }

    #[test]
    fn the_shipped_spaces_pass_the_check() {
        for name in ["mlp.yaml", "wide.yaml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("spaces")
                .join(name);
            assert_eq!(
                checked(&std::fs::read_to_string(path).unwrap()),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn a_space_of_conv1d_residual_children_is_named_as_such_in_one_short_line() {
        // The shape of hannah's config_unas.yaml parametrization: residual blocks of conv1d
        // layers under `model:`.
        let unas = "model:\n  conv:\n    min: 2\n    max: 6\n    choices:\n      - target: residual\n        stride: 1\n        blocks:\n          min: 1\n          max: 4\n          choices:\n            - target: conv1d\n              kernel_size: [1, 3, 5, 7, 9]\n              act: [false, true]\n              norm: true\n              out_channels: [8, 16, 24, 32, 40, 48, 56, 64]\n";
        let e = checked(unas).unwrap_err();
        assert!(
            e.starts_with("this space describes conv1d/residual children (`model` with "),
            "{e}"
        );
        assert!(
            e.contains("kernel_size") && e.contains("cannot train"),
            "{e}"
        );
        assert!(
            e.contains("hidden") && e.contains("learning_rate") && e.contains("patience"),
            "{e}"
        );
        assert!(
            !e.contains('"') && !e.contains("{\"") && e.len() < 400,
            "no JSON dump: {e}"
        );
        // Another unknown key gets the plain message.
        let e = checked("optimizer: [sgd, adam]").unwrap_err();
        assert!(
            e.starts_with("`optimizer` is not a setting of the MLP child"),
            "{e}"
        );
    }

    #[test]
    fn every_value_a_space_allows_is_checked_against_the_limits() {
        // An interval's largest value, however rarely sampled, is checked.
        let e = checked(
            "hidden: {min: 1, max: 2, choices: [{width: {lower: 1, upper: 100000, int: true}}]}",
        )
        .unwrap_err();
        assert!(e.contains("CHILD_WIDTH_MAX") && e.contains("99999"), "{e}");
        let e = checked(
            "hidden: {min: 1, max: 9, choices: [{width: {lower: 1, upper: 4000, int: true}}]}",
        )
        .unwrap_err();
        assert!(e.contains("CHILD_WEIGHTS_MAX"), "{e}");
        let e = checked("learning_rate: {lower: 0.001, upper: 100}").unwrap_err();
        assert!(
            e.contains("learning_rate") && e.contains("CHILD_LR_MAX"),
            "{e}"
        );
        let e = checked("dropout: [0.0, 1.0]").unwrap_err();
        assert!(e.starts_with("dropout must be"), "{e}");
        assert_eq!(checked("dropout: {lower: 0.0, upper: 1.0}"), Ok(())); // upper is exclusive
        let e = checked("max_epochs: {lower: 1, upper: 1000000000, int: true}").unwrap_err();
        assert!(e.contains("CHILD_MAX_EPOCHS_MAX"), "{e}");
        let e = checked("batch_size: {lower: 1, upper: 64}").unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        // A space of one configuration, or of constants only, is fine.
        assert_eq!(checked("batch_size: [16]"), Ok(()));
        assert_eq!(checked("batch_size: 16"), Ok(()));
    }
}
