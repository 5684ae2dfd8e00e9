//! Canonical form of a NAS-Bench-201 cell (Dong & Yang 2020 count 6 466 non-isomorphic cells
//! of 15 625): two cells are isomorphic when they compute the same function of the input.
//!
//! The rule is NAS-Bench-201's own, the one behind its published 6 466: each node's value is
//! written as an expression of the input `0`. An edge carrying `none`, or leaving a node whose
//! value is the bare zero `#`, contributes a zero placeholder `#`; `skip_connect` passes its
//! source's expression on unchanged (as one summand, not flattened); any other operation wraps
//! it as `(source)@op`. A node is the sum of its summands, sorted because a sum does not depend
//! on order. Only the output node's expression is kept, so nodes that do not reach the output
//! (and the operations on their edges) drop out. The placeholders keep the count of cut inputs
//! in the form, and a node whose inputs are all cut (`#+#`) is not the bare zero: that is how
//! NAS-Bench-201 counts. A stricter functional reduction (drop every zero, flatten every sum)
//! merges more cells: 4 930 classes (docs/algorithms.md §7).

use super::cell::{Cell, Op};
use super::config::NODES;

/// The canonical form of `cell`: equal for isomorphic cells, different otherwise.
pub fn canonical(cell: &Cell) -> String {
    const ZERO: &str = "#";
    let mut values: Vec<String> = vec!["0".to_string()];
    for to in 1..NODES {
        let mut summands: Vec<String> = (0..to)
            .map(|from| {
                let source = &values[from];
                match cell.op(to, from) {
                    _ if source == ZERO => ZERO.to_string(),
                    Op::None => ZERO.to_string(),
                    Op::SkipConnect => source.clone(),
                    op => format!("({source})@{}", op.name()),
                }
            })
            .collect();
        summands.sort();
        values.push(summands.join("+"));
    }
    values.pop().unwrap_or_default()
}

/// Number of non-isomorphic cells among all 15 625.
pub fn unique_count() -> usize {
    Cell::all()
        .map(|c| canonical(&c))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// The functional form of `cell`, stricter than NAS-Bench-201's: zeros dropped, sums flattened,
/// so cells that build the same network (the same operations on the same inputs, summed) share
/// it. Each node is a sorted multiset of terms; a term is the input `0` or `op(terms)`. A node
/// with no term is zero and so is the cell when its output node is. The archsearch table keys
/// its entries by this form: 4 930 classes (docs/algorithms.md §7).
pub fn functional(cell: &Cell) -> String {
    let mut values: Vec<Vec<String>> = vec![vec!["0".to_string()]];
    for to in 1..NODES {
        let mut terms: Vec<String> = Vec::new();
        for (from, source) in values.iter().enumerate() {
            if source.is_empty() {
                continue;
            }
            match cell.op(to, from) {
                Op::None => {}
                Op::SkipConnect => terms.extend(source.iter().cloned()),
                op => terms.push(format!("{}({})", op.name(), source.join("+"))),
            }
        }
        terms.sort();
        values.push(terms);
    }
    match values.pop() {
        Some(terms) if !terms.is_empty() => terms.join("+"),
        _ => "zero".to_string(),
    }
}

/// Number of functional classes among all 15 625 cells.
pub fn functional_count() -> usize {
    Cell::all()
        .map(|c| functional(&c))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::config::UNIQUE_CELLS;

    fn cell(text: &str) -> Cell {
        Cell::parse(text).unwrap()
    }

    #[test]
    fn functional_forms_merge_what_builds_the_same_network() {
        // x + x + conv(x), whichever nodes the terms pass through.
        let nested = cell("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|skip_connect~1|skip_connect~2|");
        let flat =
            cell("|skip_connect~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|skip_connect~1|skip_connect~2|");
        assert_eq!(functional(&nested), "0+0+nor_conv_3x3(0)");
        assert_eq!(functional(&nested), functional(&flat));
        // every cell without a path from the input is the one zero class.
        let zero_a = cell("|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|");
        let zero_b = cell("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        assert_eq!(functional(&zero_a), "zero");
        assert_eq!(functional(&zero_b), "zero");
        assert_ne!(canonical(&zero_a), canonical(&zero_b));
        // NAS-Bench-201's rule never merges what this form keeps apart.
        let mut by_form = std::collections::HashMap::new();
        for c in Cell::all() {
            let f = functional(&c);
            let k = canonical(&c);
            let previous = by_form.insert(k.clone(), f.clone());
            assert!(previous.is_none_or(|p| p == f), "{k}");
        }
        assert_eq!(functional_count(), crate::cells::config::FUNCTIONAL_CELLS);
    }

    #[test]
    fn unique_count_is_nas_bench_201s() {
        assert_eq!(unique_count(), UNIQUE_CELLS);
    }

    #[test]
    fn dead_node_does_not_matter() {
        // node 1 feeds nothing (both its out-edges are none): its own op is irrelevant.
        let a = cell("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|");
        let b = cell("|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|");
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn edge_from_a_zero_node_does_not_matter() {
        // node 1 is the bare zero (none from the input): whatever 2<-1 carries adds only zero.
        let a = cell("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|");
        let b = cell("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|");
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), "#+#+(#+0)@nor_conv_1x1");
    }

    #[test]
    fn order_of_summands_does_not_matter() {
        let a = cell("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|");
        let b = cell("|skip_connect~0|+|none~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|");
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn different_functions_differ() {
        let conv3 = cell("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|");
        let conv1 = cell("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|");
        assert_ne!(canonical(&conv3), canonical(&conv1));
        // conv then pool is not pool then conv.
        let a = cell("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|");
        let b = cell("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|");
        assert_ne!(canonical(&a), canonical(&b));
        // x + x (two skip paths) is not x.
        let twice = cell("|skip_connect~0|+|none~0|none~1|+|skip_connect~0|skip_connect~1|none~2|");
        let once = cell("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|");
        assert_ne!(canonical(&twice), canonical(&once));
    }

    #[test]
    fn hand_computed_form() {
        // node 1 = (0)@nor_conv_3x3; node 2 = # + (node 1) = #+(0)@nor_conv_3x3 sorted;
        // node 3 = (0)@avg_pool_3x3 + # + node 2 passed by skip.
        let c =
            cell("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|skip_connect~2|");
        assert_eq!(canonical(&c), "#+#+(0)@nor_conv_3x3+(0)@avg_pool_3x3");
    }
}
