//! Regularised (aging) evolution on the cell space, Real et al. 2019 ("Regularized evolution
//! for image classifier architecture search") as NAS-Bench-201 runs it: a population of P
//! cells; each child mutates one edge of the best of S members drawn at random to a different
//! operation; the child joins and the OLDEST member leaves, whatever its fitness.

use std::collections::VecDeque;

use anyhow::Result;
use rand::{Rng, RngExt};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cells::cell::{Cell, Op};
use crate::cells::config::{EDGES, OPS};
use crate::cells::space::{propose, proposed_cell, random_cell};
use crate::strategy::{Proposal, Strategy, Told};

/// A cell (by index) and its fitness.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub cell: usize,
    pub fitness: f64,
}

/// Regularised evolution: random cells until the population is full, then mutants.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegularisedEvolution {
    population_size: usize,
    sample_size: usize,
    /// Oldest first.
    population: VecDeque<Member>,
}

/// `cell` with one edge, drawn uniformly, changed to one of the other operations.
pub fn mutate_one_edge(cell: &Cell, rng: &mut impl Rng) -> Cell {
    let mut child = *cell;
    let e = rng.random_range(0..EDGES);
    let shift = rng.random_range(1..OPS);
    child.ops[e] = Op::ALL[(cell.ops[e].index() + shift) % OPS];
    child
}

impl RegularisedEvolution {
    pub fn new(population_size: usize, sample_size: usize) -> Self {
        RegularisedEvolution {
            population_size: population_size.max(1),
            sample_size: sample_size.max(1),
            population: VecDeque::new(),
        }
    }

    /// The population, oldest first.
    pub fn population(&self) -> &VecDeque<Member> {
        &self.population
    }

    fn propose(&self, rng: &mut Pcg64) -> Result<Cell> {
        let n = self.population.len();
        if n < self.population_size {
            return Ok(random_cell(rng));
        }
        let mut parent = self.population[rng.random_range(0..n)];
        for _ in 1..self.sample_size {
            let m = self.population[rng.random_range(0..n)];
            if m.fitness > parent.fitness {
                parent = m;
            }
        }
        Ok(mutate_one_edge(&Cell::from_index(parent.cell)?, rng))
    }
}

impl Strategy for RegularisedEvolution {
    fn name(&self) -> &'static str {
        "evolution"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        (0..n)
            .map(|_| Ok(propose(&self.propose(rng)?, None)))
            .collect()
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        for (p, fitness) in results {
            let cell = proposed_cell(p)?.index();
            self.population.push_back(Member {
                cell,
                fitness: *fitness,
            });
            if self.population.len() > self.population_size {
                self.population.pop_front();
            }
        }
        Ok(super::told(results))
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(self)?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        *self = serde_json::from_value(state.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::space::propose;
    use rand::SeedableRng;

    #[test]
    fn the_oldest_leaves_not_the_worst() {
        let mut ea = RegularisedEvolution::new(3, 2);
        let cells: Vec<Cell> = (0..4).map(|i| Cell::from_index(i * 100).unwrap()).collect();
        // The oldest is the best (0.9); the worst (0.1) is second.
        for (c, f) in cells.iter().zip([0.9, 0.1, 0.5, 0.3]) {
            ea.tell(&[(propose(c, None), f)]).unwrap();
        }
        let left: Vec<(usize, f64)> = ea
            .population()
            .iter()
            .map(|m| (m.cell, m.fitness))
            .collect();
        assert_eq!(left, vec![(100, 0.1), (200, 0.5), (300, 0.3)]);
    }

    #[test]
    fn a_mutant_differs_from_its_parent_in_exactly_one_edge() {
        let mut rng = Pcg64::seed_from_u64(1);
        let mut changed = [0usize; EDGES];
        for i in 0..2000 {
            let parent = Cell::from_index(i * 7).unwrap();
            let child = mutate_one_edge(&parent, &mut rng);
            let diff: Vec<usize> = (0..EDGES)
                .filter(|&e| parent.ops[e] != child.ops[e])
                .collect();
            assert_eq!(diff.len(), 1);
            changed[diff[0]] += 1;
        }
        assert!(
            changed.iter().all(|&c| c > 200),
            "every edge mutates: {changed:?}"
        );
    }

    #[test]
    fn children_come_from_the_best_of_the_sample() {
        // Sample size = population: the parent is always the best member, so every child is
        // one edge away from it.
        let mut ea = RegularisedEvolution::new(4, 50);
        for (i, f) in [0.2, 0.8, 0.1, 0.3].into_iter().enumerate() {
            ea.tell(&[(propose(&Cell::from_index(i * 1000).unwrap(), None), f)])
                .unwrap();
        }
        let best = Cell::from_index(1000).unwrap();
        let mut rng = Pcg64::seed_from_u64(2);
        for _ in 0..50 {
            let child = proposed_cell(&ea.ask(1, &mut rng).unwrap()[0]).unwrap();
            assert_eq!(
                (0..EDGES).filter(|&e| child.ops[e] != best.ops[e]).count(),
                1
            );
        }
    }
}
