//! Uniform sampling of a configuration from a search space, as hannah's `get_random` does
//! (docs/algorithms.md §2): every choice uniform, list lengths uniform in `[min, max)`.

use rand::{Rng, RngExt};
use serde_json::Value;

use super::param::{Config, Param};

/// A configuration drawn uniformly, parameter by parameter.
pub fn sample(space: &Param, rng: &mut (impl Rng + ?Sized)) -> Config {
    match space {
        Param::Const(v) => v.clone(),
        Param::Choice(options) => sample_option(options, rng),
        Param::ChoiceList(cl) => {
            let n = rng.random_range(cl.min..cl.max);
            Value::Array((0..n).map(|_| sample_option(&cl.choices, rng)).collect())
        }
        Param::Interval(iv) => iv.sample(rng),
        // With replacement, as hannah (numpy's `choice` default): repeats are possible.
        Param::Subset(s) => Value::Array(
            (0..s.size)
                .map(|_| sample_option(&s.choices, rng))
                .collect(),
        ),
        Param::Partition(p) => {
            let assigned = (p.choices.iter())
                .map(|c| (rng.random_range(0..p.partition), sample(c, rng)))
                .collect();
            p.join(assigned)
        }
        Param::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(name, p)| (name.clone(), sample(p, rng)))
                .collect(),
        ),
    }
}

/// A uniformly chosen option, itself sampled.
pub(super) fn sample_option(options: &[Param], rng: &mut (impl Rng + ?Sized)) -> Config {
    sample(&options[rng.random_range(0..options.len())], rng)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::arbitrary::space;
    use super::super::yaml::parse_space;
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    /// An oracle written apart from `Param::check`: bounds and lengths only.
    pub(in super::super) fn within(p: &Param, v: &Value) -> bool {
        let any = |options: &[Param], v: &Value| options.iter().any(|o| within(o, v));
        match (p, v) {
            (Param::Const(c), v) => c == v,
            (Param::Choice(options), v) => any(options, v),
            (Param::Interval(iv), Value::Number(n)) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                iv.lower <= x && x < iv.upper && (!iv.int || n.is_i64())
            }
            (Param::ChoiceList(cl), Value::Array(items)) => {
                cl.min <= items.len()
                    && items.len() < cl.max
                    && items.iter().all(|x| any(&cl.choices, x))
            }
            (Param::Subset(s), Value::Array(items)) => {
                items.len() == s.size && items.iter().all(|x| any(&s.choices, x))
            }
            (Param::Partition(pt), Value::Array(groups)) => {
                let items: Vec<&Value> = groups
                    .iter()
                    .filter_map(|g| g.as_array())
                    .flatten()
                    .collect();
                groups.len() == pt.partition
                    && items.len() == pt.choices.len()
                    && items.iter().all(|x| any(&pt.choices, x))
            }
            (Param::Map(entries), Value::Object(map)) => {
                map.len() == entries.len()
                    && entries
                        .iter()
                        .all(|(n, p)| map.get(n).is_some_and(|c| within(p, c)))
            }
            _ => false,
        }
    }

    #[test]
    fn list_lengths_cover_min_to_max_exclusive() {
        let space = parse_space("l: {min: 1, max: 4, choices: [a, b]}").unwrap();
        let mut rng = Pcg64::seed_from_u64(1);
        let mut counts = [0usize; 6];
        for _ in 0..3000 {
            counts[sample(&space, &mut rng)["l"].as_array().unwrap().len()] += 1;
        }
        assert_eq!((counts[0], counts[4], counts[5]), (0, 0, 0)); // max is exclusive
        for n in 1..4 {
            assert!(
                (counts[n] as f64 / 3000.0 - 1.0 / 3.0).abs() < 0.04,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn subsets_repeat_and_partitions_hold_every_choice_once() {
        let space =
            parse_space("s: {choices: [a, b, c], size: 3}\np: {choices: [a, b, c], partition: 2}")
                .unwrap();
        let mut rng = Pcg64::seed_from_u64(2);
        let mut repeats = 0;
        for _ in 0..500 {
            let c = sample(&space, &mut rng);
            let s = c["s"].as_array().unwrap();
            repeats += (s[0] == s[1] || s[1] == s[2] || s[0] == s[2]) as usize;
            let groups = c["p"].as_array().unwrap();
            let mut all: Vec<&str> = groups
                .iter()
                .flat_map(|g| g.as_array().unwrap())
                .map(|x| x.as_str().unwrap())
                .collect();
            all.sort();
            assert_eq!((groups.len(), all), (2, vec!["a", "b", "c"]));
        }
        // P(some repeat among 3 draws of 3) = 1 - 3!/27 = 7/9.
        assert!(
            (repeats as f64 / 500.0 - 7.0 / 9.0).abs() < 0.06,
            "{repeats}"
        );
    }

    proptest! {
        #[test]
        fn samples_respect_every_bound_and_length(space in space(), seed in any::<u64>()) {
            let mut rng = Pcg64::seed_from_u64(seed);
            for _ in 0..20 {
                let c = sample(&space, &mut rng);
                prop_assert!(within(&space, &c), "{c} outside {space:?}");
                prop_assert!(space.check(&c).is_ok(), "{:?}", space.check(&c));
            }
        }
    }
}
