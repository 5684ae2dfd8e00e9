//! The ENAS macro search space as data, in Kubeflow Katib's terms: operations enumerated into
//! ids exactly as Katib's ENAS suggestion service does (for each operation in file order, every
//! combination of its parameters' values, the last parameter varying fastest), architectures as
//! Katib's rows (`[[op], [op, skip0], ...]`), and the `architecture` and `nn_config` JSON
//! strings Katib hands to a trial, written as Python's `json.dumps` writes them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::UsageError;

/// A value of one operation parameter: categorical values stay strings, int ranges are
/// numbers (as Katib's service keeps them, so they print as `"3"` and `3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    Str(String),
    Int(i64),
}

impl ParamValue {
    /// The value as a whole number, as Katib's trial reads it (`int(value)`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            ParamValue::Int(i) => Some(*i),
            ParamValue::Str(s) => s.trim().parse().ok(),
        }
    }

    pub fn as_str(&self) -> String {
        match self {
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Str(s) => s.clone(),
        }
    }

    fn py(&self) -> Py {
        match self {
            ParamValue::Int(i) => Py::Int(*i),
            ParamValue::Str(s) => Py::Str(s.clone()),
        }
    }
}

/// The four operation types of Katib's ENAS.
pub const OPERATION_TYPES: [&str; 4] = [
    "convolution",
    "separable_convolution",
    "depthwise_convolution",
    "reduction",
];

/// One enumerated operation: its id, Katib's type name and its parameters in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub id: usize,
    pub op_type: String,
    pub params: Vec<(String, ParamValue)>,
}

impl Operation {
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A short label such as `conv 3x3 32` or `max_pool 3`, for plots and progress.
    pub fn label(&self) -> String {
        let get = |n: &str| self.param(n).map(|v| v.as_str()).unwrap_or_default();
        match self.op_type.as_str() {
            "convolution" => format!("conv {0}x{0} {1}", get("filter_size"), get("num_filter")),
            "separable_convolution" => {
                format!("sep {0}x{0} {1}", get("filter_size"), get("num_filter"))
            }
            "depthwise_convolution" => format!("dw {0}x{0}", get("filter_size")),
            _ => format!(
                "{} {}",
                get("reduction_type").replace("_pooling", "_pool"),
                get("pool_size")
            ),
        }
    }

    fn py(&self) -> Py {
        Py::Map(vec![
            ("opt_id".into(), Py::Int(self.id as i64)),
            ("opt_type".into(), Py::Str(self.op_type.clone())),
            (
                "opt_params".into(),
                Py::Map(
                    self.params
                        .iter()
                        .map(|(k, v)| (k.clone(), v.py()))
                        .collect(),
                ),
            ),
        ])
    }
}

/// A declared parameter of an operation: its name and its values (a categorical list or an
/// int range already expanded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub values: Vec<ParamValue>,
}

/// A declared operation: its type and parameters, before enumeration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationSpec {
    pub op_type: String,
    pub params: Vec<ParamSpec>,
}

/// Every combination of the parameters' values, numbered from 0, the last parameter
/// varying fastest (Python's `itertools.product` order).
pub fn enumerate(specs: &[OperationSpec]) -> Vec<Operation> {
    let mut out = Vec::new();
    for spec in specs {
        let sizes: Vec<usize> = spec.params.iter().map(|p| p.values.len()).collect();
        let total: usize = sizes.iter().product();
        for k in 0..total {
            // Decode k in the mixed radix of the sizes, the last parameter fastest.
            let mut rest = k;
            let mut index = vec![0usize; sizes.len()];
            for d in (0..sizes.len()).rev() {
                index[d] = rest % sizes[d];
                rest /= sizes[d];
            }
            let params = spec
                .params
                .iter()
                .zip(&index)
                .map(|(p, &i)| (p.name.clone(), p.values[i].clone()))
                .collect();
            out.push(Operation {
                id: out.len(),
                op_type: spec.op_type.clone(),
                params,
            });
        }
    }
    out
}

/// A search space: Katib's `graphConfig` and the enumerated operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    pub num_layers: usize,
    /// Katib's order: height, width, channels.
    pub input_sizes: Vec<i64>,
    pub output_sizes: Vec<i64>,
    pub operations: Vec<Operation>,
}

/// An architecture in Katib's notation: row `i` is `[op, skip_0, ..., skip_{i-1}]`, `skip_k`
/// a connection from layer `k` (layer 0 = the input) into layer `i + 1`; layer `i` always
/// feeds layer `i + 1`.
pub type Arch = Vec<Vec<i64>>;

impl Space {
    pub fn num_operations(&self) -> usize {
        self.operations.len()
    }

    /// Katib's `architecture` string: `json.dumps` of the rows.
    pub fn architecture_json(arch: &Arch) -> String {
        Py::List(
            arch.iter()
                .map(|row| Py::List(row.iter().map(|&v| Py::Int(v)).collect()))
                .collect(),
        )
        .dumps()
    }

    /// Katib's `nn_config` string: the sizes and the embedding of the ids `arch` uses, in the
    /// order layers first use them, keyed by the id as a string.
    pub fn nn_config_json(&self, arch: &Arch) -> String {
        let mut seen: Vec<usize> = Vec::new();
        for row in arch {
            let id = row[0] as usize;
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        let ints = |v: &[i64]| Py::List(v.iter().map(|&x| Py::Int(x)).collect());
        Py::Map(vec![
            ("num_layers".into(), Py::Int(self.num_layers as i64)),
            ("input_sizes".into(), ints(&self.input_sizes)),
            ("output_sizes".into(), ints(&self.output_sizes)),
            (
                "embedding".into(),
                Py::Map(
                    seen.iter()
                        .map(|&id| (id.to_string(), self.operations[id].py()))
                        .collect(),
                ),
            ),
        ])
        .dumps()
    }

    /// Checks that `arch` is an architecture of this space; the message says what is wrong.
    pub fn check_arch(&self, arch: &Arch) -> Result<(), String> {
        check_rows(arch, self.num_layers, |id| id < self.operations.len())
    }
}

/// Katib's rows: `n` rows, row `i` of `i + 1` integers, a known op id then 0/1 flags.
pub fn check_rows(arch: &Arch, n: usize, known: impl Fn(usize) -> bool) -> Result<(), String> {
    if arch.len() != n {
        return Err(format!("it has {} rows, and num_layers is {n}", arch.len()));
    }
    for (i, row) in arch.iter().enumerate() {
        if row.len() != i + 1 {
            return Err(format!(
                "row {i} has {} integers; row i holds i + 1 (the operation id, then one 0/1 flag per earlier layer)",
                row.len()
            ));
        }
        if row[0] < 0 || !known(row[0] as usize) {
            return Err(format!(
                "row {i}: operation id {} is not in the embedding",
                row[0]
            ));
        }
        if let Some(f) = row[1..].iter().find(|&&f| f != 0 && f != 1) {
            return Err(format!("row {i}: skip flags are 0 or 1, found {f}"));
        }
    }
    Ok(())
}

/// The string Katib passes to a trial: `"` replaced by `'`.
pub fn single_quoted(json: &str) -> String {
    json.replace('"', "'")
}

/// What a trial receives back into JSON: one pair of surrounding quotes dropped (a shell may
/// leave them), `'` turned into `"` as Katib's trial does.
pub fn unquote(text: &str) -> String {
    let t = text.trim();
    let t = if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        &t[1..t.len() - 1]
    } else {
        t
    };
    t.replace('\'', "\"")
}

/// Reads Katib's `architecture` string (either quoting).
pub fn parse_architecture(text: &str) -> Result<Arch, UsageError> {
    let json = unquote(text);
    serde_json::from_str::<Arch>(&json).map_err(|e| {
        UsageError::new(format!(
            "--architecture is not Katib's list of rows such as \"[[2], [0, 1]]\": {e}"
        ))
    })
}

/// The trial's view of `nn_config`: the sizes and the embedded operations by id.
#[derive(Clone, Debug, PartialEq)]
pub struct NnConfig {
    pub num_layers: usize,
    pub input_sizes: Vec<i64>,
    pub output_sizes: Vec<i64>,
    pub embedding: BTreeMap<usize, Operation>,
}

/// Reads Katib's `nn_config` string (either quoting); every error names the field.
pub fn parse_nn_config(text: &str) -> Result<NnConfig, UsageError> {
    let fail = |m: String| UsageError::new(format!("--nn-config: {m}"));
    let json = unquote(text);
    let v: Value = serde_json::from_str(&json).map_err(|e| fail(format!("not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| {
        fail(
            "it must be a JSON object with num_layers, input_sizes, output_sizes and embedding"
                .into(),
        )
    })?;
    let ints = |name: &str| -> Result<Vec<i64>, UsageError> {
        obj.get(name)
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                fail(format!(
                    "`{name}` must be a non-empty list of whole numbers"
                ))
            })
    };
    let num_layers = obj
        .get("num_layers")
        .and_then(Value::as_u64)
        .filter(|&n| n >= 1 && n as usize <= super::config::LAYERS_MAX)
        .ok_or_else(|| {
            fail(format!(
                "`num_layers` must be a whole number from 1 to {} (LAYERS_MAX in src/enas/config.rs)",
                super::config::LAYERS_MAX
            ))
        })? as usize;
    let input_sizes = ints("input_sizes")?;
    let output_sizes = ints("output_sizes")?;
    let emb = obj
        .get("embedding")
        .and_then(Value::as_object)
        .ok_or_else(|| fail("`embedding` must be an object keyed by operation id".into()))?;
    let mut embedding = BTreeMap::new();
    for (key, op) in emb {
        let id: usize = key
            .parse()
            .map_err(|_| fail(format!("embedding key `{key}` is not an operation id")))?;
        let op_type = op
            .get("opt_type")
            .and_then(Value::as_str)
            .ok_or_else(|| fail(format!("embedding.{key}.opt_type is missing")))?;
        if !OPERATION_TYPES.contains(&op_type) {
            return Err(fail(format!(
                "embedding.{key}.opt_type `{op_type}` is not one of {}",
                OPERATION_TYPES.join(", ")
            )));
        }
        let mut params = Vec::new();
        if let Some(p) = op.get("opt_params") {
            let p = p
                .as_object()
                .ok_or_else(|| fail(format!("embedding.{key}.opt_params must be an object")))?;
            for (name, value) in p {
                let value = match value {
                    Value::String(s) => ParamValue::Str(s.clone()),
                    Value::Number(n) if n.is_i64() => ParamValue::Int(n.as_i64().unwrap_or(0)),
                    other => {
                        return Err(fail(format!(
                            "embedding.{key}.opt_params.{name} must be a string or a whole number, found {other}"
                        )))
                    }
                };
                params.push((name.clone(), value));
            }
        }
        embedding.insert(
            id,
            Operation {
                id,
                op_type: op_type.to_string(),
                params,
            },
        );
    }
    Ok(NnConfig {
        num_layers,
        input_sizes,
        output_sizes,
        embedding,
    })
}

/// A JSON value with ordered keys, written as Python's `json.dumps` writes it (`", "` and
/// `": "` separators), so the strings match Katib's byte for byte.
#[derive(Clone, Debug)]
pub enum Py {
    Int(i64),
    Str(String),
    List(Vec<Py>),
    Map(Vec<(String, Py)>),
}

impl Py {
    pub fn dumps(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, s: &mut String) {
        match self {
            Py::Int(i) => s.push_str(&i.to_string()),
            Py::Str(t) => s.push_str(&Value::String(t.clone()).to_string()),
            Py::List(items) => {
                s.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    item.write(s);
                }
                s.push(']');
            }
            Py::Map(entries) => {
                s.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(&Value::String(k.clone()).to_string());
                    s.push_str(": ");
                    v.write(s);
                }
                s.push('}');
            }
        }
    }
}
