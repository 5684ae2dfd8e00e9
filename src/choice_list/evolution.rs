//! Aging (regularized) evolution, Real et al. 2019, as hannah runs it (docs/algorithms.md
//! §2), and random search, both strategies of the one search loop (`crate::strategy::Strategy`):
//! configurations are proposed one at a time and each fitness is recorded back. Higher fitness
//! is better.

use anyhow::Result;
use rand::{Rng, RngExt};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;

use super::mutate::mutate;
use super::param::{Config, Param};
use super::sample::sample;
use crate::error::UsageError;
use crate::strategy::{Proposal, Strategy, Told};

pub use crate::config::{
    EVOLUTION_EPS as EPS, EVOLUTION_POPULATION as POPULATION, EVOLUTION_SAMPLE_SIZE as SAMPLE_SIZE,
};

/// An evaluated configuration (a NaN fitness, a failed evaluation, is kept as JSON null).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub config: Config,
    #[serde(with = "nan_as_null")]
    pub fitness: f64,
}

/// JSON has no NaN: a NaN fitness is written as null and read back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// NaN (a failed evaluation) ranks below everything.
fn rank(fitness: f64) -> f64 {
    if fitness.is_nan() {
        f64::NEG_INFINITY
    } else {
        fitness
    }
}

fn keep_best(best: &mut Option<Member>, member: &Member) {
    if best
        .as_ref()
        .is_none_or(|b| rank(member.fitness) > rank(b.fitness))
    {
        *best = Some(member.clone());
    }
}

/// Aging evolution: the population is a queue; children replace the oldest member, not the
/// worst, so that a lucky evaluation cannot stay forever (the regularisation of the paper).
#[derive(Clone, Debug)]
pub struct AgingEvolution {
    space: Param,
    population_size: usize,
    sample_size: usize,
    eps: f64,
    population: VecDeque<Member>,
    best: Option<Member>,
}

impl AgingEvolution {
    /// Checks `population_size >= 1`, `sample_size >= 1` and `0 <= eps <= 1`.
    pub fn new(
        space: Param,
        population_size: usize,
        sample_size: usize,
        eps: f64,
    ) -> Result<Self, UsageError> {
        if population_size == 0 || sample_size == 0 {
            crate::usage_bail!(
                "aging evolution needs a population and a sample size of 1 or more \
                 (hannah: 100 and 20)"
            );
        }
        if !(0.0..=1.0).contains(&eps) {
            crate::usage_bail!(
                "eps is a probability, found {eps}; use a value in 0..=1 (hannah: 0.1)"
            );
        }
        Ok(AgingEvolution {
            space,
            population_size,
            sample_size,
            eps,
            population: VecDeque::new(),
            best: None,
        })
    }

    /// The current population, oldest first.
    pub fn population(&self) -> &VecDeque<Member> {
        &self.population
    }
}

impl AgingEvolution {
    /// Random samples until `population_size` results are back; then, with probability `eps`,
    /// a random sample, else a mutation of the fittest of `sample_size` members drawn uniformly
    /// with replacement (as in the paper's pseudocode).
    pub fn propose<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Config {
        let n = self.population.len();
        if n < self.population_size || rng.random_bool(self.eps) {
            return sample(&self.space, rng);
        }
        let drawn = (0..self.sample_size).map(|_| &self.population[rng.random_range(0..n)]);
        let parent = drawn.max_by(|a, b| rank(a.fitness).total_cmp(&rank(b.fitness)));
        match parent.map(|p| mutate(&self.space, &p.config, rng)) {
            Some(Ok(child)) => child,
            _ => sample(&self.space, rng), // unreachable: members were checked by `tell`
        }
    }

    /// Appends the member and drops the oldest once the population is over size.
    pub fn record(&mut self, config: Config, fitness: f64) -> Result<(), UsageError> {
        self.space.check(&config)?;
        let member = Member { config, fitness };
        keep_best(&mut self.best, &member);
        self.population.push_back(member);
        if self.population.len() > self.population_size {
            self.population.pop_front();
        }
        Ok(())
    }

    /// The fittest configuration recorded so far.
    pub fn best(&self) -> Option<&Member> {
        self.best.as_ref()
    }
}

/// Random search: every configuration a uniform sample.
#[derive(Clone, Debug)]
pub struct RandomSearch {
    space: Param,
    best: Option<Member>,
}

impl RandomSearch {
    /// Random search over `space`.
    pub fn new(space: Param) -> Self {
        RandomSearch { space, best: None }
    }
}

impl RandomSearch {
    pub fn propose<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Config {
        sample(&self.space, rng)
    }

    pub fn record(&mut self, config: Config, fitness: f64) -> Result<(), UsageError> {
        self.space.check(&config)?;
        keep_best(&mut self.best, &Member { config, fitness });
        Ok(())
    }

    /// The fittest configuration recorded so far.
    pub fn best(&self) -> Option<&Member> {
        self.best.as_ref()
    }
}

/// Records each told fitness in turn; the rewards are the fitnesses themselves.
fn record_all(
    results: &[(Proposal, f64)],
    mut record: impl FnMut(Config, f64) -> Result<(), UsageError>,
) -> Result<Told> {
    for (p, fitness) in results {
        record(p.config.clone(), *fitness)?;
    }
    Ok(Told {
        rewards: results.iter().map(|(_, f)| *f).collect(),
        ..Told::default()
    })
}

/// What a checkpoint keeps of either strategy.
#[derive(Serialize, Deserialize)]
struct Saved {
    population: Vec<Member>,
    best: Option<Member>,
}

impl Strategy for AgingEvolution {
    fn name(&self) -> &'static str {
        "evolution"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        Ok((0..n).map(|_| Proposal::of(self.propose(rng))).collect())
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        record_all(results, |c, f| self.record(c, f))
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(Saved {
            population: self.population.iter().cloned().collect(),
            best: self.best.clone(),
        })?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        let saved: Saved = serde_json::from_value(state.clone())?;
        anyhow::ensure!(
            saved.population.len() <= self.population_size,
            "a population of {} where the strategy keeps {}",
            saved.population.len(),
            self.population_size
        );
        self.population = saved.population.into();
        self.best = saved.best;
        Ok(())
    }
}

impl Strategy for RandomSearch {
    fn name(&self) -> &'static str {
        "random"
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Proposal>> {
        Ok((0..n).map(|_| Proposal::of(self.propose(rng))).collect())
    }

    fn tell(&mut self, results: &[(Proposal, f64)]) -> Result<Told> {
        record_all(results, |c, f| self.record(c, f))
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(Saved {
            population: Vec::new(),
            best: self.best.clone(),
        })?)
    }

    fn restore(&mut self, state: &Value) -> Result<()> {
        let saved: Saved = serde_json::from_value(state.clone())?;
        self.best = saved.best;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse_space;
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;
    use serde_json::json;

    fn fitnesses(ev: &AgingEvolution) -> Vec<f64> {
        ev.population().iter().map(|m| m.fitness).collect()
    }

    #[test]
    fn a_restored_evolution_proposes_what_the_original_proposes() {
        let space = parse_space("l: {min: 0, max: 10, choices: [a]}").unwrap();
        let mut a = AgingEvolution::new(space.clone(), 4, 2, 0.2).unwrap();
        let mut rng = Pcg64::seed_from_u64(2);
        for i in 0..6 {
            let c = a.propose(&mut rng);
            let f = if i == 3 { f64::NAN } else { i as f64 };
            a.record(c, f).unwrap();
        }
        let mut b = AgingEvolution::new(space, 4, 2, 0.2).unwrap();
        b.restore(&a.state().unwrap()).unwrap();
        assert_eq!(b.population().len(), 4);
        assert!(b.population()[1].fitness.is_nan(), "NaN survives as null");
        let mut rng_b = rng.clone();
        for _ in 0..20 {
            assert_eq!(a.propose(&mut rng), b.propose(&mut rng_b));
        }
    }

    #[test]
    fn the_oldest_member_leaves_not_the_worst() {
        let space = parse_space("x: {lower: 0, upper: 1}").unwrap();
        let mut ev = AgingEvolution::new(space, 3, 2, 0.1).unwrap();
        for (x, f) in [(0.1, 9.0), (0.2, 1.0), (0.3, 2.0), (0.4, 0.0)] {
            ev.record(json!({"x": x}), f).unwrap();
        }
        assert_eq!(fitnesses(&ev), vec![1.0, 2.0, 0.0]); // 9.0 was oldest; 0.0, the worst, stays
        ev.record(json!({"x": 0.5}), f64::NAN).unwrap();
        assert_eq!(ev.population()[0].config, json!({"x": 0.3}));
        assert_eq!(ev.best().map(|m| m.fitness), Some(9.0)); // the best ever, aged out or not
        assert!(ev
            .record(json!({"x": 2.0}), 1.0)
            .unwrap_err()
            .0
            .starts_with("x: "));
    }

    /// Lengths 0..=9 of one constant: a child differs from its parent by one in length.
    fn lengths_after(population: &[(usize, f64)], sample_size: usize, eps: f64) -> Vec<usize> {
        let space = parse_space("l: {min: 0, max: 10, choices: [a]}").unwrap();
        let mut ev = AgingEvolution::new(space, population.len(), sample_size, eps).unwrap();
        for &(n, f) in population {
            ev.record(json!({"l": vec!["a"; n]}), f).unwrap();
        }
        let mut rng = Pcg64::seed_from_u64(5);
        (0..300)
            .map(|_| ev.propose(&mut rng)["l"].as_array().unwrap().len())
            .collect()
    }

    #[test]
    fn children_are_mutations_of_the_tournament_winner() {
        // The fittest is the oldest. 60 draws from 3 miss it with probability (2/3)^60 < 1e-10;
        // at length 9 (max - 1) it can only shrink.
        let members = [(9, 5.0), (1, 0.0), (5, 1.0)];
        assert!(lengths_after(&members, 60, 0.0).iter().all(|&n| n == 8));
        // One draw: a uniform parent, so children of all three (0|2, 4|6, 8) appear.
        let one = lengths_after(&members, 1, 0.0);
        for (lo, hi) in [(0, 2), (4, 6), (8, 8)] {
            let share = one.iter().filter(|&&n| n == lo || n == hi).count() as f64 / 300.0;
            assert!((share - 1.0 / 3.0).abs() < 0.08, "{lo}|{hi}: {share}");
        }
        // eps = 1: only random samples, lengths uniform in 0..=9.
        let random = lengths_after(&members, 60, 1.0);
        let mean = random.iter().sum::<usize>() as f64 / 300.0;
        assert!((mean - 4.5).abs() < 0.5, "{mean}");
    }

    #[test]
    fn the_population_fills_with_random_samples_first_and_random_search_keeps_the_best() {
        let space = parse_space("l: {min: 0, max: 10, choices: [a]}").unwrap();
        let mut ev = AgingEvolution::new(space.clone(), 3, 20, 0.0).unwrap();
        let mut rng = Pcg64::seed_from_u64(9);
        ev.record(json!({"l": vec!["a"; 9]}), 1.0).unwrap();
        let lengths: Vec<usize> = (0..200)
            .map(|_| ev.propose(&mut rng)["l"].as_array().unwrap().len())
            .collect();
        assert!(lengths.iter().any(|&n| n < 7)); // not yet mutating the one member
        let mut rs = RandomSearch::new(space);
        for f in [0.3, 0.9, f64::NAN, 0.5] {
            let c = rs.propose(&mut rng);
            rs.record(c, f).unwrap();
        }
        assert_eq!(rs.best().map(|m| m.fitness), Some(0.9));
        assert!(AgingEvolution::new(Param::Const(json!(1)), 0, 20, 0.1).is_err());
        assert!(AgingEvolution::new(Param::Const(json!(1)), 10, 20, 1.5).is_err());
    }
}
