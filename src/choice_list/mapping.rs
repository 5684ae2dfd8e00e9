//! How a YAML mapping is read (hannah's parametrization, docs/algorithms.md §2): as one of the
//! parameters Interval, ChoiceList, Subset, Partition, recognised by its keys, or as a mapping
//! of named parameters. The keys `lower`, `upper` and `choices` are reserved:
//! - has `lower` or `upper`: an Interval; takes `lower`, `upper` (numbers), `int` and `log`
//!   (booleans, default false);
//! - has `choices`: with `min`/`max` a ChoiceList, with `size` a Subset, with `partition` a
//!   Partition (exactly one of the three);
//! - has exactly the keys `min` and `max`: refused as a ChoiceList that forgot `choices`;
//! - anything else: a mapping of named parameters (values are parameters or constants), so
//!   hannah's `{_target_: torch.nn.Conv2d, size: 3}` stays a plain mapping.

use saphyr::{MarkedYaml, Scalar, YamlData};

use super::check::key_path;
use super::param::{ChoiceList, Interval, Param, Partition, Subset};
use super::yaml::{describe, fail, line, node, options_in, Fields};
use crate::error::UsageError;

/// Reads a mapping whose entries are `fields` (at `path`, starting on line `at`).
pub(super) fn mapping(fields: &Fields, path: &str, at: usize) -> Result<Param, UsageError> {
    let has = |name: &str| fields.iter().any(|(n, _, _)| *n == name);
    if has("lower") || has("upper") {
        return interval(fields, path, at);
    }
    if has("choices") {
        return with_choices(fields, path, at);
    }
    if fields.len() == 2 && has("min") && has("max") {
        return Err(fail(
            path,
            at,
            "missing field `choices`; a ChoiceList needs min, max and choices",
        ));
    }
    let mut entries = Vec::with_capacity(fields.len());
    for (name, _, value) in fields {
        entries.push((name.to_string(), node(value, &key_path(path, name))?));
    }
    Param::map(entries).map_err(|m| fail(path, at, m))
}

fn interval(fields: &Fields, path: &str, at: usize) -> Result<Param, UsageError> {
    let what = "an Interval, which takes lower, upper, int and log";
    allow_only(fields, &["lower", "upper", "int", "log"], what, path)?;
    let lower = number(
        required(fields, "lower", what, path, at)?,
        &key_path(path, "lower"),
    )?;
    let upper = number(
        required(fields, "upper", what, path, at)?,
        &key_path(path, "upper"),
    )?;
    let int = optional_bool(fields, "int", path)?;
    let log = optional_bool(fields, "log", path)?;
    Interval::new(lower, upper, int, log)
        .map(Param::Interval)
        .map_err(|m| fail(path, at, m))
}

fn with_choices(fields: &Fields, path: &str, at: usize) -> Result<Param, UsageError> {
    let has = |name: &str| fields.iter().any(|(n, _, _)| *n == name);
    let list = has("min") || has("max");
    let kinds = [
        (list, "min/max (ChoiceList)"),
        (has("size"), "size (Subset)"),
        (has("partition"), "partition (Partition)"),
    ];
    let named: Vec<&str> = kinds.iter().filter(|k| k.0).map(|k| k.1).collect();
    if named.len() != 1 {
        let found = if named.is_empty() {
            "none".to_string()
        } else {
            named.join(" and ")
        };
        return Err(fail(
            path,
            at,
            format!(
                "`choices` needs exactly one of min/max (ChoiceList), size (Subset) or partition \
             (Partition), found {found}; a plain list of options needs no `choices` key"
            ),
        ));
    }
    let choices_at = |what: &str| -> Result<Vec<Param>, UsageError> {
        let y = required(fields, "choices", what, path, at)?;
        let cpath = key_path(path, "choices");
        match &y.data {
            YamlData::Sequence(items) => options_in(items, &cpath),
            _ => Err(fail(
                &cpath,
                line(y),
                format!("expected a list of options, found {}", describe(y)),
            )),
        }
    };
    let int_at = |name: &str, what: &str| {
        required(fields, name, what, path, at).and_then(|y| integer(y, &key_path(path, name)))
    };
    let param = if list {
        let what = "a ChoiceList, which takes min, max and choices";
        allow_only(fields, &["min", "max", "choices"], what, path)?;
        let (min, max) = (int_at("min", what)?, int_at("max", what)?);
        ChoiceList::new(min, max, choices_at(what)?).map(Param::ChoiceList)
    } else if has("size") {
        let what = "a Subset, which takes choices and size";
        allow_only(fields, &["choices", "size"], what, path)?;
        Subset::new(choices_at(what)?, int_at("size", what)?).map(Param::Subset)
    } else {
        let what = "a Partition, which takes choices and partition";
        allow_only(fields, &["choices", "partition"], what, path)?;
        Partition::new(choices_at(what)?, int_at("partition", what)?).map(Param::Partition)
    };
    param.map_err(|m| fail(path, at, m))
}

fn allow_only(fields: &Fields, allowed: &[&str], what: &str, path: &str) -> Result<(), UsageError> {
    match fields.iter().find(|(n, _, _)| !allowed.contains(n)) {
        Some((name, at, _)) => Err(fail(path, *at, format!("unknown field `{name}` in {what}"))),
        None => Ok(()),
    }
}

fn required<'a, 'y>(
    fields: &Fields<'a, 'y>,
    name: &str,
    what: &str,
    path: &str,
    at: usize,
) -> Result<&'a MarkedYaml<'y>, UsageError> {
    match fields.iter().find(|(n, _, _)| *n == name) {
        Some((_, _, y)) => Ok(y),
        None => Err(fail(path, at, format!("missing field `{name}` of {what}"))),
    }
}

fn integer(y: &MarkedYaml, path: &str) -> Result<i64, UsageError> {
    match &y.data {
        YamlData::Value(Scalar::Integer(i)) => Ok(*i),
        _ => Err(fail(
            path,
            line(y),
            format!("expected a whole number, found {}", describe(y)),
        )),
    }
}

fn number(y: &MarkedYaml, path: &str) -> Result<f64, UsageError> {
    match &y.data {
        YamlData::Value(Scalar::Integer(i)) => Ok(*i as f64),
        YamlData::Value(Scalar::FloatingPoint(f)) => Ok(f.into_inner()),
        _ => Err(fail(
            path,
            line(y),
            format!("expected a number, found {}", describe(y)),
        )),
    }
}

fn optional_bool(fields: &Fields, name: &str, path: &str) -> Result<bool, UsageError> {
    match fields.iter().find(|(n, _, _)| *n == name) {
        None => Ok(false),
        Some((_, _, y)) => match &y.data {
            YamlData::Value(Scalar::Boolean(b)) => Ok(*b),
            _ => Err(fail(
                &key_path(path, name),
                line(y),
                format!("expected true or false, found {}", describe(y)),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::tests::error;

    #[test]
    fn missing_and_unknown_fields_are_reported() {
        let text = "model:\n  hidden:\n    min: 0\n    choices: [a]\n";
        assert_eq!(error(text), "model.hidden: missing field `max` of a ChoiceList, which takes min, max and choices (line 3)");
        assert_eq!(error("lr: {lower: 0.1}"), "lr: missing field `upper` of an Interval, which takes lower, upper, int and log (line 1)");
        assert_eq!(error("x: 1\nlr:\n  lower: 0\n  upper: 1\n  step: 2\n"), "lr: unknown field `step` in an Interval, which takes lower, upper, int and log (line 5)");
        assert!(error("s: {choices: [a], size: 1, min: 0}")
            .starts_with("s: `choices` needs exactly one of"));
        assert!(error("s: {choices: [a]}").contains("found none"));
        assert_eq!(
            error("l: {min: 0, max: 3}"),
            "l: missing field `choices`; a ChoiceList needs min, max and choices (line 1)"
        );
    }

    #[test]
    fn rule_violations_are_reported_with_advice() {
        let text = "x: 1\nhidden: {min: 4, max: 4, choices: [a]}\n";
        assert!(
            error(text).starts_with("hidden: min (4) must be below max (4); max is exclusive"),
            "{}",
            error(text)
        );
        assert!(error(text).ends_with("need max: 5 (line 2)"));
        assert!(error("h: {min: -1, max: 2, choices: [a]}").starts_with("h: min is -1"));
        let text = "\n\nfeatures: {choices: [a, b], size: 3}\n";
        assert_eq!(
            error(text),
            "features: size (3) is larger than the 2 choices; lower size or add choices (line 3)"
        );
        assert!(error("p: {choices: [a, b], partition: 0}").starts_with("p: partition is 0"));
        assert!(error("lr: {lower: 0, upper: 1, log: true}")
            .starts_with("lr: a log interval needs lower > 0"));
        assert!(
            error("lr: {lower: 2, upper: 1}").starts_with("lr: lower (2) must be below upper (1)")
        );
        assert_eq!(
            error("a: []"),
            "a: a Choice needs at least one option, found an empty list (line 1)"
        );
        assert!(error("l: {min: 0, max: 2, choices: []}").contains("empty list (line 1)"));
        assert!(error("c: [1, 2, 1]").starts_with("c: options 0 and 2 can give the same value"));
    }
}
