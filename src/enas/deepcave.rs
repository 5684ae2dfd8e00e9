//! An ENAS search's controller samples as a DeepCAVE run folder (the automl DeepCAVE project's
//! layout, `crate::output::deepcave`): the architecture space in ConfigSpace's JSON, one
//! categorical hyperparameter per layer's operation (`layer1_op`, … by Katib operation id, the
//! operations' labels in its `meta`) and one per skip flag (`layer3_skip1`: a connection from
//! layer 1 into layer 3, layer 0 being the input); each sample a trial, its objective the dev
//! accuracy it was rewarded with, its budget the epoch of shared-weight training it was scored
//! after (the fidelity grows with the epochs).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::search::Row;
use super::space::{Arch, Space};
use crate::config::CL_CONFIGSPACE_FORMAT_VERSION;
use crate::output::deepcave::{write_searches, Objective, Optimize, Status, Trial};

/// The name of a layer's operation hyperparameter (`layer` counted from 1, as Katib's layers
/// after the input).
fn op_name(layer: usize) -> String {
    format!("layer{layer}_op")
}

/// The name of the skip flag from layer `from` (0 = the input) into `layer`.
fn skip_name(layer: usize, from: usize) -> String {
    format!("layer{layer}_skip{from}")
}

/// The space of `space`'s architectures in ConfigSpace's JSON layout. Katib's row `i` holds
/// `i` flags; flag `k` of row `i` joins layer `k` into layer `i + 1`; the flag of the layer
/// just before always reads 0 or 1 but changes nothing (that layer feeds it anyway), and is
/// kept so a configuration is exactly Katib's row.
pub fn configspace_json(space: &Space) -> Value {
    let ids: Vec<String> = (0..space.num_operations()).map(|i| i.to_string()).collect();
    let labels: Vec<String> = space.operations.iter().map(|o| o.label()).collect();
    let mut hyperparameters = Vec::new();
    for i in 0..space.num_layers {
        hyperparameters.push(json!({
            "name": op_name(i + 1),
            "type": "categorical",
            "choices": ids,
            "weights": null,
            "default_value": ids[0],
            "meta": {"labels": labels},
        }));
        for k in 0..i {
            hyperparameters.push(json!({
                "name": skip_name(i + 1, k),
                "type": "categorical",
                "choices": ["0", "1"],
                "weights": null,
                "default_value": "0",
                "meta": null,
            }));
        }
    }
    json!({
        "name": "enas-macro",
        "hyperparameters": hyperparameters,
        "conditions": [],
        "forbiddens": [],
        "format_version": CL_CONFIGSPACE_FORMAT_VERSION,
    })
}

/// An architecture as a configuration of `configspace_json`.
pub fn arch_to_config(arch: &Arch) -> Map<String, Value> {
    let mut config = Map::new();
    for (i, row) in arch.iter().enumerate() {
        config.insert(op_name(i + 1), json!(row[0].to_string()));
        for (k, flag) in row[1..].iter().enumerate() {
            config.insert(skip_name(i + 1, k), json!(flag.to_string()));
        }
    }
    config
}

/// Writes `dir/NAME/` (NAME `enas-seedN`, or `enas-no-sharing-seedN`) from the search's rows;
/// returns the folder.
pub fn write_deepcave(
    dir: &Path,
    space: &Space,
    rows: &[Row],
    seed: u64,
    sharing: bool,
) -> Result<PathBuf> {
    let origin = if sharing {
        "enas-controller"
    } else {
        "enas-controller-no-sharing"
    };
    let mut trials = Vec::with_capacity(rows.len());
    for r in rows {
        let arch: Arch = serde_json::from_str(&r.architecture)?;
        let mut additional = Map::new();
        additional.insert("architecture".into(), json!(r.architecture));
        additional.insert("reward".into(), json!(r.reward));
        additional.insert("step".into(), json!(r.step));
        trials.push(Trial {
            config: arch_to_config(&arch),
            budget: r.epoch as f64,
            seed: seed as i64,
            costs: vec![r.accuracy.is_finite().then_some(r.accuracy)],
            start_time: r.seconds,
            end_time: r.seconds,
            status: if r.accuracy.is_finite() {
                Status::Success
            } else {
                Status::Crashed
            },
            origin: Some(origin.to_string()),
            additional,
        });
    }
    let objectives = [Objective {
        name: "dev_accuracy".into(),
        lower: Some(0.0),
        upper: Some(1.0),
        optimize: Optimize::Upper,
    }];
    let mut meta = Map::new();
    meta.insert("command".into(), json!("enas"));
    meta.insert("parameter_sharing".into(), json!(sharing));
    let name = if sharing {
        format!("enas-seed{seed}")
    } else {
        format!("enas-no-sharing-seed{seed}")
    };
    let written = write_searches(
        dir,
        &configspace_json(space),
        &objectives,
        &[],
        &meta,
        &[(name, trials)],
    )?;
    Ok(written
        .into_iter()
        .next()
        .unwrap_or_else(|| dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_is_katibs_rows_by_name() {
        let arch: Arch = vec![vec![2], vec![0, 1], vec![5, 0, 1]];
        let config = arch_to_config(&arch);
        let want = json!({"layer1_op": "2", "layer2_op": "0", "layer2_skip0": "1",
            "layer3_op": "5", "layer3_skip0": "0", "layer3_skip1": "1"});
        assert_eq!(Value::Object(config), want);
    }
}
