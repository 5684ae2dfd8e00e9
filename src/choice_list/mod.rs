//! Hannah-style search spaces read from YAML (cargo feature `choice-list`), after the hannah
//! framework's legacy NAS parametrization (docs/algorithms.md §2): parameter types,
//! uniform sampling, mutation, a categorical decision encoding for an RL controller, and aging
//! evolution (Real et al. 2019) and random search as ask/tell strategies.
//!
//! A space file is one YAML document (see `spaces/mlp.yaml`):
//! - a scalar is a constant, copied into every configuration;
//! - a list is a Choice among its items (an item may itself be a parameter or a mapping);
//! - `{min, max, choices}` is a ChoiceList of `min..max` elements (max exclusive);
//! - `{lower, upper, int, log}` is an Interval `[lower, upper)` (`int`, `log` default false);
//! - `{choices, size}` is a Subset, `{choices, partition}` a Partition;
//! - any other mapping names its parameters; a configuration is the same mapping, sampled.
//!
//! Options of one Choice (or `choices` list) must be distinguishable: a value may fit only one,
//! so a configuration has exactly one decision sequence. Sampled configurations are JSON values.

mod check;
mod child;
pub mod configspace;
mod encode;
mod evolution;
mod interval;
mod mapping;
mod mutate;
mod param;
pub mod run;
mod sample;
pub mod strategy;
mod yaml;

#[cfg(test)]
mod arbitrary;

use std::path::Path;

pub use child::check_space;
pub use encode::{decode, encode, max_decisions, max_options, next_options, DecisionError};
pub use evolution::{AgingEvolution, Member, RandomSearch, EPS, POPULATION, SAMPLE_SIZE};
pub use interval::Interval;
pub use mutate::mutate;
pub use param::{ChoiceList, Config, Param, Partition, Subset};
pub use sample::sample;
pub use yaml::parse_space;

use crate::error::UsageError;

/// A whole search space: its root parameter (usually a mapping of named parameters).
pub type Space = Param;

/// Reads a search space from a YAML file; mistakes in the file are `UsageError`s naming it.
pub fn load(path: &Path) -> anyhow::Result<Space> {
    let text = read_space(path)?;
    parse_space(&text).map_err(|e| UsageError::new(format!("{}: {e}", path.display())).into())
}

/// The text of a space file, read no further than CL_SPACE_BYTES_MAX (a device such as
/// /dev/zero or a huge file is refused, not read to the end).
pub fn read_space(path: &Path) -> Result<String, UsageError> {
    use std::io::Read;
    let limit = crate::config::CL_SPACE_BYTES_MAX;
    let cannot = |e: std::io::Error| {
        UsageError::new(format!(
            "cannot read the search space {}: {e}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > limit {
        return Err(UsageError::new(format!(
            "{}: the space is larger than {limit} bytes (CL_SPACE_BYTES_MAX in src/config.rs)",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| UsageError::new(format!("{}: the space is not UTF-8 text", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Space {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("spaces")
            .join(name);
        load(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    #[test]
    fn the_mlp_space_reads_as_the_half_moon_default() {
        let Param::Map(entries) = shipped("mlp.yaml") else {
            panic!("a mapping")
        };
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["hidden", "learning_rate", "batch_size", "dropout"]);
        let Param::ChoiceList(hidden) = &entries[0].1 else {
            panic!("hidden: a ChoiceList")
        };
        assert_eq!(
            (hidden.min(), hidden.max(), hidden.choices().len()),
            (0, 4, 1)
        );
        let Param::Map(block) = &hidden.choices()[0] else {
            panic!("a block mapping")
        };
        let Param::Choice(widths) = &block[0].1 else {
            panic!("widths")
        };
        assert_eq!(widths.len(), 5);
        let Param::Interval(lr) = &entries[1].1 else {
            panic!("learning_rate")
        };
        assert_eq!(
            (lr.lower(), lr.upper(), lr.is_log(), lr.is_int()),
            (1e-4, 1e-1, true, false)
        );
        let Param::Interval(dropout) = &entries[3].1 else {
            panic!("dropout")
        };
        assert_eq!(
            (dropout.lower(), dropout.upper(), dropout.is_log()),
            (0.0, 0.5, false)
        );
    }

    #[test]
    fn the_wide_space_reads_and_samples() {
        use rand::SeedableRng;
        let space = shipped("wide.yaml");
        let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
        for _ in 0..100 {
            let c = sample(&space, &mut rng);
            assert!(space.check(&c).is_ok(), "{c}");
            let blocks = c["hidden"].as_array().expect("a ChoiceList");
            assert!((1..=5).contains(&blocks.len()), "{c}");
            for b in blocks {
                let width = b["width"].as_i64().expect("an int interval");
                assert!((2..=64).contains(&width), "{width}");
            }
            let dropout = c["dropout"].as_f64().expect("a number");
            assert!(
                dropout == 0.0 || (0.05..0.3).contains(&dropout),
                "{dropout}"
            );
        }
        assert!(load(Path::new("no/such/space.yaml")).is_err());
    }
}
