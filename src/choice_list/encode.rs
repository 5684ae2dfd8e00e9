//! A configuration as a sequence of categorical decisions, for an RL controller that only
//! learns how many options each step has (the controller of Zoph & Le 2016; docs/algorithms.md
//! §2.3).
//!
//! Order (depth first, mappings in file order): a Choice is its option's index, then the
//! chosen option's decisions; a ChoiceList is its length minus `min` (`max - min` options),
//! then per element the option index and that option's decisions; an Interval is one bin of
//! `bins` (equal bins of the log for a log interval; an int interval gets one option per
//! distinct integer under the bin centres); a Subset is `size` elements like a ChoiceList's;
//! a Partition is, per choice, its group then that choice's decisions. Constants take none.
//! Decisions with a single option are kept, so the order never depends on the space's sizes.

use serde_json::Value;
use std::fmt;

use super::check::option_of;
use super::param::{Config, Param};
use crate::error::UsageError;

/// Why a decision sequence does not describe a configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum DecisionError {
    /// Decision `position` is `decision`, but that step has only `options` options.
    OutOfRange {
        position: usize,
        decision: usize,
        options: usize,
    },
    /// More decisions are needed; the next one has `next_options` options.
    Incomplete { next_options: usize },
    /// The configuration was complete after `used` of the `given` decisions.
    TooLong { used: usize, given: usize },
}

impl fmt::Display for DecisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecisionError::OutOfRange {
                position,
                decision,
                options,
            } => {
                write!(
                    f,
                    "decision {position} is {decision}, but that step has {options} options"
                )
            }
            DecisionError::Incomplete { next_options } => {
                write!(
                    f,
                    "the decisions stop early; the next step has {next_options} options"
                )
            }
            DecisionError::TooLong { used, given } => {
                write!(
                    f,
                    "{given} decisions given, but the configuration is complete after {used}"
                )
            }
        }
    }
}

impl std::error::Error for DecisionError {}

/// The decisions of `config` as `(decision, options)` pairs; interval values go to their bin.
pub fn encode(
    space: &Param,
    config: &Config,
    bins: usize,
) -> Result<Vec<(usize, usize)>, UsageError> {
    space.check(config)?;
    let mut out = Vec::new();
    encode_at(space, config, bins.max(1), &mut out);
    Ok(out)
}

/// The configuration that `decisions` describe; interval bins decode to their centres.
pub fn decode(space: &Param, decisions: &[usize], bins: usize) -> Result<Config, DecisionError> {
    let mut cursor = Cursor { decisions, used: 0 };
    let config = decode_at(space, &mut cursor, bins.max(1))?;
    match cursor.used == decisions.len() {
        true => Ok(config),
        false => Err(DecisionError::TooLong {
            used: cursor.used,
            given: decisions.len(),
        }),
    }
}

/// Options of the decision after `prefix`, or `None` when `prefix` is a whole configuration.
pub fn next_options(
    space: &Param,
    prefix: &[usize],
    bins: usize,
) -> Result<Option<usize>, DecisionError> {
    match decode(space, prefix, bins) {
        Ok(_) => Ok(None),
        Err(DecisionError::Incomplete { next_options }) => Ok(Some(next_options)),
        Err(e) => Err(e),
    }
}

/// The most decisions any configuration takes (bins do not change the count); saturates
/// instead of overflowing on absurdly nested lists.
pub fn max_decisions(space: &Param) -> usize {
    let most = |ps: &[Param]| ps.iter().map(max_decisions).max().unwrap_or(0);
    let sum = |it: &mut dyn Iterator<Item = usize>| it.fold(0usize, usize::saturating_add);
    match space {
        Param::Const(_) => 0,
        Param::Choice(options) => most(options).saturating_add(1),
        Param::ChoiceList(cl) => (cl.max - 1)
            .saturating_mul(most(&cl.choices).saturating_add(1))
            .saturating_add(1),
        Param::Interval(_) => 1,
        Param::Subset(s) => s.size.saturating_mul(most(&s.choices).saturating_add(1)),
        Param::Partition(p) => {
            sum(&mut p.choices.iter().map(|c| max_decisions(c).saturating_add(1)))
        }
        Param::Map(entries) => sum(&mut entries.iter().map(|(_, p)| max_decisions(p))),
    }
}

/// The most options any single decision has (a controller's output size).
pub fn max_options(space: &Param, bins: usize) -> usize {
    let most = |ps: &[Param]| ps.iter().map(|p| max_options(p, bins)).max().unwrap_or(0);
    match space {
        Param::Const(_) => 0,
        Param::Choice(options) => options.len().max(most(options)),
        Param::ChoiceList(cl) => (cl.max - cl.min)
            .max(cl.choices.len())
            .max(most(&cl.choices)),
        Param::Interval(iv) => iv.options(bins.max(1)),
        Param::Subset(s) => s.choices.len().max(most(&s.choices)),
        Param::Partition(p) => p.partition.max(most(&p.choices)),
        Param::Map(entries) => entries
            .iter()
            .map(|(_, p)| max_options(p, bins))
            .max()
            .unwrap_or(0),
    }
}

/// Appends the decisions of `v`, which `check` has accepted.
fn encode_at(p: &Param, v: &Value, bins: usize, out: &mut Vec<(usize, usize)>) {
    let items = || v.as_array().map(Vec::as_slice).unwrap_or_default();
    match p {
        Param::Const(_) => {}
        Param::Choice(options) => encode_option(options, v, bins, out),
        Param::ChoiceList(cl) => {
            out.push((items().len() - cl.min, cl.max - cl.min));
            items()
                .iter()
                .for_each(|x| encode_option(&cl.choices, x, bins, out));
        }
        Param::Interval(iv) => out.push((iv.bin_of(v, bins), iv.options(bins))),
        Param::Subset(s) => items()
            .iter()
            .for_each(|x| encode_option(&s.choices, x, bins, out)),
        Param::Partition(pt) => {
            for ((group, x), choice) in pt.split(v).unwrap_or_default().iter().zip(&pt.choices) {
                out.push((*group, pt.partition));
                encode_at(choice, x, bins, out);
            }
        }
        Param::Map(entries) => {
            for (name, p) in entries {
                encode_at(p, v.get(name).unwrap_or(&Value::Null), bins, out);
            }
        }
    }
}

fn encode_option(options: &[Param], v: &Value, bins: usize, out: &mut Vec<(usize, usize)>) {
    let i = option_of(options, v).unwrap_or(0); // checked: exactly one option fits
    out.push((i, options.len()));
    encode_at(&options[i], v, bins, out);
}

/// Reads decisions one at a time.
struct Cursor<'a> {
    decisions: &'a [usize],
    used: usize,
}

impl Cursor<'_> {
    fn take(&mut self, options: usize) -> Result<usize, DecisionError> {
        match self.decisions.get(self.used) {
            None => Err(DecisionError::Incomplete {
                next_options: options,
            }),
            Some(&d) if d >= options => Err(DecisionError::OutOfRange {
                position: self.used,
                decision: d,
                options,
            }),
            Some(&d) => {
                self.used += 1;
                Ok(d)
            }
        }
    }
}

fn decode_at(p: &Param, cur: &mut Cursor, bins: usize) -> Result<Value, DecisionError> {
    Ok(match p {
        Param::Const(v) => v.clone(),
        Param::Choice(options) => decode_option(options, cur, bins)?,
        Param::ChoiceList(cl) => {
            let n = cl.min + cur.take(cl.max - cl.min)?;
            let items = (0..n).map(|_| decode_option(&cl.choices, cur, bins));
            Value::Array(items.collect::<Result<_, _>>()?)
        }
        Param::Interval(iv) => iv.level(cur.take(iv.options(bins))?, bins),
        Param::Subset(s) => {
            let items = (0..s.size).map(|_| decode_option(&s.choices, cur, bins));
            Value::Array(items.collect::<Result<_, _>>()?)
        }
        Param::Partition(pt) => {
            let mut assigned = Vec::with_capacity(pt.choices.len());
            for choice in &pt.choices {
                let group = cur.take(pt.partition)?;
                assigned.push((group, decode_at(choice, cur, bins)?));
            }
            pt.join(assigned)
        }
        Param::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (name, p) in entries {
                map.insert(name.clone(), decode_at(p, cur, bins)?);
            }
            Value::Object(map)
        }
    })
}

fn decode_option(options: &[Param], cur: &mut Cursor, bins: usize) -> Result<Value, DecisionError> {
    let i = cur.take(options.len())?;
    decode_at(&options[i], cur, bins)
}

#[cfg(test)]
mod tests {
    use super::super::arbitrary::space;
    use super::super::sample::sample;
    use super::super::yaml::parse_space;
    use super::*;
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64;
    use serde_json::json;

    #[test]
    fn the_mlp_space_encodes_as_computed_by_hand() {
        let space = parse_space(include_str!("../../spaces/mlp.yaml")).unwrap();
        let lr = 10f64.powf(-2.5); // centre of the middle of 3 log bins over 1e-4..1e-1
        let hidden =
            json!([{"width": 8, "activation": "Tanh"}, {"width": 1, "activation": "LeakyReLU"}]);
        let c = json!({"hidden": hidden,
                       "learning_rate": lr, "batch_size": 64, "dropout": 5.0 / 12.0});
        // hidden: length 2 of 0..=3 (4 options); per block: its only option, width, activation.
        let want = vec![
            (2, 4),
            (0, 1),
            (3, 5),
            (1, 4),
            (0, 1),
            (0, 5),
            (3, 4),
            (1, 3),
            (2, 3),
            (2, 3),
        ];
        assert_eq!(encode(&space, &c, 3).unwrap(), want);
        let back = decode(&space, &want.iter().map(|d| d.0).collect::<Vec<_>>(), 3).unwrap();
        assert!((back["learning_rate"].as_f64().unwrap() / lr - 1.0).abs() < 1e-12);
        assert_eq!(back["hidden"], c["hidden"]);
        assert_eq!(
            (max_decisions(&space), max_options(&space, 3)),
            (1 + 3 * 3 + 3, 5)
        );
        assert_eq!(next_options(&space, &[2, 0, 3], 3), Ok(Some(4)));
        assert_eq!(next_options(&space, &[0], 3), Ok(Some(3))); // no blocks: learning rate next
        assert_eq!(next_options(&space, &[0, 1, 1, 1], 3), Ok(None));
        assert_eq!(
            decode(&space, &[4], 3),
            Err(DecisionError::OutOfRange {
                position: 0,
                decision: 4,
                options: 4
            })
        );
        assert_eq!(
            decode(&space, &[0, 1, 1, 1, 0], 3),
            Err(DecisionError::TooLong { used: 4, given: 5 })
        );
    }

    proptest! {
        #[test]
        fn decisions_round_trip(space in space(), seed in any::<u64>(), bins in 1usize..6) {
            let mut rng = Pcg64::seed_from_u64(seed);
            // A controller's walk: each step uniform among the options next_options reports.
            let mut d = Vec::new();
            let bad = |e: DecisionError| TestCaseError::fail(e.to_string());
            while let Some(n) = next_options(&space, &d, bins).map_err(bad)? {
                prop_assert!(n >= 1 && n <= max_options(&space, bins));
                d.push(rng.random_range(0..n));
            }
            prop_assert!(d.len() <= max_decisions(&space));
            let c = decode(&space, &d, bins).map_err(bad)?;
            let e = encode(&space, &c, bins).map_err(|e| TestCaseError::fail(e.0))?;
            let first = |e: &[(usize, usize)]| e.iter().map(|x| x.0).collect::<Vec<_>>();
            prop_assert_eq!(first(&e), d.clone()); // encode(decode(d)) == d
            for (k, &(_, n)) in e.iter().enumerate() {
                prop_assert_eq!(next_options(&space, &d[..k], bins), Ok(Some(n)));
            }
            // A sampled configuration moves to its bins' centres, which then stay put:
            // encode(c) is unchanged and decode(encode(c)) == c.
            let s = sample(&space, &mut rng);
            let e = encode(&space, &s, bins).map_err(|e| TestCaseError::fail(e.0))?;
            let c = decode(&space, &first(&e), bins).map_err(bad)?;
            let again = encode(&space, &c, bins).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(&again, &e);
            prop_assert_eq!(decode(&space, &first(&again), bins), Ok(c));
        }
    }
}
