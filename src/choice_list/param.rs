//! The parameter types of a choice-list search space, as hannah's legacy NAS parametrization
//! defines them (docs/algorithms.md §2): Choice, ChoiceList, Interval, Subset, Partition, and
//! mappings of named parameters. Constructors enforce the rules the YAML reader reports.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

pub use super::interval::Interval;
use crate::config::{CL_LIST_LENGTH_MAX, CL_OPTIONS_MAX, CL_PARAM_OPTIONS_MAX, CL_PARTITION_MAX};

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
        let mut seen = HashSet::with_capacity(entries.len());
        for (name, _) in &entries {
            if !seen.insert(name.as_str()) {
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
                min.saturating_add(1)
            ));
        }
        if max - 1 > CL_LIST_LENGTH_MAX as i64 {
            return Err(format!(
                "max is {max}: lists of up to {} elements, above the limit of {CL_LIST_LENGTH_MAX} (CL_LIST_LENGTH_MAX in src/config.rs); use max: {} or less",
                max - 1,
                CL_LIST_LENGTH_MAX + 1
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
        if size as usize > CL_LIST_LENGTH_MAX {
            return Err(format!(
                "size is {size}, above the limit of {CL_LIST_LENGTH_MAX} (CL_LIST_LENGTH_MAX in src/config.rs)"
            ));
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
        if partition as usize > CL_PARTITION_MAX {
            return Err(format!(
                "partition is {partition}, above the limit of {CL_PARTITION_MAX} groups (CL_PARTITION_MAX in src/config.rs)"
            ));
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
///
/// Linear in the options that are fixed values (constants, mappings of constants: compared
/// by a hash of their value) and pairwise only for those that are parameters, whose number
/// is limited by CL_PARAM_OPTIONS_MAX. Reports the first pair `(i, j)` by `j`, then `i`.
fn distinct(options: &[Param], what: &str) -> Result<(), String> {
    if options.is_empty() {
        return Err(format!(
            "{what} needs at least one option, found an empty list"
        ));
    }
    if options.len() > CL_OPTIONS_MAX {
        return Err(format!(
            "{what} has {} options, above the limit of {CL_OPTIONS_MAX} (CL_OPTIONS_MAX in src/config.rs)",
            options.len()
        ));
    }
    let keys: Vec<Option<String>> = options.iter().map(fixed_key).collect();
    let params: Vec<usize> = (0..options.len()).filter(|&i| keys[i].is_none()).collect();
    if params.len() > CL_PARAM_OPTIONS_MAX {
        return Err(format!(
            "{what} has {} options that are parameters rather than fixed values, above the limit of {CL_PARAM_OPTIONS_MAX} (CL_PARAM_OPTIONS_MAX in src/config.rs)",
            params.len()
        ));
    }
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(options.len());
    for j in 0..options.len() {
        let same = keys[j].as_deref().and_then(|k| first.get(k).copied());
        // A fixed j is compared with the earlier parameters one by one (and with the earlier
        // fixed values by its key); a parameter j with every earlier option.
        let mut earlier: Box<dyn Iterator<Item = usize>> = match keys[j] {
            Some(_) => Box::new(params.iter().copied().take_while(|&i| i < j)),
            None => Box::new(0..j),
        };
        let overlapping = earlier.find(|&i| may_overlap(&options[i], &options[j]));
        if let Some(i) = [same, overlapping].into_iter().flatten().min() {
            return Err(format!(
                "options {i} and {j} can give the same value; make them distinguishable, \
                 e.g. with a constant key such as `_target_`"
            ));
        }
        if let Some(k) = keys[j].as_deref() {
            first.entry(k).or_insert(j);
        }
    }
    Ok(())
}

/// The one value a fixed option gives, as a canonical text (numbers equal as f64 are the same,
/// as `may_overlap` compares them); `None` for an option that is a parameter.
fn fixed_key(p: &Param) -> Option<String> {
    match p {
        Param::Const(v) => match v {
            Value::Number(n) => {
                let x = n.as_f64()?;
                Some(format!("n{:x}", (x + 0.0).to_bits())) // + 0.0 turns -0 into 0
            }
            Value::Array(_) | Value::Object(_) => None,
            scalar => Some(format!("s{scalar}")),
        },
        Param::Map(entries) => {
            let mut parts = entries
                .iter()
                .map(|(name, p)| Some(format!("{}={}", Value::from(name.as_str()), fixed_key(p)?)))
                .collect::<Option<Vec<String>>>()?;
            parts.sort_unstable();
            Some(format!("m{{{}}}", parts.join(",")))
        }
        _ => None,
    }
}

/// Whether two parameters may produce an equal value. Exact for constants, conservative
/// (may say yes when no common value exists) for intervals and lists.
pub(super) fn may_overlap(a: &Param, b: &Param) -> bool {
    use Param::*;
    #[cfg(test)]
    tests::OVERLAP_CHECKS.with(|n| n.set(n.get() + 1));
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
    use proptest::prelude::*;

    thread_local! {
        /// Calls of `may_overlap` on this thread, to count the work of `distinct`.
        pub(super) static OVERLAP_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn c(v: Value) -> Param {
        Param::Const(v)
    }

    /// The definition, pair by pair: the first `(i, j)` by `j`, then `i`, that may overlap.
    fn first_overlap_by_pairs(options: &[Param]) -> Option<(usize, usize)> {
        (0..options.len())
            .flat_map(|j| (0..j).map(move |i| (i, j)))
            .find(|&(i, j)| may_overlap(&options[i], &options[j]))
    }

    fn reported_pair(options: &[Param]) -> Option<(usize, usize)> {
        let message = distinct(options, "a Choice").err()?;
        let words: Vec<&str> = message.split(' ').collect();
        Some((words[1].parse().unwrap(), words[3].parse().unwrap()))
    }

    fn option() -> impl Strategy<Value = Param> {
        let iv = |lo: i8, w: u8, int: bool| {
            // Width at least 1 keeps an integer inside an int interval.
            let lo = lo as f64 / 4.0;
            Param::Interval(Interval::new(lo, lo + 1.0 + w as f64 / 8.0, int, false).unwrap())
        };
        let leaf = prop_oneof![
            (-4i64..4).prop_map(|i| c(i.into())),
            (-8i64..8).prop_map(|i| c((i as f64 / 2.0).into())),
            "[ab]".prop_map(|t| c(t.into())),
            (-8i8..8, 0u8..8, any::<bool>()).prop_map(move |(lo, w, int)| iv(lo, w, int)),
        ];
        leaf.prop_recursive(2, 8, 2, |inner| {
            prop::collection::vec(inner, 1..3).prop_map(|ps| {
                Param::Map(
                    ps.into_iter()
                        .enumerate()
                        .map(|(i, p)| (format!("k{i}"), p))
                        .collect(),
                )
            })
        })
    }

    proptest! {
        #[test]
        fn distinct_reports_what_the_pairwise_definition_finds(
            options in prop::collection::vec(option(), 1..10)
        ) {
            prop_assert_eq!(reported_pair(&options), first_overlap_by_pairs(&options));
        }
    }

    #[test]
    fn fixed_options_are_compared_by_hash_not_pairwise() {
        // 20 000 distinct blocks of constants, as a big `hidden` list: no pairwise check at all.
        let block = |w: i64, a: &str| {
            Param::Map(vec![
                ("width".into(), c(w.into())),
                ("activation".into(), c(a.into())),
            ])
        };
        let acts = ["Tanh", "ReLU", "Sigmoid", "LeakyReLU"];
        let mut options: Vec<Param> = (0..20_000)
            .map(|i| block(1 + i / 4, acts[(i % 4) as usize]))
            .collect();
        OVERLAP_CHECKS.with(|n| n.set(0));
        assert!(distinct(&options, "a ChoiceList").is_ok());
        assert_eq!(OVERLAP_CHECKS.with(|n| n.get()), 0);
        // Three parameters among them: each fixed option meets each earlier parameter once, and
        // each parameter every earlier option; linear in the options.
        let iv = |lo: f64| Param::Interval(Interval::new(lo, lo + 1.0, false, false).unwrap());
        options.extend([iv(100.0), iv(200.0), iv(300.0)]);
        options.rotate_right(3);
        OVERLAP_CHECKS.with(|n| n.set(0));
        assert!(distinct(&options, "a ChoiceList").is_ok());
        let checks = OVERLAP_CHECKS.with(|n| n.get());
        assert!(
            checks <= 3 * options.len(),
            "{checks} checks for {} options",
            options.len()
        );
        // Numbers equal as numbers are the same value, 2 and 2.0 included.
        assert!(
            distinct(&[c(2.into()), c("2".into()), c(2.0.into())], "a Choice")
                .unwrap_err()
                .starts_with("options 0 and 2 ")
        );
    }

    #[test]
    fn sizes_are_refused_by_their_named_limits() {
        let two = || vec![c(1.into()), c(2.into())];
        assert!(ChoiceList::new(0, CL_LIST_LENGTH_MAX as i64 + 1, two()).is_ok());
        let e = ChoiceList::new(999, 1000, two()).unwrap_err();
        assert!(e.contains("CL_LIST_LENGTH_MAX"), "{e}");
        assert!(ChoiceList::new(0, i64::MAX, two())
            .unwrap_err()
            .contains("CL_LIST_LENGTH_MAX"));
        let many: Vec<Param> = (0..CL_LIST_LENGTH_MAX as i64 + 1)
            .map(|i| c(i.into()))
            .collect();
        let n = many.len() as i64;
        assert!(Subset::new(many, n)
            .unwrap_err()
            .contains("CL_LIST_LENGTH_MAX"));
        assert!(Partition::new(two(), 1 << 40)
            .unwrap_err()
            .contains("CL_PARTITION_MAX"));
        let options: Vec<Param> = (0..CL_OPTIONS_MAX as i64 + 1)
            .map(|i| c(i.into()))
            .collect();
        assert!(Param::choice(options)
            .unwrap_err()
            .contains("CL_OPTIONS_MAX"));
        let params: Vec<Param> = (0..CL_PARAM_OPTIONS_MAX + 1)
            .map(|i| {
                Param::Interval(Interval::new(i as f64, i as f64 + 1.0, false, false).unwrap())
            })
            .collect();
        assert!(Param::choice(params)
            .unwrap_err()
            .contains("CL_PARAM_OPTIONS_MAX"));
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
