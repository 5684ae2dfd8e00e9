//! The NAS-Bench-201 cell (Dong & Yang 2020): 4 nodes, 6 edges, 5 operations; its string form
//! `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` and its index in 0..15625.

use super::config::{CELLS, EDGES, NODES, OPS};
use anyhow::Result;
use std::fmt;

/// An operation on an edge, in NAS-Bench-201's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    None,
    SkipConnect,
    NorConv1x1,
    NorConv3x3,
    AvgPool3x3,
}

impl Op {
    /// All operations, in index order.
    pub const ALL: [Op; OPS] = [
        Op::None,
        Op::SkipConnect,
        Op::NorConv1x1,
        Op::NorConv3x3,
        Op::AvgPool3x3,
    ];

    /// NAS-Bench-201's name of the operation.
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::NorConv1x1 => "nor_conv_1x1",
            Op::NorConv3x3 => "nor_conv_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// The operation of a name, if it is one.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Position in `Op::ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Edges in NAS-Bench-201's order, as (to, from): 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
pub const EDGE_LIST: [(usize, usize); EDGES] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// Position of edge `to <- from` in `EDGE_LIST` (from < to < NODES).
pub fn edge_index(to: usize, from: usize) -> usize {
    to * (to - 1) / 2 + from
}

/// A cell: one operation per edge, in `EDGE_LIST` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub ops: [Op; EDGES],
}

impl Cell {
    /// The cell of an index in 0..15625: the edges' operation indices as base-5 digits, the
    /// first edge (1<-0) the most significant.
    pub fn from_index(index: usize) -> Result<Cell> {
        if index >= CELLS {
            crate::usage_bail!(
                "cell index {index} is out of range: there are {CELLS} cells, 0..{}",
                CELLS - 1
            );
        }
        let mut ops = [Op::None; EDGES];
        let mut rest = index;
        for e in (0..EDGES).rev() {
            ops[e] = Op::ALL[rest % OPS];
            rest /= OPS;
        }
        Ok(Cell { ops })
    }

    /// The index of the cell (inverse of `from_index`).
    pub fn index(&self) -> usize {
        self.ops.iter().fold(0, |acc, op| acc * OPS + op.index())
    }

    /// Every cell, in index order.
    pub fn all() -> impl Iterator<Item = Cell> {
        (0..CELLS).map(|i| {
            let mut ops = [Op::None; EDGES];
            let mut rest = i;
            for e in (0..EDGES).rev() {
                ops[e] = Op::ALL[rest % OPS];
                rest /= OPS;
            }
            Cell { ops }
        })
    }

    /// The 24 cells that differ from this one in exactly one edge's operation.
    pub fn neighbours(&self) -> Vec<Cell> {
        let mut out = Vec::with_capacity(EDGES * (OPS - 1));
        for e in 0..EDGES {
            for op in Op::ALL {
                if op != self.ops[e] {
                    let mut c = *self;
                    c.ops[e] = op;
                    out.push(c);
                }
            }
        }
        out
    }

    /// The operation on edge `to <- from`.
    pub fn op(&self, to: usize, from: usize) -> Op {
        self.ops[edge_index(to, from)]
    }

    /// Parses NAS-Bench-201's string form `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    pub fn parse(text: &str) -> Result<Cell> {
        let text = text.trim();
        let groups: Vec<&str> = text.split('+').collect();
        if groups.len() != NODES - 1 {
            crate::usage_bail!(
                "cell string `{text}` has {} node groups; a NAS-Bench-201 cell has {} joined by `+`, like `|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|`",
                groups.len(),
                NODES - 1
            );
        }
        let mut ops = [Op::None; EDGES];
        for (g, group) in groups.iter().enumerate() {
            let to = g + 1;
            let inner = match group.strip_prefix('|').and_then(|s| s.strip_suffix('|')) {
                Some(inner) => inner,
                None => crate::usage_bail!(
                    "node {to}'s group `{group}` in cell string `{text}` must start and end with `|`"
                ),
            };
            let items: Vec<&str> = inner.split('|').collect();
            if items.len() != to {
                crate::usage_bail!(
                    "node {to}'s group `{group}` in cell string `{text}` has {} edges; node {to} takes one edge from each of nodes 0..{}",
                    items.len(),
                    to - 1
                );
            }
            for (from, item) in items.iter().enumerate() {
                let Some((name, source)) = item.split_once('~') else {
                    crate::usage_bail!("edge `{item}` of node {to} in cell string `{text}` must read `operation~source`, like `nor_conv_3x3~{from}`");
                };
                let Some(op) = Op::from_name(name) else {
                    crate::usage_bail!(
                        "unknown operation `{name}` on edge {to}<-{from} in cell string `{text}`; use one of {}",
                        Op::ALL.map(|o| o.name()).join(", ")
                    );
                };
                if source != from.to_string() {
                    crate::usage_bail!(
                        "edge `{item}` of node {to} in cell string `{text}` names source `{source}`; the edges of a node are listed by source in order, so this one must be `~{from}`"
                    );
                }
                ops[edge_index(to, from)] = op;
            }
        }
        Ok(Cell { ops })
    }
}

impl fmt::Display for Cell {
    /// NAS-Bench-201's string form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for to in 1..NODES {
            if to > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..to {
                write!(f, "{}~{}|", self.op(to, from).name(), from)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_index_matches_edge_list() {
        for (i, &(to, from)) in EDGE_LIST.iter().enumerate() {
            assert_eq!(edge_index(to, from), i);
        }
    }

    #[test]
    fn string_form_of_a_hand_made_cell() {
        // Written by hand from NAS-Bench-201's layout: node 1 from 0; node 2 from 0, 1; node 3 from 0, 1, 2.
        let cell = Cell {
            ops: [
                Op::NorConv3x3,
                Op::None,
                Op::SkipConnect,
                Op::AvgPool3x3,
                Op::NorConv1x1,
                Op::NorConv3x3,
            ],
        };
        let text = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|";
        assert_eq!(cell.to_string(), text);
        assert_eq!(Cell::parse(text).unwrap(), cell);
        // digits 3,0,1,4,2,3 in base 5
        assert_eq!(cell.index(), ((((3 * 5) * 5 + 1) * 5 + 4) * 5 + 2) * 5 + 3);
    }

    #[test]
    fn index_and_string_round_trip_over_all_cells() {
        let mut seen = std::collections::HashSet::new();
        for (i, cell) in Cell::all().enumerate() {
            assert_eq!(cell.index(), i);
            assert_eq!(Cell::from_index(i).unwrap(), cell);
            assert_eq!(Cell::parse(&cell.to_string()).unwrap(), cell);
            assert!(seen.insert(cell.to_string()));
        }
        assert_eq!(seen.len(), CELLS);
        assert!(Cell::from_index(CELLS).is_err());
    }

    #[test]
    fn bad_strings_name_the_problem() {
        let cases = [
            ("|none~0|+|none~0|none~1|", "2 node groups"),
            ("|none~0|+|none~0|none~1|+|none~0|none~1|", "has 2 edges"),
            (
                "|none~0|+|none~0|conv~1|+|none~0|none~1|none~2|",
                "unknown operation `conv`",
            ),
            (
                "|none~0|+|none~1|none~0|+|none~0|none~1|none~2|",
                "must be `~0`",
            ),
            (
                "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "start and end with `|`",
            ),
            (
                "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "operation~source",
            ),
        ];
        for (text, want) in cases {
            let err = Cell::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "`{text}`: {err}");
            assert!(err.contains(text), "`{text}`: {err}");
        }
    }
}
