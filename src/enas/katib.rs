//! Reading Kubeflow Katib's ENAS input: a whole Experiment YAML (`spec.nasConfig`,
//! `spec.algorithm.algorithmSettings`, `spec.trialTemplate`) or a bare `nasConfig`, checked as
//! Katib's suggestion service checks it and more; every error names the field and says what
//! to write instead. Operation ids come from `space::enumerate`.

use std::path::Path;

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};

use super::config::{EnasSettings, LAYERS_MAX, OPERATIONS_MAX, SPACE_BYTES_MAX};
use super::space::{enumerate, OperationSpec, ParamSpec, ParamValue, Space, OPERATION_TYPES};
use crate::error::UsageError;

/// What a Katib file gave: the space, and the algorithm settings an Experiment named.
#[derive(Clone, Debug)]
pub struct KatibInput {
    pub space: Space,
    /// `(name, value)` of `spec.algorithm.algorithmSettings`, in file order.
    pub algorithm_settings: Vec<(String, String)>,
    /// The whole document as JSON (for the deploy tests).
    pub document: Value,
}

/// Reads a YAML file as JSON, refusing files above SPACE_BYTES_MAX.
pub fn read_yaml(path: &Path) -> Result<Value, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError::new(format!("cannot read {}: {e}", path.display())))?;
    parse_yaml(&text).map_err(|e| UsageError::new(format!("{}: {e}", path.display())))
}

/// Parses one YAML document into JSON.
pub fn parse_yaml(text: &str) -> Result<Value, UsageError> {
    if text.len() > SPACE_BYTES_MAX {
        return Err(UsageError::new(format!(
            "the file has {} bytes, above the limit of {SPACE_BYTES_MAX} (SPACE_BYTES_MAX in src/enas/config.rs)",
            text.len()
        )));
    }
    let docs = Yaml::load_from_str(text).map_err(|e| {
        UsageError::new(format!(
            "not valid YAML: {} (line {})",
            e.info(),
            e.marker().line()
        ))
    })?;
    let docs: Vec<&Yaml> = docs.iter().filter(|d| !d.is_null()).collect();
    match docs.as_slice() {
        [doc] => to_json(doc, 0),
        [] => Err(UsageError::new("the file is empty; it needs a nasConfig")),
        _ => Err(UsageError::new(format!(
            "found {} YAML documents (separated by `---`); keep one",
            docs.len()
        ))),
    }
}

fn to_json(y: &Yaml, depth: usize) -> Result<Value, UsageError> {
    if depth > 64 {
        return Err(UsageError::new("the YAML nests more than 64 levels deep"));
    }
    Ok(match y {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => {
            serde_json::Number::from_f64(f.into_inner()).map_or(Value::Null, Value::Number)
        }
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter() {
                let key = match k {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    Yaml::Value(Scalar::Integer(i)) => i.to_string(),
                    _ => return Err(UsageError::new("mapping keys must be names")),
                };
                out.insert(key, to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        Yaml::Representation(s, _, _) => Value::String(s.to_string()),
        _ => {
            return Err(UsageError::new(
                "a YAML tag or alias could not be read; write the value out",
            ))
        }
    })
}

fn fail(field: &str, message: impl std::fmt::Display) -> UsageError {
    UsageError::new(format!("{field}: {message}"))
}

/// A scalar as text (Katib keeps every value of a feasible space as a string).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int(v: Option<&Value>, field: &str) -> Result<i64, UsageError> {
    let v = v.ok_or_else(|| fail(field, "is missing"))?;
    text(v)
        .and_then(|t| t.trim().parse::<i64>().ok())
        .ok_or_else(|| fail(field, format!("must be a whole number, found {v}")))
}

/// Reads a Katib Experiment (`spec.nasConfig`) or a bare nasConfig (a mapping with
/// `graphConfig` and `operations`, optionally under a `nasConfig` key).
pub fn read(doc: &Value, experiment: bool) -> Result<KatibInput, UsageError> {
    let (nas, prefix) = if experiment {
        let spec = doc.get("spec").ok_or_else(|| {
            UsageError::new("the Experiment has no `spec`; a Katib Experiment holds spec.nasConfig")
        })?;
        let nas = spec.get("nasConfig").ok_or_else(|| {
            UsageError::new(
                "spec.nasConfig is missing: this Experiment declares no ENAS search space (graphConfig and operations)",
            )
        })?;
        (nas, "spec.nasConfig")
    } else if let Some(n) = doc.get("nasConfig") {
        (n, "nasConfig")
    } else if doc.get("graphConfig").is_some() || doc.get("operations").is_some() {
        (doc, "nasConfig")
    } else {
        return Err(UsageError::new(
            "no nasConfig: the file needs `graphConfig` (numLayers, inputSizes, outputSizes) and `operations`, or a `nasConfig` holding them",
        ));
    };
    let space = nas_config(nas, prefix)?;
    let mut algorithm_settings = Vec::new();
    if experiment {
        if let Some(list) = doc.pointer("/spec/algorithm/algorithmSettings") {
            let items = list.as_array().ok_or_else(|| {
                fail(
                    "spec.algorithm.algorithmSettings",
                    "must be a list of {name, value}",
                )
            })?;
            for (i, item) in items.iter().enumerate() {
                let field = format!("spec.algorithm.algorithmSettings[{i}]");
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(&field, "needs a `name`"))?;
                let value = item
                    .get("value")
                    .and_then(text)
                    .ok_or_else(|| fail(&field, "needs a `value`"))?;
                algorithm_settings.push((name.to_string(), value));
            }
        }
        if let Some(name) = doc
            .pointer("/spec/algorithm/algorithmName")
            .and_then(Value::as_str)
        {
            if name != "enas" {
                return Err(fail(
                    "spec.algorithm.algorithmName",
                    format!(
                        "is `{name}`; archsearch enas reads Experiments of the `enas` algorithm"
                    ),
                ));
            }
        }
    }
    Ok(KatibInput {
        space,
        algorithm_settings,
        document: doc.clone(),
    })
}

/// Applies an Experiment's algorithm settings (Katib's names; `None` keeps the default, as
/// Katib's optional settings read it off).
pub fn apply_settings(
    settings: &mut EnasSettings,
    given: &[(String, String)],
) -> Result<(), UsageError> {
    for (name, value) in given {
        if value == "None" {
            continue;
        }
        if !name.starts_with("controller_") {
            return Err(fail(
                "spec.algorithm.algorithmSettings",
                format!("unknown ENAS setting `{name}`; Katib's are the controller_* settings"),
            ));
        }
        settings
            .set(&format!("{name}={value}"))
            .map_err(|m| fail("spec.algorithm.algorithmSettings", m))?;
    }
    Ok(())
}

fn nas_config(nas: &Value, prefix: &str) -> Result<Space, UsageError> {
    let graph = nas.get("graphConfig").ok_or_else(|| {
        fail(
            prefix,
            "has no graphConfig; give numLayers, inputSizes and outputSizes",
        )
    })?;
    let gfield = format!("{prefix}.graphConfig");
    let num_layers = int(graph.get("numLayers"), &format!("{gfield}.numLayers"))?;
    if num_layers < 1 || num_layers as usize > LAYERS_MAX {
        return Err(fail(
            &format!("{gfield}.numLayers"),
            format!("must be from 1 to {LAYERS_MAX} (LAYERS_MAX in src/enas/config.rs), found {num_layers}"),
        ));
    }
    let sizes = |name: &str| -> Result<Vec<i64>, UsageError> {
        let field = format!("{gfield}.{name}");
        let list = graph
            .get(name)
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| fail(&field, "must be a non-empty list of whole numbers"))?;
        list.iter()
            .enumerate()
            .map(|(i, v)| {
                let n = int(Some(v), &format!("{field}[{i}]"))?;
                if n < 1 {
                    return Err(fail(&format!("{field}[{i}]"), "must be at least 1"));
                }
                Ok(n)
            })
            .collect()
    };
    let input_sizes = sizes("inputSizes")?;
    if input_sizes.len() != 3 {
        return Err(fail(
            &format!("{gfield}.inputSizes"),
            format!(
                "must be [height, width, channels], found {} numbers",
                input_sizes.len()
            ),
        ));
    }
    let output_sizes = sizes("outputSizes")?;
    let ofield = format!("{prefix}.operations");
    let ops = nas
        .get("operations")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| fail(&ofield, "must be a non-empty list of operations"))?;
    let mut specs = Vec::new();
    let mut count: usize = 0;
    for (i, op) in ops.iter().enumerate() {
        let field = format!("{ofield}[{i}]");
        let op_type = op
            .get("operationType")
            .and_then(Value::as_str)
            .ok_or_else(|| fail(&format!("{field}.operationType"), "is missing"))?;
        if !OPERATION_TYPES.contains(&op_type) {
            return Err(fail(
                &format!("{field}.operationType"),
                format!("`{op_type}` is not one of {}", OPERATION_TYPES.join(", ")),
            ));
        }
        let params = op
            .get("parameters")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| fail(&format!("{field}.parameters"), "must be a non-empty list"))?;
        let mut pspecs = Vec::new();
        for (j, p) in params.iter().enumerate() {
            let pfield = format!("{field}.parameters[{j}]");
            pspecs.push(param(p, &pfield)?);
        }
        let n: usize = pspecs.iter().map(|p| p.values.len()).product();
        count = count.saturating_add(n);
        if count > OPERATIONS_MAX {
            return Err(fail(
                &ofield,
                format!("enumerate more than {OPERATIONS_MAX} operation ids (OPERATIONS_MAX in src/enas/config.rs); shorten the lists"),
            ));
        }
        specs.push(OperationSpec {
            op_type: op_type.to_string(),
            params: pspecs,
        });
    }
    let operations = enumerate(&specs);
    let space = Space {
        num_layers: num_layers as usize,
        input_sizes,
        output_sizes,
        operations,
    };
    for op in &space.operations {
        super::ops::OpKind::from_operation(op).map_err(|m| {
            fail(
                &ofield,
                format!("operation id {} ({}): {m}", op.id, op.op_type),
            )
        })?;
    }
    Ok(space)
}

fn param(p: &Value, field: &str) -> Result<ParamSpec, UsageError> {
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| fail(&format!("{field}.name"), "is missing"))?;
    let kind = p
        .get("parameterType")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            fail(
                &format!("{field}.parameterType"),
                "is missing (categorical or int)",
            )
        })?;
    let space = p
        .get("feasibleSpace")
        .ok_or_else(|| fail(&format!("{field}.feasibleSpace"), "is missing"))?;
    let values = match kind {
        "categorical" => {
            let lfield = format!("{field}.feasibleSpace.list");
            let list = space
                .get("list")
                .and_then(Value::as_array)
                .ok_or_else(|| fail(&lfield, "is missing; give the values as a list"))?;
            if list.is_empty() {
                return Err(fail(&lfield, "is empty; give at least one value"));
            }
            list.iter()
                .map(|v| {
                    text(v)
                        .map(ParamValue::Str)
                        .ok_or_else(|| fail(&lfield, format!("values must be scalars, found {v}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        "int" => {
            let sfield = format!("{field}.feasibleSpace");
            let min = int(space.get("min"), &format!("{sfield}.min"))?;
            let max = int(space.get("max"), &format!("{sfield}.max"))?;
            let step = match space.get("step") {
                None => 1,
                Some(v) => int(Some(v), &format!("{sfield}.step"))?,
            };
            if min > max {
                return Err(fail(&sfield, format!("min {min} is above max {max}")));
            }
            if step < 1 {
                return Err(fail(&format!("{sfield}.step"), format!("must be at least 1, found {step}")));
            }
            if (max - min) / step >= OPERATIONS_MAX as i64 {
                return Err(fail(&sfield, format!("the range has more than {OPERATIONS_MAX} values")));
            }
            (min..=max).step_by(step as usize).map(ParamValue::Int).collect()
        }
        other => {
            return Err(fail(
                &format!("{field}.parameterType"),
                format!("`{other}` is not supported for ENAS operations; use categorical or int (Katib's ENAS trial reads every parameter as a whole number or a name)"),
            ))
        }
    };
    Ok(ParamSpec {
        name: name.to_string(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's example space: convolution then reduction, as in Katib's documentation.
    const SEED_SPACE: &str = r#"
nasConfig:
  graphConfig:
    numLayers: 8
    inputSizes: [32, 32, 3]
    outputSizes: [10]
  operations:
    - operationType: convolution
      parameters:
        - name: filter_size
          parameterType: categorical
          feasibleSpace: {list: ["3", "5", "7"]}
        - name: num_filter
          parameterType: categorical
          feasibleSpace: {list: ["32", "48", "64", "96", "128"]}
        - name: stride
          parameterType: categorical
          feasibleSpace: {list: ["1", "2"]}
    - operationType: reduction
      parameters:
        - name: reduction_type
          parameterType: categorical
          feasibleSpace: {list: [max_pooling, avg_pooling]}
        - name: pool_size
          parameterType: int
          feasibleSpace: {min: "2", max: "3", step: "1"}
"#;

    /// The seed's example architecture and nn_config (Katib's documentation).
    pub const SEED_ARCH: &str = "[[27], [29, 0], [22, 1, 0], [13, 0, 0, 0], [26, 1, 1, 0, 0], [30, 1, 0, 1, 0, 0], [11, 0, 1, 1, 0, 1, 1], [9, 1, 0, 0, 1, 0, 0, 0]]";

    fn seed_space() -> Space {
        read(&parse_yaml(SEED_SPACE).unwrap(), false).unwrap().space
    }

    fn conv(
        id: usize,
        f: &str,
        n: &str,
        s: &str,
    ) -> (usize, &'static str, Vec<(String, ParamValue)>) {
        let p = |k: &str, v: &str| (k.to_string(), ParamValue::Str(v.to_string()));
        (
            id,
            "convolution",
            vec![p("filter_size", f), p("num_filter", n), p("stride", s)],
        )
    }

    #[test]
    fn operation_ids_are_the_seeds() {
        let space = seed_space();
        assert_eq!(space.num_operations(), 3 * 5 * 2 + 2 * 2);
        // Every id the seed's nn_config shows, with its parameters.
        for (id, ty, params) in [
            conv(27, "7", "96", "2"),
            conv(29, "7", "128", "2"),
            conv(22, "7", "48", "1"),
            conv(13, "5", "48", "2"),
            conv(26, "7", "96", "1"),
            conv(11, "5", "32", "2"),
            conv(9, "3", "128", "2"),
        ] {
            let op = &space.operations[id];
            assert_eq!((op.id, op.op_type.as_str(), &op.params), (id, ty, &params));
        }
        let pool = &space.operations[30];
        assert_eq!(pool.op_type, "reduction");
        assert_eq!(
            pool.params,
            vec![
                (
                    "reduction_type".to_string(),
                    ParamValue::Str("max_pooling".into())
                ),
                ("pool_size".to_string(), ParamValue::Int(2)),
            ]
        );
        assert_eq!(
            space.operations[33].params[0].1,
            ParamValue::Str("avg_pooling".into())
        );
        assert_eq!(space.operations[33].params[1].1, ParamValue::Int(3));
    }

    #[test]
    fn katibs_cpu_example_enumerates_106_operations() {
        // Katib's enas-cpu.yaml declares conv (3x5x2), separable (3x5x2x2), depthwise (3x2x2)
        // and reduction (2x2): 30 + 60 + 12 + 4.
        let doc = parse_yaml(include_str!("../../deploy/katib/enas-katib-trials.yaml")).unwrap();
        let input = read(&doc, true).unwrap();
        assert_eq!(input.space.num_operations(), 106);
    }

    #[test]
    fn nn_config_is_katibs_string_for_the_seed_example() {
        let space = seed_space();
        let arch = super::super::space::parse_architecture(SEED_ARCH).unwrap();
        space.check_arch(&arch).unwrap();
        assert_eq!(Space::architecture_json(&arch), SEED_ARCH);
        let nn = space.nn_config_json(&arch);
        let expected = concat!(
            r#"{"num_layers": 8, "input_sizes": [32, 32, 3], "output_sizes": [10], "embedding": {"#,
            r#""27": {"opt_id": 27, "opt_type": "convolution", "opt_params": {"filter_size": "7", "num_filter": "96", "stride": "2"}}, "#,
            r#""29": {"opt_id": 29, "opt_type": "convolution", "opt_params": {"filter_size": "7", "num_filter": "128", "stride": "2"}}, "#,
            r#""22": {"opt_id": 22, "opt_type": "convolution", "opt_params": {"filter_size": "7", "num_filter": "48", "stride": "1"}}, "#,
            r#""13": {"opt_id": 13, "opt_type": "convolution", "opt_params": {"filter_size": "5", "num_filter": "48", "stride": "2"}}, "#,
            r#""26": {"opt_id": 26, "opt_type": "convolution", "opt_params": {"filter_size": "7", "num_filter": "96", "stride": "1"}}, "#,
            r#""30": {"opt_id": 30, "opt_type": "reduction", "opt_params": {"reduction_type": "max_pooling", "pool_size": 2}}, "#,
            r#""11": {"opt_id": 11, "opt_type": "convolution", "opt_params": {"filter_size": "5", "num_filter": "32", "stride": "2"}}, "#,
            r#""9": {"opt_id": 9, "opt_type": "convolution", "opt_params": {"filter_size": "3", "num_filter": "128", "stride": "2"}}}}"#
        );
        assert_eq!(nn, expected);
        // The round trip through the single-quoted form a trial receives.
        let quoted = super::super::space::single_quoted(&nn);
        assert!(!quoted.contains('"'));
        let back = super::super::space::parse_nn_config(&format!("\"{quoted}\"")).unwrap();
        assert_eq!(back.num_layers, 8);
        assert_eq!(back.input_sizes, vec![32, 32, 3]);
        assert_eq!(back.embedding.len(), 8);
        for (id, op) in &back.embedding {
            // JSON objects carry no order: compare the parameters as sets.
            let sorted = |o: &super::super::space::Operation| {
                let mut p = o.params.clone();
                p.sort_by(|a, b| a.0.cmp(&b.0));
                (o.id, o.op_type.clone(), p)
            };
            assert_eq!(sorted(op), sorted(&space.operations[*id]));
        }
        let arch_back = super::super::space::parse_architecture(&format!(
            "'{}'",
            super::super::space::single_quoted(SEED_ARCH)
        ))
        .unwrap();
        assert_eq!(arch_back, arch);
    }

    fn error(yaml: &str) -> String {
        match parse_yaml(yaml).and_then(|d| read(&d, false)) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn bad_spaces_name_the_field() {
        assert!(error("foo: 1").contains("no nasConfig"));
        let with = |ops: &str, layers: &str| {
            format!(
                "graphConfig: {{numLayers: {layers}, inputSizes: [8, 8, 1], outputSizes: [10]}}\noperations:\n{ops}"
            )
        };
        let conv = "  - operationType: convolution\n    parameters:\n      - {name: filter_size, parameterType: categorical, feasibleSpace: {list: [\"3\"]}}\n";
        let e = error(&with(&conv.replace("convolution", "dilated"), "2"));
        assert!(
            e.contains("nasConfig.operations[0].operationType") && e.contains("dilated"),
            "{e}"
        );
        let e = error(&with(&conv.replace("[\"3\"]", "[]"), "2"));
        assert!(
            e.contains("feasibleSpace.list") && e.contains("empty"),
            "{e}"
        );
        let e = error(&with(conv, "0"));
        assert!(e.contains("numLayers"), "{e}");
        let range = "  - operationType: reduction\n    parameters:\n      - {name: pool_size, parameterType: int, feasibleSpace: {min: \"3\", max: \"2\"}}\n";
        let e = error(&with(range, "2"));
        assert!(
            e.contains("operations[0].parameters[0].feasibleSpace") && e.contains("above max"),
            "{e}"
        );
        let e = match parse_yaml("spec: {algorithm: {algorithmName: enas}}")
            .and_then(|d| read(&d, true))
        {
            Ok(_) => panic!("accepted"),
            Err(e) => e.0,
        };
        assert!(e.contains("spec.nasConfig"), "{e}");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    #[test]
    fn the_digits_space_has_the_papers_six_operations() {
        let doc = parse_yaml(include_str!("../../spaces/enas-digits.yaml")).unwrap();
        let space = read(&doc, false).unwrap().space;
        assert_eq!(space.num_operations(), 6);
        assert_eq!(space.input_sizes, vec![8, 8, 1]);
        let labels: Vec<String> = space.operations.iter().map(|o| o.label()).collect();
        assert_eq!(
            labels,
            [
                "conv 3x3 32",
                "conv 5x5 32",
                "sep 3x3 32",
                "sep 5x5 32",
                "max_pool 3",
                "avg_pool 3"
            ]
        );
    }
}
