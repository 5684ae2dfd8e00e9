//! Whether a configuration belongs to a search space (with the key path of the first mismatch),
//! and which option a value came from: options are distinguishable (`param.rs` refuses spaces
//! where they are not), so every valid configuration has exactly one reading.

use serde_json::Value;

use super::param::{Param, Partition};
use crate::error::UsageError;

impl Param {
    /// Whether `config` is a configuration of this space.
    pub fn fits(&self, config: &Value) -> bool {
        self.check_at(config, "").is_ok()
    }

    /// `Ok` when `config` is a configuration of this space, else what is wrong and where.
    pub fn check(&self, config: &Value) -> Result<(), UsageError> {
        self.check_at(config, "").map_err(|e| {
            UsageError::new(format!(
                "{e}; the configuration does not belong to this space"
            ))
        })
    }

    fn check_at(&self, v: &Value, path: &str) -> Result<(), String> {
        let fail = |msg: String| Err(format!("{}: {msg}", show(path)));
        match self {
            Param::Const(c) if same_scalar(c, v) => Ok(()),
            Param::Const(c) => fail(format!("expected the constant {c}, found {v}")),
            Param::Choice(options) => match option_of(options, v) {
                Some(_) => Ok(()),
                None => fail(format!("{v} is none of the {} options", options.len())),
            },
            Param::Interval(iv) => iv.contains(v).or_else(fail),
            Param::ChoiceList(cl) => {
                let Some(items) = v.as_array() else {
                    return fail(format!("expected a list, found {}", kind(v)));
                };
                if !(cl.min..cl.max).contains(&items.len()) {
                    return fail(format!(
                        "a list of {} elements, but this one allows {}..={}",
                        items.len(),
                        cl.min,
                        cl.max - 1
                    ));
                }
                elements_fit(&cl.choices, items, path)
            }
            Param::Subset(s) => match v.as_array() {
                Some(items) if items.len() == s.size => elements_fit(&s.choices, items, path),
                _ => fail(format!("expected a list of {} elements, found {v}", s.size)),
            },
            Param::Partition(p) => p.split(v).map(|_| ()).or_else(fail),
            Param::Map(entries) => {
                let Some(map) = v.as_object() else {
                    return fail(format!("expected a map, found {}", kind(v)));
                };
                if let Some(extra) = map.keys().find(|k| !entries.iter().any(|(n, _)| n == *k)) {
                    return fail(format!("unknown key `{extra}`"));
                }
                for (name, p) in entries {
                    match map.get(name) {
                        Some(child) => p.check_at(child, &key_path(path, name))?,
                        None => return fail(format!("missing key `{name}`")),
                    }
                }
                Ok(())
            }
        }
    }
}

fn elements_fit(options: &[Param], items: &[Value], path: &str) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        if option_of(options, item).is_none() {
            let n = options.len();
            return Err(format!(
                "{}: {item} is none of the {n} choices",
                index_path(path, i)
            ));
        }
    }
    Ok(())
}

/// Index of the option `v` came from (the only one it fits).
pub(super) fn option_of(options: &[Param], v: &Value) -> Option<usize> {
    options.iter().position(|o| o.fits(v))
}

/// Equality of scalars where 2 and 2.0 are the same number, as in YAML and JSON readers.
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Partition {
    /// Per choice, its group and its value; an error when `v` is not a partition of the choices
    /// (`partition` lists holding every choice once, each list in the order of `choices`).
    pub(super) fn split(&self, v: &Value) -> Result<Vec<(usize, Value)>, String> {
        let groups = match v.as_array() {
            Some(g) if g.len() == self.partition => g,
            _ => {
                return Err(format!(
                    "expected a list of {} groups, found {v}",
                    self.partition
                ))
            }
        };
        let mut slots: Vec<Option<(usize, Value)>> = vec![None; self.choices.len()];
        for (g, group) in groups.iter().enumerate() {
            let Some(items) = group.as_array() else {
                return Err(format!("group {g} should be a list, found {}", kind(group)));
            };
            let mut last = None;
            for item in items {
                let Some(i) = option_of(&self.choices, item) else {
                    return Err(format!("{item} in group {g} is none of the choices"));
                };
                if slots[i].is_some() || last.is_some_and(|l| l >= i) {
                    return Err(format!(
                        "group {g}: each choice belongs to one group, listed in the order of \
                         `choices`; {item} breaks that"
                    ));
                }
                slots[i] = Some((g, item.clone()));
                last = Some(i);
            }
        }
        (slots.into_iter().enumerate())
            .map(|(i, slot)| slot.ok_or_else(|| format!("choice {i} is in no group")))
            .collect()
    }

    /// The configuration of per-choice `(group, value)` pairs: groups listing their choices
    /// in the order of `choices`.
    pub(super) fn join(&self, assigned: Vec<(usize, Value)>) -> Value {
        let mut groups = vec![Vec::new(); self.partition];
        for (g, value) in assigned {
            groups[g].push(value);
        }
        Value::Array(groups.into_iter().map(Value::Array).collect())
    }
}

/// `path.key`, or `key` at the top.
pub(super) fn key_path(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    }
}

/// `path[i]`.
pub(super) fn index_path(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A path as printed: the top level has no name.
pub(super) fn show(path: &str) -> &str {
    match path {
        "" => "(top level)",
        _ => path,
    }
}

/// "a list", "a number", ... for messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse_space;
    use serde_json::json;

    #[test]
    fn mismatches_name_their_key_path() {
        let space = parse_space(
            "hidden: {min: 0, max: 3, choices: [{width: [1, 2], act: [Tanh, ReLU]}]}\n\
             lr: {lower: 0.1, upper: 1.0}\n\
             n: {lower: 1, upper: 4, int: true}\n\
             groups: {choices: [a, b, c], partition: 2}\n",
        )
        .unwrap();
        let ok = json!({"hidden": [{"width": 2, "act": "Tanh"}], "lr": 0.5, "n": 3,
                        "groups": [["a", "c"], ["b"]]});
        assert!(space.check(&ok).is_ok());
        let err = |patch: serde_json::Value| {
            let mut c = ok.clone();
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            space.check(&c).unwrap_err().0
        };
        assert!(err(json!({"hidden": [{"width": 3, "act": "Tanh"}]})).starts_with("hidden[0]: "));
        assert!(err(json!({"hidden": [1, 1, 1]})).contains("allows 0..=2"));
        assert!(err(json!({"lr": 1.0})).starts_with("lr: expected a number in [0.1, 1)"));
        assert!(err(json!({"n": 4})).contains("integer in 1..=3"));
        assert!(err(json!({"n": 2.5})).starts_with("n: "));
        assert!(err(json!({"groups": [["c", "a"], ["b"]]})).contains("order of `choices`"));
        assert!(err(json!({"groups": [["a"], ["b"]]})).contains("choice 2 is in no group"));
        assert!(err(json!({"groups": [["a", "b"], ["b", "c"]]})).starts_with("groups: "));
        let mut extra = ok.clone();
        extra["bogus"] = json!(1);
        assert!(space
            .check(&extra)
            .unwrap_err()
            .0
            .contains("unknown key `bogus`"));
    }
}
