//! Random search spaces for property tests: every parameter type, nested up to three levels,
//! with options kept distinguishable (distinct constants, disjoint intervals, tagged mappings).

use proptest::prelude::*;
use serde_json::Value;

use super::param::{ChoiceList, Interval, Param, Partition, Subset};

fn interval() -> impl Strategy<Value = Param> {
    (-5.0..5.0f64, 1.0..10.0f64, any::<bool>(), any::<bool>()).prop_map(|(lo, width, int, log)| {
        // A log interval needs lower > 0; width >= 1 keeps an integer inside for `int`.
        let lo = if log { lo.exp() } else { lo };
        Param::Interval(Interval::new(lo, lo + width, int, log).expect("valid by construction"))
    })
}

fn leaf() -> impl Strategy<Value = Param> {
    prop_oneof![
        (-3i64..3).prop_map(|i| Param::Const(Value::from(i))),
        "[a-c]{1,2}".prop_map(|s| Param::Const(Value::from(s))),
        interval(),
    ]
}

/// 1 to 3 options that no value can match twice.
fn options(inner: BoxedStrategy<Param>) -> impl Strategy<Value = Vec<Param>> {
    prop_oneof![
        (1..4usize).prop_map(|n| (0..n as i64)
            .map(|i| Param::Const(Value::from(i)))
            .collect()),
        (1..4usize, any::<bool>()).prop_map(|(n, int)| {
            let lo = |i: usize| 10.0 * i as f64;
            let iv = |i| Interval::new(lo(i), lo(i) + 5.0, int, false).expect("valid");
            (0..n).map(|i| Param::Interval(iv(i))).collect()
        }),
        prop::collection::vec(inner, 1..4).prop_map(|ps| {
            let tag = |i: usize| Param::Const(Value::from(format!("op{i}")));
            let tagged = |(i, p)| Param::Map(vec![("_target_".into(), tag(i)), ("x".into(), p)]);
            ps.into_iter().enumerate().map(tagged).collect()
        }),
    ]
}

/// A valid search space.
pub(super) fn space() -> impl Strategy<Value = Param> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            options(inner.clone()).prop_map(|o| Param::choice(o).expect("distinct options")),
            (options(inner.clone()), 0..3i64, 1..4i64).prop_map(|(o, min, extra)| {
                Param::ChoiceList(ChoiceList::new(min, min + extra, o).expect("valid"))
            }),
            options(inner.clone())
                .prop_flat_map(|o| {
                    let n = o.len() as i64;
                    (Just(o), 1..=n)
                })
                .prop_map(|(o, size)| Param::Subset(Subset::new(o, size).expect("valid"))),
            (options(inner.clone()), 1..4i64)
                .prop_map(|(o, k)| Param::Partition(Partition::new(o, k).expect("valid"))),
            prop::collection::vec(inner, 1..4).prop_map(|ps| {
                Param::Map(
                    ps.into_iter()
                        .enumerate()
                        .map(|(i, p)| (format!("p{i}"), p))
                        .collect(),
                )
            }),
        ]
    })
}
