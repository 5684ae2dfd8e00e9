//! Random search on the cell space: every proposal a uniformly random cell at the full budget
//! (the baseline of NAS-Bench-201's comparison, after Bergstra & Bengio 2012).

use anyhow::Result;
use rand_pcg::Pcg64;
use serde_json::Value;

use crate::cells::space::{propose, random_cell};
use crate::strategy::{Proposal, Strategy, Told};

/// Uniform random cells; it learns nothing.
pub struct RandomCells;

impl Strategy for RandomCells {
    fn name(&self) -> &'static str {
        "random"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        Ok((0..n).map(|_| propose(&random_cell(rng), None)).collect())
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        Ok(super::told(results))
    }

    fn state(&self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn restore(&mut self, _: &Value) -> Result<()> {
        Ok(())
    }
}
