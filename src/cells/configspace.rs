//! The NAS-Bench-201 cell as a configuration: one categorical hyperparameter per edge
//! (`1<-0` … `3<-2`, the five operations as choices), the two conversions, and the space in
//! ConfigSpace's JSON layout (the automl ConfigSpace project's `read_and_write.json` format),
//! so ConfigSpace, SMAC and DeepCAVE can read it.

use super::cell::{Cell, Op, EDGE_LIST};
use super::config::{DEFAULT_OP, EDGES, JSON_FORMAT_VERSION, SPACE_NAME};
use anyhow::Result;
use serde_json::{json, Map, Value};

/// Hyperparameter name of edge `to <- from`.
pub fn edge_name(to: usize, from: usize) -> String {
    format!("{to}<-{from}")
}

/// The cell as a configuration: `{"1<-0": "nor_conv_3x3", …}`.
pub fn cell_to_config(cell: &Cell) -> Value {
    let mut map = Map::new();
    for (e, &(to, from)) in EDGE_LIST.iter().enumerate() {
        map.insert(
            edge_name(to, from),
            Value::String(cell.ops[e].name().to_string()),
        );
    }
    Value::Object(map)
}

/// The cell of a configuration; a missing, unknown or non-string entry is a usage error.
pub fn config_to_cell(config: &Value) -> Result<Cell> {
    let Some(map) = config.as_object() else {
        crate::usage_bail!("a cell configuration must be a JSON object with the keys 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; got `{config}`");
    };
    let mut ops = [Op::None; EDGES];
    for (e, &(to, from)) in EDGE_LIST.iter().enumerate() {
        let name = edge_name(to, from);
        let Some(value) = map.get(&name) else {
            crate::usage_bail!(
                "cell configuration `{config}` has no `{name}`; give every edge an operation"
            );
        };
        let Some(op) = value.as_str().and_then(Op::from_name) else {
            crate::usage_bail!(
                "`{name}` = {value} in cell configuration `{config}` is not an operation; use one of {}",
                Op::ALL.map(|o| o.name()).join(", ")
            );
        };
        ops[e] = op;
    }
    if let Some(extra) = map
        .keys()
        .find(|k| !EDGE_LIST.iter().any(|&(t, f)| edge_name(t, f) == **k))
    {
        crate::usage_bail!("cell configuration `{config}` has an unknown key `{extra}`; the keys are the edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2");
    }
    Ok(Cell { ops })
}

/// The cell space in ConfigSpace's JSON layout (what `configspace.json` holds), as ConfigSpace
/// 1.2's writer lays it out (`default_value`, `meta`, `format_version`); ConfigSpace 1.2 reads it
/// back without a warning (checked by hand, see the README).
pub fn configspace_json() -> Value {
    let choices: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
    let hyperparameters: Vec<Value> = EDGE_LIST
        .iter()
        .map(|&(to, from)| {
            json!({
                "name": edge_name(to, from),
                "type": "categorical",
                "choices": choices,
                "weights": null,
                "default_value": DEFAULT_OP,
                "meta": null,
            })
        })
        .collect();
    json!({
        "name": SPACE_NAME,
        "hyperparameters": hyperparameters,
        "conditions": [],
        "forbiddens": [],
        "format_version": JSON_FORMAT_VERSION,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trip_over_all_cells() {
        let mut n = 0;
        for cell in Cell::all() {
            let config = cell_to_config(&cell);
            assert_eq!(config.as_object().unwrap().len(), 6);
            assert_eq!(config_to_cell(&config).unwrap(), cell);
            n += 1;
        }
        assert_eq!(n, 15_625);
    }

    #[test]
    fn hand_made_config() {
        let config = json!({"1<-0": "nor_conv_3x3", "2<-0": "none", "2<-1": "skip_connect",
            "3<-0": "avg_pool_3x3", "3<-1": "nor_conv_1x1", "3<-2": "nor_conv_3x3"});
        let cell = config_to_cell(&config).unwrap();
        assert_eq!(
            cell.to_string(),
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"
        );
        assert_eq!(cell_to_config(&cell), config);
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let mut missing = cell_to_config(&Cell::from_index(0).unwrap());
        missing.as_object_mut().unwrap().remove("3<-1");
        assert!(config_to_cell(&missing)
            .unwrap_err()
            .to_string()
            .contains("no `3<-1`"));
        let mut bad = cell_to_config(&Cell::from_index(0).unwrap());
        bad["2<-0"] = json!("conv5x5");
        assert!(config_to_cell(&bad)
            .unwrap_err()
            .to_string()
            .contains("`2<-0`"));
        let mut extra = cell_to_config(&Cell::from_index(0).unwrap());
        extra["4<-0"] = json!("none");
        assert!(config_to_cell(&extra)
            .unwrap_err()
            .to_string()
            .contains("`4<-0`"));
        assert!(config_to_cell(&json!([1])).is_err());
    }

    #[test]
    fn configspace_json_matches_hand_written_document() {
        let ops = r#"["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]"#;
        let hp = |name: &str| {
            format!(
                r#"{{"name": "{name}", "type": "categorical", "choices": {ops}, "weights": null, "default_value": "none", "meta": null}}"#
            )
        };
        let expected = format!(
            r#"{{"name": "nas-bench-201-cell", "hyperparameters": [{}, {}, {}, {}, {}, {}],
                "conditions": [], "forbiddens": [], "format_version": 0.4}}"#,
            hp("1<-0"),
            hp("2<-0"),
            hp("2<-1"),
            hp("3<-0"),
            hp("3<-1"),
            hp("3<-2")
        );
        let expected: Value = serde_json::from_str(&expected).unwrap();
        assert_eq!(configspace_json(), expected);
    }
}
