//! DEHB (Awad, Mallik & Hutter 2021, "DEHB: evolutionary Hyperband for scalable, robust and
//! efficient hyperparameter optimization") on the cell table: Hyperband's brackets
//! (`hyperband::plan`), with differential evolution in place of random sampling. Each cell is a
//! vector in [0,1]^6, edge e's operation the category floor(5 x_e); every budget keeps a
//! subpopulation. A rung evolves its budget's subpopulation: each target in turn gets a trial
//! made by rand/1 mutation (a + F (b - c), a coordinate that leaves [0,1] drawn anew) and
//! binomial crossover (rate CR, one coordinate always from the mutant), and the trial replaces
//! the target when its dev accuracy is at least as good. The mutants of a rung above a
//! bracket's first draw their parents from the best of the rung below (the configurations
//! successive halving would promote), topped up from every vector seen when fewer than three.
//! Until a budget has a subpopulation, its rung fills it: random vectors at a bracket's first
//! rung, the promoted ones above (the first bracket is plain successive halving, as in DEHB).

use std::collections::VecDeque;

use anyhow::Result;
use rand::{Rng, RngExt};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hyperband::plan;
use crate::cells::cell::{Cell, Op};
use crate::cells::config::{EDGES, OPS};
use crate::cells::space::propose;
use crate::strategy::{Proposal, Strategy, Told};

/// A point of the encoding.
pub type Vector = [f64; EDGES];

/// The cell of a vector: edge e carries operation floor(OPS x_e) (x_e = 1 counts as the last).
pub fn decode(x: &Vector) -> Cell {
    let mut ops = [Op::None; EDGES];
    for (o, &v) in ops.iter_mut().zip(x) {
        *o = Op::ALL[((v * OPS as f64).floor().max(0.0) as usize).min(OPS - 1)];
    }
    Cell { ops }
}

/// rand/1 mutation a + F (b - c); a coordinate outside [0,1] is drawn uniformly anew.
pub fn mutate(a: &Vector, b: &Vector, c: &Vector, f: f64, rng: &mut impl Rng) -> Vector {
    let mut v = [0.0; EDGES];
    for j in 0..EDGES {
        v[j] = a[j] + f * (b[j] - c[j]);
        if !(0.0..=1.0).contains(&v[j]) {
            v[j] = rng.random::<f64>();
        }
    }
    v
}

/// Binomial crossover: coordinate j from the mutant when `draws[j] < cr` or j = `forced`,
/// else from the target.
pub fn crossover(
    target: &Vector,
    mutant: &Vector,
    cr: f64,
    draws: &[f64; EDGES],
    forced: usize,
) -> Vector {
    let mut u = *target;
    for j in 0..EDGES {
        if draws[j] < cr || j == forced {
            u[j] = mutant[j];
        }
    }
    u
}

fn random_vector(rng: &mut impl Rng) -> Vector {
    let mut x = [0.0; EDGES];
    for v in x.iter_mut() {
        *v = rng.random::<f64>();
    }
    x
}

/// A vector and its dev accuracy at its subpopulation's budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub x: Vector,
    pub fitness: f64,
}

/// A configuration to evaluate in the current rung; `target` is the member of the budget's
/// subpopulation it competes with (None: it joins the subpopulation).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Job {
    x: Vector,
    target: Option<usize>,
}

/// DEHB as an ask/tell strategy, one configuration at a time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dehb {
    plan: Vec<Vec<(usize, usize)>>,
    f: f64,
    cr: f64,
    /// Subpopulation per budget, indexed by epochs.
    populations: Vec<Vec<Member>>,
    /// Next target per budget (targets are taken in turn).
    cursors: Vec<usize>,
    /// Every vector evaluated (the top-up pool for small parent pools).
    archive: Vec<Vector>,
    bracket: usize,
    rung: usize,
    started: bool,
    queue: VecDeque<Job>,
    asked: Vec<Job>,
    /// This rung's evaluated vectors and their fitness.
    results: Vec<Member>,
    /// The strategy as it was before the proposals not yet told (what `state` returns).
    #[serde(skip)]
    before_ask: Option<Box<Dehb>>,
}

impl Dehb {
    pub fn new(budgets: &[usize], eta: f64, f: f64, cr: f64) -> Result<Self> {
        if !(f > 0.0 && f <= 2.0 && (0.0..=1.0).contains(&cr)) {
            crate::usage_bail!("DEHB's mutation factor F = {f} must lie in (0, 2] and its crossover rate CR = {cr} in [0, 1] (Awad et al.: 0.5 and 0.5)");
        }
        let max = budgets.last().copied().unwrap_or(1);
        Ok(Dehb {
            plan: plan(budgets, eta)?,
            f,
            cr,
            populations: vec![Vec::new(); max + 1],
            cursors: vec![0; max + 1],
            archive: Vec::new(),
            bracket: 0,
            rung: 0,
            started: false,
            queue: VecDeque::new(),
            asked: Vec::new(),
            results: Vec::new(),
            before_ask: None,
        })
    }

    /// The subpopulation of a budget (epochs).
    pub fn population(&self, epochs: usize) -> &[Member] {
        &self.populations[epochs]
    }

    /// Three distinct parents from `pool`, topped up from the archive and random vectors.
    fn parents(&self, pool: &[Vector], rng: &mut Pcg64) -> [Vector; 3] {
        let mut pool = pool.to_vec();
        while pool.len() < 3 {
            pool.push(if self.archive.is_empty() {
                random_vector(rng)
            } else {
                self.archive[rng.random_range(0..self.archive.len())]
            });
        }
        let n = pool.len();
        let a = rng.random_range(0..n);
        let mut b = rng.random_range(0..n - 1);
        if b >= a {
            b += 1;
        }
        let mut c = rng.random_range(0..n - 2);
        for taken in [a.min(b), a.max(b)] {
            if c >= taken {
                c += 1;
            }
        }
        [pool[a], pool[b], pool[c]]
    }

    /// The jobs of `n` trials against the budget's subpopulation, parents from `pool`.
    fn evolve(
        &mut self,
        epochs: usize,
        n: usize,
        pool: &[Vector],
        rng: &mut Pcg64,
    ) -> VecDeque<Job> {
        let size = self.populations[epochs].len();
        (0..n)
            .map(|_| {
                let t = self.cursors[epochs] % size;
                self.cursors[epochs] = (t + 1) % size;
                let [a, b, c] = self.parents(pool, rng);
                let mutant = mutate(&a, &b, &c, self.f, rng);
                let mut draws = [0.0; EDGES];
                for d in draws.iter_mut() {
                    *d = rng.random::<f64>();
                }
                let forced = rng.random_range(0..EDGES);
                let x = crossover(
                    &self.populations[epochs][t].x,
                    &mutant,
                    self.cr,
                    &draws,
                    forced,
                );
                Job { x, target: Some(t) }
            })
            .collect()
    }

    /// Fills the queue with the next rung's jobs.
    fn advance(&mut self, rng: &mut Pcg64) {
        let next_rung = self.started && self.rung + 1 < self.plan[self.bracket].len();
        let promoted: Vec<Vector> = if next_rung {
            self.rung += 1;
            let keep = self.plan[self.bracket][self.rung].0;
            let mut ranked = std::mem::take(&mut self.results);
            ranked.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
            ranked.into_iter().take(keep).map(|m| m.x).collect()
        } else {
            if self.started {
                self.bracket = (self.bracket + 1) % self.plan.len();
            }
            self.started = true;
            self.rung = 0;
            Vec::new()
        };
        self.results.clear();
        let (n, epochs) = self.plan[self.bracket][self.rung];
        self.queue = if self.populations[epochs].is_empty() {
            if next_rung {
                promoted
                    .into_iter()
                    .map(|x| Job { x, target: None })
                    .collect()
            } else {
                (0..n)
                    .map(|_| Job {
                        x: random_vector(rng),
                        target: None,
                    })
                    .collect()
            }
        } else if next_rung {
            self.evolve(epochs, n, &promoted, rng)
        } else {
            let own: Vec<Vector> = self.populations[epochs].iter().map(|m| m.x).collect();
            self.evolve(epochs, n, &own, rng)
        };
    }

    fn epochs(&self) -> usize {
        self.plan[self.bracket][self.rung].1
    }
}

impl Strategy for Dehb {
    fn name(&self) -> &'static str {
        "dehb"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        // `state` must not change with an ask: keep the strategy as it was.
        if self.before_ask.is_none() {
            self.before_ask = Some(Box::new(self.clone()));
        }
        self.asked.clear();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if self.queue.is_empty() {
                anyhow::ensure!(
                    out.is_empty(),
                    "DEHB proposes one rung at a time; ask it for at most the rest of a rung"
                );
                self.advance(rng);
            }
            let Some(job) = self.queue.pop_front() else {
                anyhow::bail!("DEHB's rung is empty");
            };
            out.push(propose(&decode(&job.x), Some(self.epochs())));
            self.asked.push(job);
        }
        Ok(out)
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        anyhow::ensure!(
            results.len() == self.asked.len(),
            "tell() needs the results of the last ask()"
        );
        let epochs = self.epochs();
        for (job, (_, fitness)) in self.asked.iter().zip(results) {
            let member = Member {
                x: job.x,
                fitness: *fitness,
            };
            self.archive.push(job.x);
            self.results.push(member);
            let population = &mut self.populations[epochs];
            match job.target {
                Some(t) if population[t].fitness <= *fitness => population[t] = member,
                Some(_) => {}
                None => population.push(member),
            }
        }
        self.asked.clear();
        self.before_ask = None;
        Ok(super::told(results))
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(
            self.before_ask.as_deref().unwrap_or(self),
        )?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        *self = serde_json::from_value(state.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::space::proposed_cell;
    use rand::SeedableRng;

    #[test]
    fn rand_1_mutation_and_binomial_crossover_on_a_hand_example() {
        let mut rng = Pcg64::seed_from_u64(0);
        let a = [0.5, 0.2, 0.9, 0.1, 0.4, 0.6];
        let b = [0.7, 0.4, 0.1, 0.3, 0.4, 0.8];
        let c = [0.3, 0.0, 0.3, 0.1, 0.6, 0.2];
        // a + 0.5 (b - c) = [0.7, 0.4, 0.8, 0.2, 0.3, 0.9], all inside [0, 1].
        let v = mutate(&a, &b, &c, 0.5, &mut rng);
        let want = [0.7, 0.4, 0.8, 0.2, 0.3, 0.9];
        for j in 0..EDGES {
            assert!((v[j] - want[j]).abs() < 1e-12, "{v:?}");
        }
        // Out of bounds: 0.9 + 0.5 (0.9 - 0.1) = 1.3 is drawn anew inside [0, 1].
        let w = mutate(&[0.9; 6], &[0.9; 6], &[0.1; 6], 0.5, &mut rng);
        assert!(w
            .iter()
            .all(|x| (0.0..=1.0).contains(x) && (x - 1.3).abs() > 1e-9));
        // Crossover with CR 0.5: draws below 0.5 at 0 and 3, coordinate 5 forced.
        let target = [0.0; 6];
        let draws = [0.1, 0.7, 0.6, 0.2, 0.9, 0.8];
        let u = crossover(&target, &want, 0.5, &draws, 5);
        assert_eq!(u, [0.7, 0.0, 0.0, 0.2, 0.0, 0.9]);
        assert_eq!(
            crossover(&target, &want, 0.0, &[0.5; 6], 2),
            [0.0, 0.0, 0.8, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn decoding_maps_fifths_of_the_unit_interval_to_the_operations() {
        let cell = decode(&[0.0, 0.19, 0.2, 0.55, 0.79, 1.0]);
        assert_eq!(
            cell.ops,
            [
                Op::None,
                Op::None,
                Op::SkipConnect,
                Op::NorConv1x1,
                Op::NorConv3x3,
                Op::AvgPool3x3
            ]
        );
    }

    #[test]
    fn the_first_bracket_is_successive_halving_and_later_trials_compete_with_targets() {
        let mut dehb = Dehb::new(&[1, 2, 4, 8, 12], 3.0, 0.5, 0.5).unwrap();
        let mut rng = Pcg64::seed_from_u64(4);
        let fitness = |p: &Proposal| proposed_cell(p).unwrap().index() as f64;
        let step = |dehb: &mut Dehb, rng: &mut Pcg64| {
            let p = dehb.ask(1, rng).unwrap().remove(0);
            let f = fitness(&p);
            dehb.tell(&[(p.clone(), f)]).unwrap();
            (p, f)
        };
        let first: Vec<(Proposal, f64)> = (0..9).map(|_| step(&mut dehb, &mut rng)).collect();
        assert_eq!(dehb.population(1).len(), 9);
        let mut best: Vec<f64> = first.iter().map(|(_, f)| *f).collect();
        best.sort_by(|a, b| b.total_cmp(a));
        // Rung 2 at 4 epochs: the three best of rung 1, promoted unchanged.
        for want in &best[..3] {
            let (p, f) = step(&mut dehb, &mut rng);
            assert_eq!((p.budget, f), (Some(4.0), *want));
        }
        let (p, _) = step(&mut dehb, &mut rng);
        assert_eq!(p.budget, Some(12.0));
        // Bracket 2 starts at 4 epochs: 5 trials against the 3 members there; no member gets
        // worse, and the subpopulation keeps its size.
        let before: Vec<f64> = dehb.population(4).iter().map(|m| m.fitness).collect();
        for _ in 0..5 {
            let (p, _) = step(&mut dehb, &mut rng);
            assert_eq!(p.budget, Some(4.0));
        }
        let after: Vec<f64> = dehb.population(4).iter().map(|m| m.fitness).collect();
        assert_eq!(after.len(), 3);
        assert!(
            before.iter().zip(&after).all(|(b, a)| a >= b),
            "{before:?} {after:?}"
        );
    }
}
