//! How a choice-list configuration becomes a child to train: `hidden` blocks of a width and an
//! activation, and the training settings `learning_rate`, `batch_size`, `dropout`,
//! `max_epochs`, `patience` (the keys of `spaces/mlp.yaml`).

use serde_json::Value;

use crate::config::ChildSettings;
use crate::mlp::{Activation, Layer, MlpSpec, ACTIVATIONS};

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
            "learning_rate" => settings.lr = number(value, key, |v| v > 0.0 && v.is_finite())?,
            "dropout" => settings.dropout = number(value, key, |v| (0.0..1.0).contains(&v))?,
            "batch_size" => settings.batch_size = count(value, key)?,
            "max_epochs" => settings.max_epochs = count(value, key)?,
            "patience" => settings.patience = count(value, key)?,
            other => {
                return Err(format!(
                    "`{other}` is not a setting of the MLP child; a space may name {}",
                    KEYS.join(", ")
                ));
            }
        }
    }
    Ok((
        MlpSpec {
            n_in,
            n_out,
            layers,
        },
        settings,
    ))
}

/// A block: `{width, activation}` (either may be absent), a width alone, or an activation alone.
fn block_layers(block: &Value) -> Result<Vec<Layer>, String> {
    let width = |v: &Value| {
        v.as_u64()
            .filter(|&w| w >= 1)
            .map(|w| Layer::Linear(w as usize))
            .ok_or(format!(
                "width must be a whole number of at least 1, found {v}"
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

fn number(value: &Value, key: &str, ok: impl Fn(f64) -> bool) -> Result<f64, String> {
    value
        .as_f64()
        .filter(|&v| ok(v))
        .ok_or(format!("{key}: {value} is out of range"))
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
}
