//! Choice-list spaces under the common interfaces: as a `SearchSpace` of categorical decisions
//! (so the default run's controller searches them), and aging evolution and random search as
//! `Strategy`s (Real et al. 2019; hannah's parametrization, docs/algorithms.md §2).

use anyhow::Result;
use serde_json::Value;

use super::evolution::{AgingEvolution, RandomSearch};
use super::{decode, encode, max_decisions, max_options, next_options, Param};
use crate::space::SearchSpace;

/// A choice-list space seen as sequences of categorical decisions (Intervals cut into `bins`).
pub struct ChoiceListSpace {
    pub param: Param,
    pub bins: usize,
    vocabulary: usize,
}

impl ChoiceListSpace {
    pub fn new(param: Param, bins: usize) -> Self {
        let vocabulary = max_options(&param, bins).max(1);
        ChoiceListSpace {
            param,
            bins,
            vocabulary,
        }
    }

    /// The configuration of complete decisions (null if they are not complete and valid).
    pub fn config(&self, decisions: &[usize]) -> Value {
        decode(&self.param, decisions, self.bins).unwrap_or(Value::Null)
    }
}

impl SearchSpace for ChoiceListSpace {
    fn vocabulary(&self) -> usize {
        self.vocabulary
    }

    fn max_decisions(&self) -> usize {
        max_decisions(&self.param)
    }

    fn options_at(&self, decisions: &[usize]) -> usize {
        match next_options(&self.param, decisions, self.bins) {
            Ok(Some(n)) => n,
            _ => self.vocabulary,
        }
    }

    fn is_complete(&self, decisions: &[usize]) -> bool {
        !matches!(next_options(&self.param, decisions, self.bins), Ok(Some(_)))
    }

    fn describe(&self, decisions: &[usize]) -> String {
        self.config(decisions).to_string()
    }

    fn to_json(&self, decisions: &[usize]) -> Value {
        self.config(decisions)
    }

    fn parse(&self, text: &str) -> Option<Vec<usize>> {
        let config: Value = serde_json::from_str(text).ok()?;
        encode(&self.param, &config, self.bins)
            .ok()
            .map(|d| d.into_iter().map(|(choice, _)| choice).collect())
    }
}

/// Aging evolution with the constants of config.rs.
pub fn evolution(param: &Param) -> Result<AgingEvolution> {
    use crate::config::{EVOLUTION_EPS, EVOLUTION_POPULATION, EVOLUTION_SAMPLE_SIZE};
    Ok(AgingEvolution::new(
        param.clone(),
        EVOLUTION_POPULATION,
        EVOLUTION_SAMPLE_SIZE,
        EVOLUTION_EPS,
    )?)
}

/// Uniform random sampling.
pub fn random(param: &Param) -> RandomSearch {
    RandomSearch::new(param.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    fn space() -> ChoiceListSpace {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spaces/mlp.yaml");
        ChoiceListSpace::new(super::super::load(&path).unwrap(), 8)
    }

    #[test]
    fn the_controller_samples_valid_configurations_that_round_trip() {
        let space = space();
        let settings = crate::config::Settings::default();
        let mut rng = Pcg64::seed_from_u64(0);
        let mut r = crate::strategy::Reinforce::new(&space, &settings, tch::Device::Cpu, &mut rng);
        for _ in 0..3 {
            let proposals = r.ask(6, &mut rng).unwrap();
            for p in &proposals {
                let c = &p.config;
                assert!(space.param.fits(c), "{c}");
                // The controller's decisions decode back to the configuration it sampled.
                let decisions = space.parse(&c.to_string()).unwrap();
                assert_eq!(&space.config(&decisions), c);
            }
            let results: Vec<_> = proposals.into_iter().map(|p| (p, 0.5)).collect();
            r.tell(&results).unwrap();
        }
    }

    #[test]
    fn every_strategy_asks_for_valid_configurations() {
        let space = space();
        let mut rng = Pcg64::seed_from_u64(1);
        let mut strategies: Vec<Box<dyn Strategy>> = vec![
            Box::new(evolution(&space.param).unwrap()),
            Box::new(random(&space.param)),
        ];
        for s in strategies.iter_mut() {
            for round in 0..30 {
                let configs = s.ask(8, &mut rng).unwrap();
                assert!(
                    configs.iter().all(|p| space.param.fits(&p.config)),
                    "{} round {round}",
                    s.name()
                );
                let results: Vec<_> = configs
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (c, i as f64 / 10.0))
                    .collect();
                s.tell(&results).unwrap();
            }
        }
    }
}
