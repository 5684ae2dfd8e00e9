//! The cell space as a `SearchSpace` (six categorical decisions, one operation per edge in
//! NAS-Bench-201's edge order), so the GRU controller and the one loop's strategies can search
//! it; and the small conversions every cell optimiser shares.

use anyhow::Result;
use rand::RngExt;
use serde_json::Value;

use super::cell::{Cell, Op};
use super::config::{EDGES, OPS};
use super::configspace::{cell_to_config, config_to_cell};
use crate::space::SearchSpace;
use crate::strategy::Proposal;

/// The NAS-Bench-201 cell space: decision `e` is the operation (index into `Op::ALL`) of edge
/// `EDGE_LIST[e]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CellSpace;

/// The one instance strategies borrow.
pub static SPACE: CellSpace = CellSpace;

/// The cell of six decisions (None unless there are six, each below `OPS`).
pub fn cell_of(decisions: &[usize]) -> Option<Cell> {
    if decisions.len() != EDGES || decisions.iter().any(|&d| d >= OPS) {
        return None;
    }
    let mut ops = [Op::None; EDGES];
    for (o, &d) in ops.iter_mut().zip(decisions) {
        *o = Op::ALL[d];
    }
    Some(Cell { ops })
}

/// The decisions of a cell.
pub fn decisions_of(cell: &Cell) -> [usize; EDGES] {
    cell.ops.map(Op::index)
}

/// A uniformly random cell.
pub fn random_cell(rng: &mut impl rand::Rng) -> Cell {
    let mut ops = [Op::None; EDGES];
    for o in ops.iter_mut() {
        *o = Op::ALL[rng.random_range(0..OPS)];
    }
    Cell { ops }
}

/// The proposal of a cell at a budget in epochs (None: the table's full budget).
pub fn propose(cell: &Cell, epochs: Option<usize>) -> Proposal {
    Proposal {
        config: cell_to_config(cell),
        budget: epochs.map(|e| e as f64),
        seed: None,
    }
}

/// The cell of a proposal's configuration.
pub fn proposed_cell(proposal: &Proposal) -> Result<Cell> {
    config_to_cell(&proposal.config)
}

impl SearchSpace for CellSpace {
    fn vocabulary(&self) -> usize {
        OPS
    }

    fn max_decisions(&self) -> usize {
        EDGES
    }

    fn is_complete(&self, decisions: &[usize]) -> bool {
        decisions.len() >= EDGES
    }

    fn describe(&self, decisions: &[usize]) -> String {
        match cell_of(decisions) {
            Some(cell) => cell.to_string(),
            None => format!("{decisions:?}"),
        }
    }

    fn to_json(&self, decisions: &[usize]) -> Value {
        match cell_of(decisions) {
            Some(cell) => cell_to_config(&cell),
            None => Value::String(self.describe(decisions)),
        }
    }

    fn parse(&self, text: &str) -> Option<Vec<usize>> {
        Cell::parse(text).ok().map(|c| decisions_of(&c).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_and_cells_round_trip_through_the_space() {
        for cell in Cell::all().step_by(97) {
            let d = decisions_of(&cell);
            assert_eq!(cell_of(&d), Some(cell));
            assert_eq!(SPACE.parse(&SPACE.describe(&d)), Some(d.to_vec()));
            assert_eq!(config_to_cell(&SPACE.to_json(&d)).unwrap(), cell);
            assert!(SPACE.is_complete(&d) && !SPACE.is_complete(&d[..5]));
        }
        assert_eq!(cell_of(&[0, 1, 2, 3, 4, 5]), None);
        assert_eq!(cell_of(&[0, 1]), None);
    }
}
