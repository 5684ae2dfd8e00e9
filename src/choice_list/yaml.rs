//! Reading a search space from hannah-style YAML (docs/algorithms.md §2): a list is
//! a Choice, a mapping is a parameter or a mapping of named parameters according to its keys
//! (`mapping.rs`), a scalar is a constant. Every error names the key path and the line.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::Value;

use std::cell::Cell;

use super::check::{index_path, show};
use super::mapping::mapping;
use super::param::Param;
use crate::config::{
    CL_DECISIONS_MAX, CL_DEPTH_MAX, CL_INDENT_MAX, CL_PARAMETERS_MAX, CL_SPACE_BYTES_MAX,
};
use crate::error::UsageError;

thread_local! {
    /// Nesting of the node being read, and nodes read so far, for the limits.
    static READING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// A mapping's entries: name, line of the key, value.
pub(super) type Fields<'a, 'y> = Vec<(&'a str, usize, &'a MarkedYaml<'y>)>;

/// Parses one YAML document into a search space. Size limits (src/config.rs) are checked
/// before any work that grows with them: the text's length and indentation before parsing,
/// nesting and parameter count while reading, decisions per configuration at the end.
pub fn parse_space(text: &str) -> Result<Param, UsageError> {
    if text.len() > CL_SPACE_BYTES_MAX {
        return Err(UsageError::new(format!(
            "the space has {} bytes, above the limit of {CL_SPACE_BYTES_MAX} (CL_SPACE_BYTES_MAX in src/config.rs)",
            text.len()
        )));
    }
    // Block nesting needs indentation (or `- ` per level): bounding it bounds the parser's
    // recursion, which would otherwise overflow the stack on a hostile file.
    for (i, line) in text.lines().enumerate() {
        let indent = line
            .bytes()
            .take_while(|b| matches!(b, b' ' | b'-' | b'?' | b'\t'))
            .count();
        if indent > CL_INDENT_MAX {
            return Err(UsageError::new(format!(
                "line {}: indented by more than {CL_INDENT_MAX} columns (CL_INDENT_MAX in src/config.rs); a space nests at most {CL_DEPTH_MAX} levels deep",
                i + 1
            )));
        }
    }
    READING.with(|r| r.set((0, 0)));
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        let line = e.marker().line();
        UsageError::new(format!("not valid YAML: {} (line {line})", e.info()))
    })?;
    let space = match docs.as_slice() {
        [doc] => node(doc, ""),
        [] => Err(UsageError::new(
            "the space is empty; write it as a mapping of named parameters, \
             e.g. `lr: {lower: 0.001, upper: 0.1}`",
        )),
        _ => Err(UsageError::new(format!(
            "found {} YAML documents (separated by `---`); keep the space in one",
            docs.len()
        ))),
    }?;
    if matches!(&space, Param::Map(entries) if entries.is_empty()) {
        return Err(UsageError::new(
            "the space has no parameters (an empty mapping); name at least one, \
             e.g. `hidden: {min: 0, max: 4, choices: [{width: [4, 8], activation: [Tanh, ReLU]}]}`",
        ));
    }
    let decisions = super::max_decisions(&space);
    if decisions > CL_DECISIONS_MAX {
        return Err(UsageError::new(format!(
            "a configuration of this space takes up to {decisions} decisions, above the limit of {CL_DECISIONS_MAX} (CL_DECISIONS_MAX in src/config.rs); shorten its lists"
        )));
    }
    Ok(space)
}

pub(super) fn fail(path: &str, line: usize, message: impl std::fmt::Display) -> UsageError {
    UsageError::new(format!("{}: {message} (line {line})", show(path)))
}

pub(super) fn line(y: &MarkedYaml) -> usize {
    y.span.start.line()
}

/// "a list", "the number 3", ... for messages.
pub(super) fn describe(y: &MarkedYaml) -> String {
    match &y.data {
        YamlData::Value(Scalar::Null) => "nothing (null)".into(),
        YamlData::Value(Scalar::Boolean(b)) => format!("the boolean {b}"),
        YamlData::Value(Scalar::Integer(i)) => format!("the number {i}"),
        YamlData::Value(Scalar::FloatingPoint(f)) => format!("the number {f}"),
        YamlData::Value(Scalar::String(s)) => format!("the string `{s}`"),
        YamlData::Sequence(_) => "a list".into(),
        YamlData::Mapping(_) => "a mapping".into(),
        _ => "an unreadable value".into(),
    }
}

pub(super) fn node(y: &MarkedYaml, path: &str) -> Result<Param, UsageError> {
    let (depth, count) = READING.with(Cell::get);
    if depth >= CL_DEPTH_MAX {
        return Err(fail(
            path,
            line(y),
            format!("nested more than {CL_DEPTH_MAX} levels deep (CL_DEPTH_MAX in src/config.rs)"),
        ));
    }
    if count >= CL_PARAMETERS_MAX {
        return Err(fail(
            path,
            line(y),
            format!("the space has more than {CL_PARAMETERS_MAX} values and parameters (CL_PARAMETERS_MAX in src/config.rs)"),
        ));
    }
    READING.with(|r| r.set((depth + 1, count + 1)));
    let result = node_inside(y, path);
    READING.with(|r| r.set((depth, r.get().1)));
    result
}

fn node_inside(y: &MarkedYaml, path: &str) -> Result<Param, UsageError> {
    match &y.data {
        YamlData::Value(s) => scalar(s)
            .map(Param::Const)
            .map_err(|m| fail(path, line(y), m)),
        YamlData::Sequence(items) => {
            let options = options_in(items, path)?;
            Param::choice(options).map_err(|m| fail(path, line(y), m))
        }
        YamlData::Mapping(map) => {
            let mut fields = Vec::with_capacity(map.len());
            for (k, v) in map.iter() {
                match &k.data {
                    YamlData::Value(Scalar::String(name)) => {
                        fields.push((name.as_ref(), line(k), v))
                    }
                    _ => {
                        let found = describe(k);
                        let advice = "quote it if it is meant as a name";
                        return Err(fail(
                            path,
                            line(k),
                            format!("keys must be names, found {found}; {advice}"),
                        ));
                    }
                }
            }
            mapping(&fields, path, line(y))
        }
        YamlData::Tagged(tag, _) => Err(fail(
            path,
            line(y),
            format!("YAML tags such as `{tag}` are not supported; remove it"),
        )),
        YamlData::Alias(_) => Err(fail(
            path,
            line(y),
            "an alias (`*name`) that could not be resolved; write the value out",
        )),
        _ => Err(fail(path, line(y), "this value could not be read")),
    }
}

fn scalar(s: &Scalar) -> Result<Value, String> {
    Ok(match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) if f.is_finite() => Value::from(f.into_inner()),
        Scalar::FloatingPoint(f) => {
            return Err(format!(
                "{f} cannot be a constant (JSON has no such number)"
            ))
        }
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

pub(super) fn options_in(items: &[MarkedYaml], path: &str) -> Result<Vec<Param>, UsageError> {
    (items.iter().enumerate())
        .map(|(i, item)| node(item, &index_path(path, i)))
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The message of a space the parser refuses (shared with mapping.rs's tests).
    pub(in crate::choice_list) fn error(text: &str) -> String {
        match parse_space(text) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn bad_types_name_the_key_path_and_line() {
        let text = "hidden:\n  min: 0\n  max: 4\n  choices: 3\n";
        assert_eq!(
            error(text),
            "hidden.choices: expected a list of options, found the number 3 (line 4)"
        );
        let text = "model:\n  hidden:\n    min: 0\n    max: two\n    choices: [a]\n";
        assert_eq!(
            error(text),
            "model.hidden.max: expected a whole number, found the string `two` (line 4)"
        );
        let text = "blocks:\n  min: 1\n  max: 3\n  choices:\n    - {width: [1, 2]}\n    - width: {lower: 1, upper: x}\n";
        assert_eq!(
            error(text),
            "blocks.choices[1].width.upper: expected a number, found the string `x` (line 6)"
        );
        assert_eq!(
            error("lr: {lower: 1, upper: 2, log: yes}"),
            "lr.log: expected true or false, found the string `yes` (line 1)"
        );
        assert_eq!(error("a: 1\n? [x]\n: 2\n"), "(top level): keys must be names, found a list; quote it if it is meant as a name (line 2)");
    }

    #[test]
    fn whole_file_problems() {
        assert!(error("a: [1, 2\nb: 3\n").starts_with("not valid YAML: "));
        assert!(error("").starts_with("the space is empty"));
        assert!(error("a: 1\n---\nb: 2\n").contains("2 YAML documents"));
        assert!(
            error("a: 1\na: 2\n").starts_with("not valid YAML: "),
            "{}",
            error("a: 1\na: 2\n")
        );
        assert!(error("a: !custom 1").contains("tags such as `!custom`"));
    }

    #[test]
    fn sizes_are_refused_by_named_limits_before_the_work_they_would_cost() {
        assert!(error("{}").starts_with("the space has no parameters"));
        // Nesting: by flow brackets, by block indentation, by `- ` per level on one line.
        let flow = format!("a: {}1{}", "[".repeat(40), "]".repeat(40));
        assert!(error(&flow).contains("CL_DEPTH_MAX"), "{}", error(&flow));
        let blocks: String = (0..40)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert!(error(&format!("{blocks}{}1", " ".repeat(40))).contains("CL_DEPTH_MAX"));
        let dashes = format!("{}1", "- ".repeat(100_000)); // overflowed the stack before
        assert!(
            error(&dashes).contains("CL_INDENT_MAX"),
            "{}",
            error(&dashes)
        );
        let big = format!("a: \"{}\"", "x".repeat(CL_SPACE_BYTES_MAX));
        assert!(error(&big).contains("CL_SPACE_BYTES_MAX"));
        let wide: String = (0..CL_PARAMETERS_MAX + 1)
            .map(|i| format!("k{i}: 1\n"))
            .collect();
        assert!(error(&wide).contains("CL_PARAMETERS_MAX"));
        // Nested lists multiply the decisions of a configuration: 1 + 64 x (1 + 1 + 64 x 2).
        let text = "l: {min: 0, max: 65, choices: [{min: 1, max: 65, choices: [[a, b]]}]}";
        assert!(error(text).contains("CL_DECISIONS_MAX"), "{}", error(text));
        // Just inside the limits.
        let flow = format!(
            "a: {}1{}",
            "[".repeat(CL_DEPTH_MAX - 2),
            "]".repeat(CL_DEPTH_MAX - 2)
        );
        assert!(parse_space(&flow).is_ok());
    }

    #[test]
    fn nested_options_and_constants_are_read() {
        let space = parse_space("n: {choices: [{_target_: Conv, size: [3, 5]}, pool], partition: 2}\nk: 7\nf: 0.5\nt: true\ns: hi\nz:\n").unwrap();
        let Param::Map(entries) = space else {
            panic!("a mapping")
        };
        let Param::Partition(p) = &entries[0].1 else {
            panic!("a Partition")
        };
        assert_eq!(p.partition(), 2);
        let Param::Map(conv) = &p.choices()[0] else {
            panic!("a mapping option")
        };
        assert_eq!(
            conv[0],
            ("_target_".to_string(), Param::Const("Conv".into()))
        );
        assert!(matches!(&conv[1].1, Param::Choice(o) if o.len() == 2)); // `size` is just a name here
        let consts: Vec<&Param> = entries[1..].iter().map(|(_, p)| p).collect();
        let want = [
            Value::from(7),
            Value::from(0.5),
            Value::from(true),
            Value::from("hi"),
            Value::Null,
        ];
        assert_eq!(consts, want.map(Param::Const).iter().collect::<Vec<_>>());
    }
}
