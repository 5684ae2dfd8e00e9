//! Mutation of a configuration, per parameter type as hannah defines it (docs/algorithms.md
//! §2): a ChoiceList grows, shrinks or changes an element; an Interval takes a Gaussian step; a
//! Choice switches option (or mutates inside its option); a Subset changes one element; a
//! Partition moves one choice to another group. Every mutation keeps the configuration valid.
//!
//! One mutation changes one place: each node picks uniformly among the kinds of change it can
//! make, and a mapping picks uniformly among its children that can change.

use rand::{Rng, RngExt};
use serde_json::Value;

use super::check::option_of;
use super::param::{Config, Param};
use super::sample::{sample, sample_option};
use crate::error::UsageError;

/// A copy of `config` with one change; an error when `config` is not of this space.
/// A space with a single configuration gives `config` back unchanged.
pub fn mutate(
    space: &Param,
    config: &Config,
    rng: &mut (impl Rng + ?Sized),
) -> Result<Config, UsageError> {
    space.check(config)?;
    let mut child = config.clone();
    mutate_in(space, &mut child, rng);
    Ok(child)
}

/// Whether some change of `v` (of parameter `p`) is possible.
fn mutable(p: &Param, v: &Value) -> bool {
    let items = || v.as_array().map(Vec::as_slice).unwrap_or_default();
    match p {
        Param::Const(_) => false,
        Param::Choice(options) => slot_mutable(options, v),
        Param::ChoiceList(cl) => {
            let n = items().len();
            n + 1 < cl.max || n > cl.min || items().iter().any(|x| slot_mutable(&cl.choices, x))
        }
        Param::Interval(iv) => !iv.int || iv.int_bounds().0 < iv.int_bounds().1,
        Param::Subset(s) => items().iter().any(|x| slot_mutable(&s.choices, x)),
        Param::Partition(pt) => {
            let inner =
                |a: Vec<(usize, Value)>| a.iter().zip(&pt.choices).any(|((_, x), c)| mutable(c, x));
            pt.partition > 1 || pt.split(v).is_ok_and(inner)
        }
        Param::Map(entries) => entries
            .iter()
            .any(|(n, p)| v.get(n).is_some_and(|c| mutable(p, c))),
    }
}

/// Whether an element drawn from `options` can change: to another option, or inside its own.
fn slot_mutable(options: &[Param], v: &Value) -> bool {
    options.len() > 1 || option_of(options, v).is_some_and(|i| mutable(&options[i], v))
}

/// Index of a uniformly chosen `true` in `possible`.
fn pick(possible: &[bool], rng: &mut (impl Rng + ?Sized)) -> Option<usize> {
    let open: Vec<usize> = (0..possible.len()).filter(|&i| possible[i]).collect();
    match open.len() {
        0 => None,
        n => Some(open[rng.random_range(0..n)]),
    }
}

/// A uniform index of `0..n` other than `not`; needs `n >= 2`.
fn other(n: usize, not: usize, rng: &mut (impl Rng + ?Sized)) -> usize {
    let j = rng.random_range(0..n - 1);
    if j >= not {
        j + 1
    } else {
        j
    }
}

fn mutate_in(p: &Param, v: &mut Value, rng: &mut (impl Rng + ?Sized)) {
    match p {
        Param::Const(_) => {}
        Param::Choice(options) => mutate_slot(options, v, rng),
        Param::Interval(iv) => *v = iv.step(v, rng),
        Param::ChoiceList(cl) => {
            let Value::Array(items) = v else { return };
            let inner: Vec<usize> = (0..items.len())
                .filter(|&i| slot_mutable(&cl.choices, &items[i]))
                .collect();
            match pick(
                &[
                    items.len() + 1 < cl.max,
                    items.len() > cl.min,
                    !inner.is_empty(),
                ],
                rng,
            ) {
                Some(0) => {
                    let at = rng.random_range(0..=items.len());
                    items.insert(at, sample_option(&cl.choices, rng));
                }
                Some(1) => {
                    items.remove(rng.random_range(0..items.len()));
                }
                Some(_) => mutate_slot(
                    &cl.choices,
                    &mut items[inner[rng.random_range(0..inner.len())]],
                    rng,
                ),
                None => {}
            }
        }
        Param::Subset(s) => {
            let Value::Array(items) = v else { return };
            let inner: Vec<usize> = (0..items.len())
                .filter(|&i| slot_mutable(&s.choices, &items[i]))
                .collect();
            if !inner.is_empty() {
                mutate_slot(
                    &s.choices,
                    &mut items[inner[rng.random_range(0..inner.len())]],
                    rng,
                );
            }
        }
        Param::Partition(pt) => {
            let Ok(mut assigned) = pt.split(v) else {
                return;
            };
            let inner: Vec<usize> = (0..assigned.len())
                .filter(|&i| mutable(&pt.choices[i], &assigned[i].1))
                .collect();
            match pick(&[pt.partition > 1, !inner.is_empty()], rng) {
                Some(0) => {
                    let i = rng.random_range(0..assigned.len());
                    assigned[i].0 = other(pt.partition, assigned[i].0, rng);
                }
                Some(_) => {
                    let i = inner[rng.random_range(0..inner.len())];
                    mutate_in(&pt.choices[i], &mut assigned[i].1, rng);
                }
                None => return,
            }
            *v = pt.join(assigned);
        }
        Param::Map(entries) => {
            let open: Vec<&(String, Param)> = (entries.iter())
                .filter(|(n, p)| v.get(n).is_some_and(|c| mutable(p, c)))
                .collect();
            if open.is_empty() {
                return;
            }
            let (name, p) = open[rng.random_range(0..open.len())];
            if let Some(child) = v.get_mut(name) {
                mutate_in(p, child, rng);
            }
        }
    }
}

/// Changes an element drawn from `options`: a fresh sample of another option, or a mutation
/// inside its own option.
fn mutate_slot(options: &[Param], v: &mut Value, rng: &mut (impl Rng + ?Sized)) {
    let Some(i) = option_of(options, v) else {
        return;
    };
    match pick(&[options.len() > 1, mutable(&options[i], v)], rng) {
        Some(0) => *v = sample(&options[other(options.len(), i, rng)], rng),
        Some(_) => mutate_in(&options[i], v, rng),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::arbitrary::space;
    use super::super::sample::tests::within;
    use super::super::yaml::parse_space;
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;
    use serde_json::json;

    fn rng() -> Pcg64 {
        Pcg64::seed_from_u64(11)
    }

    #[test]
    fn list_mutations_grow_shrink_or_change_one_element_within_bounds() {
        let space = parse_space("l: {min: 1, max: 4, choices: [a, b, c]}").unwrap();
        let mut rng = rng();
        let (mut grew, mut shrank, mut changed) = (0, 0, 0);
        for start in [
            json!({"l": ["a"]}),
            json!({"l": ["a", "b"]}),
            json!({"l": ["a", "b", "c"]}),
        ] {
            let n = start["l"].as_array().unwrap().len();
            for _ in 0..300 {
                let child = mutate(&space, &start, &mut rng).unwrap();
                let m = child["l"].as_array().unwrap().len();
                assert!((1..4).contains(&m), "{child}");
                match m as i64 - n as i64 {
                    1 => grew += 1,
                    -1 => shrank += 1,
                    0 => {
                        let diff = (0..n).filter(|&i| child["l"][i] != start["l"][i]).count();
                        assert_eq!(diff, 1, "{start} -> {child}"); // another option, never the same
                        changed += 1;
                    }
                    _ => panic!("{start} -> {child}"),
                }
            }
        }
        // Length 1 can grow or change (1/2 each), 2 all three (1/3), 3 shrink or change (1/2).
        let expect = |x: f64| 300.0 * x;
        assert!(
            (grew as f64 - expect(0.5 + 1.0 / 3.0)).abs() < 40.0,
            "{grew}"
        );
        assert!(
            (shrank as f64 - expect(0.5 + 1.0 / 3.0)).abs() < 40.0,
            "{shrank}"
        );
        assert!(
            (changed as f64 - expect(1.0 + 1.0 / 3.0)).abs() < 40.0,
            "{changed}"
        );
    }

    #[test]
    fn choices_switch_partitions_move_one_choice_subsets_change_one_element() {
        let space = parse_space(
            "c: [x, y, z]\np: {choices: [a, b, c], partition: 3}\ns: {choices: [a, b], size: 2}",
        )
        .unwrap();
        let start = json!({"c": "x", "p": [["a", "b", "c"], [], []], "s": ["a", "a"]});
        let mut rng = rng();
        let mut seen = [0; 3];
        for _ in 0..600 {
            let child = mutate(&space, &start, &mut rng).unwrap();
            let changed: Vec<&str> = ["c", "p", "s"]
                .into_iter()
                .filter(|k| child[k] != start[k])
                .collect();
            assert_eq!(changed.len(), 1, "{child}");
            match changed[0] {
                "c" => seen[0] += 1,
                "p" => {
                    seen[1] += 1;
                    assert_eq!(child["p"][0].as_array().unwrap().len(), 2, "{child}");
                    // one moved out
                }
                _ => {
                    seen[2] += 1;
                    assert!(child["s"] == json!(["a", "b"]) || child["s"] == json!(["b", "a"]));
                }
            }
        }
        assert!(
            seen.iter().all(|&n| (n as f64 - 200.0).abs() < 45.0),
            "{seen:?}"
        );
    }

    #[test]
    fn a_space_with_one_configuration_gives_it_back_and_bad_configs_are_refused() {
        let space = parse_space("a: 1\nb: [only]\nn: {lower: 2, upper: 3, int: true}").unwrap();
        let c = json!({"a": 1, "b": "only", "n": 2});
        assert_eq!(mutate(&space, &c, &mut rng()).unwrap(), c);
        let err = mutate(&space, &json!({"a": 1, "b": "other", "n": 2}), &mut rng()).unwrap_err();
        assert!(err.0.starts_with("b: "), "{err}");
    }

    proptest! {
        #[test]
        fn every_mutation_keeps_a_configuration_valid(space in space(), seed in any::<u64>()) {
            let mut rng = Pcg64::seed_from_u64(seed);
            let mut c = sample(&space, &mut rng);
            for _ in 0..30 {
                c = mutate(&space, &c, &mut rng).map_err(|e| TestCaseError::fail(e.0))?;
                prop_assert!(within(&space, &c), "{c} outside {space:?}");
            }
        }
    }
}
