//! Choice-list spaces under the common interfaces: as a `SearchSpace` of categorical decisions
//! (so the default run's controller searches them), and aging evolution and random search as
//! `Strategy`s (Real et al. 2019; hannah's parametrization, docs/algorithms.md §2).

use anyhow::Result;
use rand_pcg::Pcg64;
use serde_json::Value;

use super::evolution::{AgingEvolution, AskTell, RandomSearch};
use super::{decode, encode, max_decisions, max_options, next_options, Param};
use crate::mlp::MlpSpec;
use crate::space::SearchSpace;
use crate::strategy::Strategy;

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

    fn decode(&self, decisions: &[usize], n_in: usize, n_out: usize) -> MlpSpec {
        super::child::interpret(&self.config(decisions), n_in, n_out, &Default::default())
            .map(|(spec, _)| spec)
            .unwrap_or(MlpSpec {
                n_in,
                n_out,
                layers: vec![],
            })
    }
}

/// An ask/tell optimiser of `evolution.rs` as a `Strategy`.
pub struct AskTellStrategy<T: AskTell> {
    pub name: &'static str,
    pub inner: T,
}

impl<T: AskTell> Strategy for AskTellStrategy<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn ask(&mut self, n: usize, rng: &mut Pcg64) -> Result<Vec<Value>> {
        Ok((0..n).map(|_| self.inner.ask(rng)).collect())
    }

    fn tell(&mut self, results: &[(Value, f64)]) -> Result<()> {
        for (config, fitness) in results {
            self.inner.tell(config.clone(), *fitness)?;
        }
        Ok(())
    }
}

/// Aging evolution with the constants of config.rs.
pub fn evolution(param: &Param) -> Result<AskTellStrategy<AgingEvolution>> {
    use crate::config::{EVOLUTION_EPS, EVOLUTION_POPULATION, EVOLUTION_SAMPLE_SIZE};
    let inner = AgingEvolution::new(
        param.clone(),
        EVOLUTION_POPULATION,
        EVOLUTION_SAMPLE_SIZE,
        EVOLUTION_EPS,
    )?;
    Ok(AskTellStrategy {
        name: "evolution",
        inner,
    })
}

/// Uniform random sampling.
pub fn random(param: &Param) -> AskTellStrategy<RandomSearch> {
    AskTellStrategy {
        name: "random",
        inner: RandomSearch::new(param.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn space() -> ChoiceListSpace {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spaces/mlp.yaml");
        ChoiceListSpace::new(super::super::load(&path).unwrap(), 8)
    }

    #[test]
    fn the_controller_samples_valid_configurations_that_round_trip() {
        let space = space();
        let settings = crate::config::Settings::default();
        let mut rng = Pcg64::seed_from_u64(0);
        let mut r = crate::strategy::Reinforce::new(&space, &settings, &mut rng);
        for _ in 0..3 {
            let configs = r.ask(6, &mut rng).unwrap();
            for c in &configs {
                assert!(space.param.fits(c), "{c}");
                // The controller's decisions decode back to the configuration it sampled.
                let decisions = space.parse(&c.to_string()).unwrap();
                assert_eq!(&space.config(&decisions), c);
            }
            let results: Vec<(Value, f64)> = configs.into_iter().map(|c| (c, 0.5)).collect();
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
                    configs.iter().all(|c| space.param.fits(c)),
                    "{} round {round}",
                    s.name()
                );
                let results: Vec<(Value, f64)> = configs
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (c, i as f64 / 10.0))
                    .collect();
                s.tell(&results).unwrap();
            }
        }
    }
}
