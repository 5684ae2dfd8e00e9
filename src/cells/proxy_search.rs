//! Search on a training-free score, as the zero-cost proxy papers do it (Abdelfattah et al.
//! 2021; Mellor et al. 2021): random search (score `N` random cells, keep the best) and an
//! evolutionary search (a pool, a tournament, the winner's best-scoring one-edge neighbour
//! replaces the oldest, a random neighbour some of the time), optionally warmed up from the best
//! of a larger random sample. The cost of a search is the scoring it did: each distinct cell
//! scored once (docs/algorithms.md §8).

use std::collections::{HashSet, VecDeque};

use rand::seq::IndexedRandom;
use rand::{Rng, RngExt};

use super::cell::Cell;
use super::config::CELLS;

/// The evolutionary search's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct EvolutionSettings {
    pub pool: usize,
    pub tournament: usize,
    pub steps: usize,
    /// Chance that the child is a random neighbour instead of the best-scoring one.
    pub random_child: f64,
    /// Start from the best `pool` of this many random cells (0 = a random pool).
    pub warm_up: usize,
}

/// What a search found and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub cell: Cell,
    /// Distinct cells scored.
    pub scored: Vec<Cell>,
}

/// A score with non-finite values ranked below every finite one.
fn key(score: f64) -> f64 {
    if score.is_finite() {
        score
    } else {
        f64::NEG_INFINITY
    }
}

/// Remembers what was scored, so a cell scored twice costs once.
struct Scorer<'a> {
    score: &'a dyn Fn(&Cell) -> f64,
    seen: HashSet<Cell>,
    scored: Vec<Cell>,
}

impl Scorer<'_> {
    fn score(&mut self, cell: &Cell) -> f64 {
        if self.seen.insert(*cell) {
            self.scored.push(*cell);
        }
        key((self.score)(cell))
    }
}

/// A uniformly random cell among `pool` (or the whole space when it is empty).
fn random_cell(pool: &[Cell], rng: &mut impl Rng) -> Cell {
    match pool.choose(rng) {
        Some(c) => *c,
        None => Cell::from_index(rng.random_range(0..CELLS)).unwrap_or(Cell::all().next().unwrap()),
    }
}

/// Scores `n` random cells of `pool` (the whole space when empty) and keeps the best.
pub fn random_search(
    pool: &[Cell],
    score: &dyn Fn(&Cell) -> f64,
    n: usize,
    rng: &mut impl Rng,
) -> Found {
    let mut scorer = Scorer {
        score,
        seen: HashSet::new(),
        scored: Vec::new(),
    };
    let mut best: Option<(f64, Cell)> = None;
    for _ in 0..n.max(1) {
        let cell = random_cell(pool, rng);
        let s = scorer.score(&cell);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, cell));
        }
    }
    Found {
        cell: best
            .map(|(_, c)| c)
            .unwrap_or_else(|| random_cell(pool, rng)),
        scored: scorer.scored,
    }
}

/// The evolutionary search; the best-scoring cell it ever scored is what it found. `pool_of`
/// restricts cells to those a score exists for (empty = every cell).
pub fn evolution(
    pool_of: &[Cell],
    score: &dyn Fn(&Cell) -> f64,
    settings: EvolutionSettings,
    rng: &mut impl Rng,
) -> Found {
    let allowed: HashSet<Cell> = pool_of.iter().copied().collect();
    let ok = |c: &Cell| allowed.is_empty() || allowed.contains(c);
    let mut scorer = Scorer {
        score,
        seen: HashSet::new(),
        scored: Vec::new(),
    };
    let mut start: Vec<(f64, Cell)> = (0..settings.pool.max(settings.warm_up).max(1))
        .map(|_| {
            let c = random_cell(pool_of, rng);
            (scorer.score(&c), c)
        })
        .collect();
    if settings.warm_up > 0 {
        start.sort_by(|a, b| b.0.total_cmp(&a.0));
        start.truncate(settings.pool.max(1));
    }
    let mut best = start
        .iter()
        .copied()
        .fold(start[0], |b, x| if x.0 > b.0 { x } else { b });
    let mut pool: VecDeque<(f64, Cell)> = start.into();
    for _ in 0..settings.steps {
        let contenders: Vec<&(f64, Cell)> = pool
            .iter()
            .collect::<Vec<_>>()
            .sample(rng, settings.tournament.max(1))
            .copied()
            .collect();
        let winner =
            contenders
                .iter()
                .copied()
                .fold(*contenders[0], |b, x| if x.0 > b.0 { *x } else { b });
        let neighbours: Vec<Cell> = winner
            .1
            .neighbours()
            .into_iter()
            .filter(|c| ok(c))
            .collect();
        if neighbours.is_empty() {
            continue;
        }
        let child = if rng.random_bool(settings.random_child) {
            let c = *neighbours.choose(rng).unwrap_or(&winner.1);
            (scorer.score(&c), c)
        } else {
            neighbours.iter().map(|c| (scorer.score(c), *c)).fold(
                (f64::NEG_INFINITY, neighbours[0]),
                |b, x| if x.0 > b.0 { x } else { b },
            )
        };
        if child.0 > best.0 {
            best = child;
        }
        pool.pop_front();
        pool.push_back(child);
    }
    Found {
        cell: best.1,
        scored: scorer.scored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::cell::Op;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    /// A score whose optimum is the all-3x3-conv cell: the number of 3x3 convolutions.
    fn convs(cell: &Cell) -> f64 {
        cell.ops.iter().filter(|&&o| o == Op::NorConv3x3).count() as f64
    }

    #[test]
    fn random_search_keeps_the_best_it_scored_and_counts_each_cell_once() {
        let mut rng = Pcg64::seed_from_u64(1);
        let found = random_search(&[], &convs, 200, &mut rng);
        let best_seen = found.scored.iter().map(convs).fold(0.0, f64::max);
        assert_eq!(convs(&found.cell), best_seen);
        let distinct: HashSet<&Cell> = found.scored.iter().collect();
        assert_eq!(distinct.len(), found.scored.len());
    }

    #[test]
    fn evolution_climbs_to_the_optimum_of_a_smooth_score() {
        let settings = EvolutionSettings {
            pool: 16,
            tournament: 4,
            steps: 30,
            random_child: 0.25,
            warm_up: 0,
        };
        for seed in 0..5 {
            let found = evolution(&[], &convs, settings, &mut Pcg64::seed_from_u64(seed));
            assert_eq!(convs(&found.cell), 6.0, "seed {seed}");
        }
    }

    #[test]
    fn failed_scores_are_never_chosen() {
        let nan_for_convs = |c: &Cell| if convs(c) > 0.0 { f64::NAN } else { 1.0 };
        let found = random_search(&[], &nan_for_convs, 300, &mut Pcg64::seed_from_u64(3));
        assert_eq!(convs(&found.cell), 0.0);
    }
}
