//! The parameter types of a choice-list search space, as hannah's legacy NAS parametrization
//! defines them (REFERENCE.md section 2): Choice, ChoiceList, Interval, Subset, Partition, and
//! mappings of named parameters. Constructors enforce the rules the YAML reader reports.

use serde_json::Value;

pub use super::interval::Interval;

/// A sampled configuration: numbers, strings, lists and maps, written as one JSON value.
pub type Config = Value;

/// One node of a search space; the whole space is the root node.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// A plain scalar (number, string, bool, null), copied into every configuration.
    Const(Value),
    /// One of the options (a YAML list); an option may itself be a parameter or a mapping.
    /// Build it with `Param::choice`, which checks the options (sampling an empty one panics).
    Choice(Vec<Param>),
    /// A list of `min..max` elements (max exclusive), each one of the choices.
    ChoiceList(ChoiceList),
    /// A scalar in `[lower, upper)`.
    Interval(Interval),
    /// `size` elements of the choices, drawn with replacement as hannah does.
    Subset(Subset),
    /// The choices split into `partition` groups.
    Partition(Partition),
    /// Named parameters (a YAML mapping without reserved keys), in file order.
    Map(Vec<(String, Param)>),
}

/// `{min, max, choices}`: a list whose length is uniform in `[min, max)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceList {
    pub(super) min: usize,
    pub(super) max: usize,
    pub(super) choices: Vec<Param>,
}

/// `{choices, size}`: `size` elements, each one of the choices (repeats allowed).
#[derive(Clone, Debug, PartialEq)]
pub struct Subset {
    pub(super) choices: Vec<Param>,
    pub(super) size: usize,
}

/// `{choices, partition}`: every choice goes to one of `partition` groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub(super) choices: Vec<Param>,
    pub(super) partition: usize,
}

impl Param {
    /// A Choice among `options`; they must be non-empty and distinguishable (see `distinct`).
    pub fn choice(options: Vec<Param>) -> Result<Param, String> {
        distinct(&options, "a Choice")?;
        Ok(Param::Choice(options))
    }

    /// A mapping of named parameters; names must be unique.
    pub fn map(entries: Vec<(String, Param)>) -> Result<Param, String> {
        for (i, (name, _)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(other, _)| other == name) {
                return Err(format!("the name `{name}` appears twice; keep one"));
            }
        }
        Ok(Param::Map(entries))
    }
}

impl ChoiceList {
    /// Checks hannah's rules: `0 <= min < max` (max is the longest length + 1), choices given.
    pub fn new(min: i64, max: i64, choices: Vec<Param>) -> Result<ChoiceList, String> {
        if min < 0 {
            return Err(format!(
                "min is {min}, but a list cannot be shorter than 0; use min: 0"
            ));
        }
        if min >= max {
            return Err(format!(
                "min ({min}) must be below max ({max}); max is exclusive (the longest length + 1), \
                 so lists of exactly {min} elements need max: {}",
                min + 1
            ));
        }
        distinct(&choices, "a ChoiceList")?;
        Ok(ChoiceList {
            min: min as usize,
            max: max as usize,
            choices,
        })
    }
    /// Shortest length.
    pub fn min(&self) -> usize {
        self.min
    }
    /// Longest length + 1 (exclusive, as in hannah).
    pub fn max(&self) -> usize {
        self.max
    }
    /// What each element is drawn from.
    pub fn choices(&self) -> &[Param] {
        &self.choices
    }
}

impl Subset {
    /// Checks `1 <= size <= choices`: hannah samples with replacement, so a larger size would
    /// run, but "a subset of size 5 from 3 choices" is almost surely a typo, so it is refused.
    pub fn new(choices: Vec<Param>, size: i64) -> Result<Subset, String> {
        distinct(&choices, "a Subset")?;
        if size < 1 {
            return Err(format!("size is {size}; a subset needs size 1 or more"));
        }
        if size as usize > choices.len() {
            return Err(format!(
                "size ({size}) is larger than the {} choices; lower size or add choices",
                choices.len()
            ));
        }
        Ok(Subset {
            choices,
            size: size as usize,
        })
    }
    /// What each element is drawn from.
    pub fn choices(&self) -> &[Param] {
        &self.choices
    }
    /// Elements in every subset.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Partition {
    /// Checks `partition >= 1` and that there are choices to split.
    pub fn new(choices: Vec<Param>, partition: i64) -> Result<Partition, String> {
        distinct(&choices, "a Partition")?;
        if partition < 1 {
            return Err(format!("partition is {partition}; give 1 or more groups"));
        }
        Ok(Partition {
            choices,
            partition: partition as usize,
        })
    }
    /// What is split.
    pub fn choices(&self) -> &[Param] {
        &self.choices
    }
    /// Number of groups.
    pub fn partition(&self) -> usize {
        self.partition
    }
}

/// Refuses empty option lists and options that could produce the same value: a configuration
/// must name its option unambiguously, or mutation and the decision encoding could not tell
/// which option a value came from (and decode(encode(d)) == d would fail).
fn distinct(options: &[Param], what: &str) -> Result<(), String> {
    if options.is_empty() {
        return Err(format!(
            "{what} needs at least one option, found an empty list"
        ));
    }
    for j in 0..options.len() {
        for i in 0..j {
            if may_overlap(&options[i], &options[j]) {
                return Err(format!(
                    "options {i} and {j} can give the same value; make them distinguishable, \
                     e.g. with a constant key such as `_target_`"
                ));
            }
        }
    }
    Ok(())
}

/// Whether two parameters may produce an equal value. Exact for constants, conservative
/// (may say yes when no common value exists) for intervals and lists.
pub(super) fn may_overlap(a: &Param, b: &Param) -> bool {
    use Param::*;
    match (a, b) {
        (Const(x), p) | (p, Const(x)) => p.fits(x),
        (Choice(options), p) | (p, Choice(options)) => options.iter().any(|o| may_overlap(o, p)),
        (Map(x), Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(name, p)| {
                    y.iter()
                        .find(|(other, _)| other == name)
                        .is_some_and(|(_, q)| may_overlap(p, q))
                })
        }
        (Interval(x), Interval(y)) => x.lower < y.upper && y.lower < x.upper,
        _ => match (lengths(a), lengths(b)) {
            (Some((a0, a1)), Some((b0, b1))) => {
                let (lo, hi) = (a0.max(b0), a1.min(b1));
                lo < hi && (lo == 0 || elements_overlap(a, b))
            }
            _ => false,
        },
    }
}

/// Possible lengths `[lo, hi)` of a list-valued parameter.
fn lengths(p: &Param) -> Option<(usize, usize)> {
    match p {
        Param::ChoiceList(c) => Some((c.min, c.max)),
        Param::Subset(s) => Some((s.size, s.size + 1)),
        Param::Partition(p) => Some((p.partition, p.partition + 1)),
        _ => None,
    }
}

/// Whether some element of `a` may equal some element of `b` (true when unknown).
fn elements_overlap(a: &Param, b: &Param) -> bool {
    let elements = |p: &Param| match p {
        Param::ChoiceList(c) => Some(c.choices.clone()),
        Param::Subset(s) => Some(s.choices.clone()),
        _ => None, // a Partition's elements are groups: assume they may match
    };
    match (elements(a), elements(b)) {
        (Some(x), Some(y)) => x.iter().any(|p| y.iter().any(|q| may_overlap(p, q))),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: Value) -> Param {
        Param::Const(v)
    }

    #[test]
    fn rules_of_each_type() {
        let two = || vec![c(1.into()), c(2.into())];
        assert!(ChoiceList::new(0, 1, two()).is_ok()); // only the empty list
        assert!(ChoiceList::new(2, 2, two())
            .unwrap_err()
            .contains("must be below max"));
        assert!(ChoiceList::new(-1, 2, two())
            .unwrap_err()
            .contains("min: 0"));
        assert!(ChoiceList::new(0, 2, vec![]).unwrap_err().contains("empty"));
        assert!(Subset::new(two(), 2).is_ok());
        assert!(Subset::new(two(), 3)
            .unwrap_err()
            .contains("larger than the 2 choices"));
        assert!(Subset::new(two(), 0).is_err());
        assert!(Partition::new(two(), 0).is_err());
        assert!(Partition::new(two(), 5).is_ok()); // more groups than choices: some stay empty
        assert!(Param::map(vec![("a".into(), c(1.into())), ("a".into(), c(2.into()))]).is_err());
    }

    #[test]
    fn options_that_could_coincide_are_refused() {
        let iv = |lo: f64, hi: f64| Param::Interval(Interval::new(lo, hi, false, false).unwrap());
        assert!(Param::choice(vec![c(1.into()), c(1.into())]).is_err());
        assert!(Param::choice(vec![c(1.into()), c(1.5.into())]).is_ok());
        assert!(Param::choice(vec![iv(0.0, 1.0), iv(1.0, 2.0)]).is_ok()); // [0,1) and [1,2)
        assert!(Param::choice(vec![iv(0.0, 1.0), iv(0.5, 2.0)]).is_err());
        assert!(Param::choice(vec![iv(0.0, 1.0), c(0.5.into())]).is_err());
        assert!(Param::choice(vec![iv(0.0, 1.0), c(1.into())]).is_ok()); // upper is exclusive
        let cl = |min, choices| Param::ChoiceList(ChoiceList::new(min, 3, choices).unwrap());
        // Both can be the empty list.
        assert!(Param::choice(vec![cl(0, vec![c(1.into())]), cl(0, vec![c(2.into())])]).is_err());
        assert!(Param::choice(vec![cl(1, vec![c(1.into())]), cl(1, vec![c(2.into())])]).is_ok());
        let tagged =
            |t: &str, p| Param::Map(vec![("_target_".into(), c(t.into())), ("x".into(), p)]);
        assert!(Param::choice(vec![tagged("a", iv(0.0, 1.0)), tagged("b", iv(0.0, 1.0))]).is_ok());
        assert!(Param::choice(vec![tagged("a", iv(0.0, 1.0)), tagged("a", iv(0.5, 1.0))]).is_err());
    }
}
