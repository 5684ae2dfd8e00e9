//! A choice-list space as a ConfigSpace configuration space (the automl ConfigSpace project's
//! JSON layout, as its 1.2 writer lays it out), and a configuration of the space as the flat
//! hyperparameter values ConfigSpace and DeepCAVE expect (docs/formats.md, "choice-list spaces
//! in ConfigSpace").
//!
//! Hyperparameters are named by their key path, joined with `/`:
//! - a Choice among scalars is a categorical over those scalars; a Choice with structured
//!   options is a categorical over option indices, each option's own parameters below `PATH/J`
//!   active only when the index is J (an EQ condition); a Choice of one option adds nothing;
//! - an Interval is a `uniform_float`, or a `uniform_int` over its integers, `log` kept;
//! - a ChoiceList of `min..max` elements has `PATH/length` (categorical over the lengths) when
//!   the length varies, and element K at `PATH/K`, active when the length exceeds K (IN);
//! - a Subset's K-th element is at `PATH/K`; a Partition's choice I has its group at `PATH/I`
//!   (categorical over 0..partition) and its own parameters below `PATH/I/value`;
//! - constants and mappings add no hyperparameter (a mapping's entries are `PATH/NAME`).

use serde_json::{json, Map, Value};

use super::check::option_of;
use super::param::Param;
use crate::config::CL_CONFIGSPACE_FORMAT_VERSION;
use crate::output::deepcave::{Objective, Optimize, Status, Trial};
use crate::output::record::Record;

/// The condition a hyperparameter is active under: the nearest decision above it.
#[derive(Clone, Debug)]
enum Cond {
    Eq(String, Value),
    In(String, Vec<Value>),
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

/// The scalars of a Choice whose options are all string or number constants.
fn scalar_choices(options: &[Param]) -> Option<Vec<Value>> {
    options
        .iter()
        .map(|o| match o {
            Param::Const(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

struct Builder {
    hyperparameters: Vec<Value>,
    conditions: Vec<Value>,
}

impl Builder {
    fn add(&mut self, hp: Value, cond: &Option<Cond>) {
        let child = hp["name"].clone();
        self.hyperparameters.push(hp);
        match cond {
            None => {}
            Some(Cond::Eq(parent, value)) => self
                .conditions
                .push(json!({"child": child, "parent": parent, "value": value, "type": "EQ"})),
            Some(Cond::In(parent, values)) => self
                .conditions
                .push(json!({"child": child, "parent": parent, "values": values, "type": "IN"})),
        }
    }

    fn categorical(&mut self, name: &str, choices: Vec<Value>, cond: &Option<Cond>) {
        let default = choices[0].clone();
        self.add(
            json!({"name": name, "type": "categorical", "choices": choices, "weights": null,
                   "default_value": default, "meta": null}),
            cond,
        );
    }

    fn walk(&mut self, p: &Param, path: &str, cond: &Option<Cond>) {
        match p {
            Param::Const(_) => {}
            Param::Map(entries) => {
                for (name, child) in entries {
                    self.walk(child, &join(path, name), cond);
                }
            }
            Param::Interval(iv) => {
                let (lower, upper, log) = (iv.lower(), iv.upper(), iv.is_log());
                let hp = if iv.is_int() {
                    let (lo, hi) = (lower.ceil() as i64, upper.ceil() as i64 - 1);
                    let mid = if log {
                        ((lo as f64).ln() / 2.0 + (hi as f64).ln() / 2.0)
                            .exp()
                            .round() as i64
                    } else {
                        (lo + hi) / 2
                    };
                    json!({"name": path, "type": "uniform_int", "lower": lo, "upper": hi,
                           "default_value": mid.clamp(lo, hi), "log": log, "meta": null})
                } else {
                    let mid = if log {
                        (lower.ln() / 2.0 + upper.ln() / 2.0).exp()
                    } else {
                        lower / 2.0 + upper / 2.0
                    };
                    json!({"name": path, "type": "uniform_float", "lower": lower,
                           "upper": upper, "default_value": mid, "log": log, "meta": null})
                };
                self.add(hp, cond);
            }
            Param::Choice(options) => self.choice(options, path, cond),
            Param::ChoiceList(cl) => {
                let (min, max) = (cl.min(), cl.max());
                let length = join(path, "length");
                if max - min > 1 {
                    self.categorical(&length, (min..max).map(|n| json!(n)).collect(), cond);
                }
                for k in 0..max.saturating_sub(1) {
                    let element = if k < min || max - min <= 1 {
                        cond.clone()
                    } else {
                        let longer = (k + 1..max).map(|n| json!(n)).collect();
                        Some(Cond::In(length.clone(), longer))
                    };
                    self.choice(cl.choices(), &join(path, &k.to_string()), &element);
                }
            }
            Param::Subset(s) => {
                for k in 0..s.size() {
                    self.choice(s.choices(), &join(path, &k.to_string()), cond);
                }
            }
            Param::Partition(pt) => {
                for (i, choice) in pt.choices().iter().enumerate() {
                    let name = join(path, &i.to_string());
                    let groups = (0..pt.partition()).map(|g| json!(g)).collect();
                    self.categorical(&name, groups, cond);
                    self.walk(choice, &join(&name, "value"), cond);
                }
            }
        }
    }

    fn choice(&mut self, options: &[Param], path: &str, cond: &Option<Cond>) {
        if options.len() == 1 {
            return self.walk(&options[0], path, cond);
        }
        if let Some(scalars) = scalar_choices(options) {
            return self.categorical(path, scalars, cond);
        }
        self.categorical(path, (0..options.len()).map(|j| json!(j)).collect(), cond);
        for (j, option) in options.iter().enumerate() {
            let under = Some(Cond::Eq(path.to_string(), json!(j)));
            self.walk(option, &join(path, &j.to_string()), &under);
        }
    }
}

/// The space in ConfigSpace's JSON layout, named `name`.
pub fn configspace_json(space: &Param, name: &str) -> Value {
    let mut b = Builder {
        hyperparameters: Vec::new(),
        conditions: Vec::new(),
    };
    b.walk(space, "", &None);
    json!({
        "name": name,
        "hyperparameters": b.hyperparameters,
        "conditions": b.conditions,
        "forbiddens": [],
        "format_version": CL_CONFIGSPACE_FORMAT_VERSION,
    })
}

/// The active hyperparameters' values of `config`, a configuration of `space` (the names of
/// `configspace_json`); None when `config` does not belong to the space.
pub fn flatten(space: &Param, config: &Value) -> Option<Map<String, Value>> {
    if !space.fits(config) {
        return None;
    }
    let mut out = Map::new();
    values(space, config, "", &mut out)?;
    Some(out)
}

fn values(p: &Param, v: &Value, path: &str, out: &mut Map<String, Value>) -> Option<()> {
    match p {
        Param::Const(_) => {}
        Param::Map(entries) => {
            for (name, child) in entries {
                values(child, v.get(name)?, &join(path, name), out)?;
            }
        }
        Param::Interval(_) => {
            out.insert(path.to_string(), v.clone());
        }
        Param::Choice(options) => choice_values(options, v, path, out)?,
        Param::ChoiceList(cl) => {
            let items = v.as_array()?;
            if cl.max() - cl.min() > 1 {
                out.insert(join(path, "length"), json!(items.len()));
            }
            for (k, item) in items.iter().enumerate() {
                choice_values(cl.choices(), item, &join(path, &k.to_string()), out)?;
            }
        }
        Param::Subset(s) => {
            for (k, item) in v.as_array()?.iter().enumerate() {
                choice_values(s.choices(), item, &join(path, &k.to_string()), out)?;
            }
        }
        Param::Partition(pt) => {
            let split = pt.split(v).ok()?;
            for (i, (group, value)) in split.iter().enumerate() {
                let name = join(path, &i.to_string());
                out.insert(name.clone(), json!(group));
                values(&pt.choices()[i], value, &join(&name, "value"), out)?;
            }
        }
    }
    Some(())
}

fn choice_values(
    options: &[Param],
    v: &Value,
    path: &str,
    out: &mut Map<String, Value>,
) -> Option<()> {
    let j = option_of(options, v)?;
    if options.len() == 1 {
        return values(&options[0], v, path, out);
    }
    if let Some(scalars) = scalar_choices(options) {
        out.insert(path.to_string(), scalars[j].clone());
        return Some(());
    }
    out.insert(path.to_string(), json!(j));
    values(&options[j], v, &join(path, &j.to_string()), out)
}

/// The objectives of a choice-list run in DeepCAVE: the child's dev accuracy (higher is better,
/// within 0..1) and its training seconds (lower is better).
pub fn objectives() -> Vec<Objective> {
    vec![
        Objective {
            name: "accuracy".into(),
            lower: Some(0.0),
            upper: Some(1.0),
            optimize: Optimize::Upper,
        },
        Objective {
            name: "seconds".into(),
            lower: Some(0.0),
            upper: None,
            optimize: Optimize::Lower,
        },
    ]
}

/// A run's rollouts as DeepCAVE trials, one list per search named `STRATEGY-seedSEED`, in the
/// order of first appearance. Every child is trained under one budget, `budget` (the children's
/// epoch limit; the epochs a child ran before stopping early go to `additional`); the times are
/// each search's own clock, its children's training seconds one after the other. A rollout whose
/// architecture is not a configuration of `space` (impossible in a checked run) is left out.
pub fn deepcave_searches(
    space: &Param,
    records: &[Record],
    budget: f64,
) -> Vec<(String, Vec<Trial>)> {
    let mut searches: Vec<(String, Vec<Trial>, f64)> = Vec::new();
    for r in records {
        let name = format!("{}-seed{}", r.strategy, r.seed);
        let k = match searches.iter().position(|s| s.0 == name) {
            Some(k) => k,
            None => {
                searches.push((name, Vec::new(), 0.0));
                searches.len() - 1
            }
        };
        let Some(config) = serde_json::from_str::<Value>(&r.architecture)
            .ok()
            .and_then(|c| flatten(space, &c))
        else {
            continue;
        };
        let start = searches[k].2;
        let end = start + r.seconds;
        searches[k].2 = end;
        let finite = r.accuracy.is_finite();
        let mut additional = Map::new();
        additional.insert("rollout".into(), json!(r.rollout));
        additional.insert("reward".into(), json!(r.reward));
        additional.insert("diverged".into(), json!(r.diverged));
        additional.insert("epochs".into(), json!(r.epochs));
        searches[k].1.push(Trial {
            config,
            budget,
            seed: r.seed as i64,
            costs: vec![finite.then_some(r.accuracy), Some(r.seconds)],
            start_time: start,
            end_time: end,
            status: if finite {
                Status::Success
            } else {
                Status::Crashed
            },
            origin: Some(r.strategy.clone()),
            additional,
        });
    }
    searches.into_iter().map(|(n, t, _)| (n, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse_space;
    use super::*;

    const MLP: &str = "
hidden:
  min: 0
  max: 3
  choices:
    - width: [1, 2, 4]
      activation: [Tanh, ReLU]
learning_rate: {lower: 1.0e-4, upper: 1.0e-1, log: true}
epochs: {lower: 2, upper: 6, int: true}
optimizer: [sgd, {name: adam, beta: {lower: 0.5, upper: 1.0}}]
seed: 7
";

    /// The whole document of a small space, written out by hand.
    #[test]
    fn configspace_of_a_small_space_matches_a_hand_written_document() {
        let space = parse_space(MLP).unwrap();
        let cat = |name: &str, choices: Value, default: Value| {
            json!({"name": name, "type": "categorical", "choices": choices, "weights": null,
                   "default_value": default, "meta": null})
        };
        let lr_mid = (1.0e-4_f64.ln() / 2.0 + 1.0e-1_f64.ln() / 2.0).exp();
        let expected = json!({
            "name": "mlp",
            "hyperparameters": [
                cat("hidden/length", json!([0, 1, 2]), json!(0)),
                cat("hidden/0/width", json!([1, 2, 4]), json!(1)),
                cat("hidden/0/activation", json!(["Tanh", "ReLU"]), json!("Tanh")),
                cat("hidden/1/width", json!([1, 2, 4]), json!(1)),
                cat("hidden/1/activation", json!(["Tanh", "ReLU"]), json!("Tanh")),
                {"name": "learning_rate", "type": "uniform_float", "lower": 1.0e-4,
                 "upper": 1.0e-1, "default_value": lr_mid, "log": true, "meta": null},
                {"name": "epochs", "type": "uniform_int", "lower": 2, "upper": 5,
                 "default_value": 3, "log": false, "meta": null},
                cat("optimizer", json!([0, 1]), json!(0)),
                {"name": "optimizer/1/beta", "type": "uniform_float", "lower": 0.5,
                 "upper": 1.0, "default_value": 0.75, "log": false, "meta": null},
            ],
            "conditions": [
                {"child": "hidden/0/width", "parent": "hidden/length", "values": [1, 2], "type": "IN"},
                {"child": "hidden/0/activation", "parent": "hidden/length", "values": [1, 2], "type": "IN"},
                {"child": "hidden/1/width", "parent": "hidden/length", "values": [2], "type": "IN"},
                {"child": "hidden/1/activation", "parent": "hidden/length", "values": [2], "type": "IN"},
                {"child": "optimizer/1/beta", "parent": "optimizer", "value": 1, "type": "EQ"},
            ],
            "forbiddens": [],
            "format_version": CL_CONFIGSPACE_FORMAT_VERSION,
        });
        assert_eq!(configspace_json(&space, "mlp"), expected);
    }

    #[test]
    fn configurations_flatten_to_their_active_hyperparameters() {
        let space = parse_space(MLP).unwrap();
        let config = json!({"hidden": [{"width": 4, "activation": "ReLU"}],
            "learning_rate": 0.01, "epochs": 3, "optimizer": {"name": "adam", "beta": 0.9},
            "seed": 7});
        assert_eq!(
            Value::Object(flatten(&space, &config).unwrap()),
            json!({"hidden/length": 1, "hidden/0/width": 4, "hidden/0/activation": "ReLU",
                   "learning_rate": 0.01, "epochs": 3, "optimizer": 1, "optimizer/1/beta": 0.9})
        );
        let plain = json!({"hidden": [], "learning_rate": 0.001, "epochs": 5,
            "optimizer": "sgd", "seed": 7});
        assert_eq!(
            Value::Object(flatten(&space, &plain).unwrap()),
            json!({"hidden/length": 0, "learning_rate": 0.001, "epochs": 5, "optimizer": 0})
        );
        assert!(flatten(&space, &json!({"hidden": []})).is_none());
    }

    #[test]
    fn rollouts_become_trials_per_search_on_each_search_clock() {
        let space = parse_space(MLP).unwrap();
        let record = |strategy: &str, seed: u64, rollout: usize, accuracy: f64, seconds: f64| {
            Record {
                search: 0,
                strategy: strategy.into(),
                seed,
                rollout,
                architecture: r#"{"hidden": [], "learning_rate": 0.001, "epochs": 5, "optimizer": "sgd", "seed": 7}"#.into(),
                accuracy,
                reward: accuracy,
                beta: None,
                loss: None,
                epochs: 10,
                seconds,
                diverged: false,
                details: Value::Null,
            }
        };
        let records = [
            record("random", 0, 0, 0.5, 2.0),
            record("evolution", 0, 0, 0.25, 1.0),
            record("random", 0, 1, f64::NAN, 3.0),
        ];
        let searches = deepcave_searches(&space, &records, 40.0);
        let names: Vec<&str> = searches.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["random-seed0", "evolution-seed0"]);
        let random = &searches[0].1;
        assert_eq!(random.len(), 2);
        assert_eq!((random[1].start_time, random[1].end_time), (2.0, 5.0));
        assert_eq!(random[1].costs, vec![None, Some(3.0)]);
        assert_eq!(random[1].status, Status::Crashed);
        assert_eq!(random[0].budget, 40.0);
        assert_eq!(random[0].additional["epochs"], json!(10));
        assert_eq!(random[0].origin.as_deref(), Some("random"));
        assert_eq!(random[0].config["optimizer"], json!(0));
    }

    /// Every hyperparameter a sampled configuration sets is in the space, and every condition
    /// of an active one holds.
    #[test]
    fn sampled_configurations_are_consistent_with_the_space() {
        use rand::SeedableRng;
        let yaml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spaces/mlp.yaml"),
        )
        .unwrap();
        let space = parse_space(&yaml).unwrap();
        let cs = configspace_json(&space, "mlp");
        let names: Vec<&str> = cs["hyperparameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        for _ in 0..200 {
            let config = super::super::sample(&space, &mut rng);
            let flat = flatten(&space, &config).unwrap();
            for (k, v) in &flat {
                assert!(names.contains(&k.as_str()), "{k}");
                for c in cs["conditions"].as_array().unwrap() {
                    if c["child"] == json!(k) {
                        let parent = &flat[c["parent"].as_str().unwrap()];
                        assert!(c["values"].as_array().unwrap().contains(parent), "{k}={v}");
                    }
                }
            }
        }
    }
}
