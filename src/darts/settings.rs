//! The settings of a DARTS search by Katib's names (its DARTS trial's `--algorithm-settings`),
//! with archsearch's defaults for small image sets; Katib's trial arguments read as Katib sends
//! them (Python-style single quotes, numbers or strings, one pair of surrounding quotes), and
//! `--set KEY=VALUE` for each setting.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::*;
use super::ops::{Primitive, NONE};
use crate::error::UsageError;

/// Every setting of a search; the names are Katib's where Katib has the setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DartsSettings {
    pub num_epochs: usize,
    pub w_lr: f64,
    pub w_lr_min: f64,
    pub w_momentum: f64,
    pub w_weight_decay: f64,
    pub w_grad_clip: f64,
    pub alpha_lr: f64,
    pub alpha_weight_decay: f64,
    pub batch_size: usize,
    pub init_channels: usize,
    pub print_step: usize,
    pub num_nodes: usize,
    pub stem_multiplier: usize,
    /// Cells in the network (Katib's `--num-layers`).
    pub num_layers: usize,
    /// The primitives searched, in Katib's names, without `none` (always added last).
    pub search_space: Vec<String>,
    /// 1 or 2: first- or second-order alpha gradient.
    pub order: u8,
    pub retrain_seeds: usize,
    pub random_genotypes: usize,
    pub retrain_epochs: usize,
    /// Peak learning rate of the "cnn" retraining protocol (the general trainer's cosine); the
    /// "final" protocol keeps its own.
    #[serde(default = "retrain_lr_default")]
    pub retrain_lr: f64,
    /// How the found and random genotypes are retrained: "cnn" (the general trainer's
    /// settings, the fixed CNN baseline's protocol) or "final" (the final-training protocol).
    #[serde(default = "retrain_protocol_default")]
    pub retrain_protocol: String,
    /// Use only this many training images (0 = all).
    pub train_images: usize,
}

impl Default for DartsSettings {
    fn default() -> Self {
        DartsSettings {
            num_epochs: NUM_EPOCHS,
            w_lr: W_LR,
            w_lr_min: W_LR_MIN,
            w_momentum: W_MOMENTUM,
            w_weight_decay: W_WEIGHT_DECAY,
            w_grad_clip: W_GRAD_CLIP,
            alpha_lr: ALPHA_LR,
            alpha_weight_decay: ALPHA_WEIGHT_DECAY,
            batch_size: BATCH_SIZE,
            init_channels: INIT_CHANNELS,
            print_step: PRINT_STEP,
            num_nodes: NUM_NODES,
            stem_multiplier: STEM_MULTIPLIER,
            num_layers: NUM_LAYERS,
            search_space: KATIB_SEARCH_SPACE.iter().map(|s| s.to_string()).collect(),
            order: ORDER,
            retrain_seeds: RETRAIN_SEEDS,
            random_genotypes: RANDOM_GENOTYPES,
            retrain_epochs: RETRAIN_EPOCHS,
            retrain_lr: RETRAIN_LR,
            retrain_protocol: RETRAIN_PROTOCOL.to_string(),
            train_images: TRAIN_IMAGES,
        }
    }
}

fn retrain_lr_default() -> f64 {
    RETRAIN_LR
}

fn retrain_protocol_default() -> String {
    RETRAIN_PROTOCOL.to_string()
}

/// Keys Katib sends that archsearch has no use for (data-loader workers).
const IGNORED_KATIB_KEYS: [&str; 1] = ["num_workers"];

/// The keys `--algorithm-settings` may set: Katib's algorithm settings.
const KATIB_KEYS: [&str; 13] = [
    "num_epochs",
    "w_lr",
    "w_lr_min",
    "w_momentum",
    "w_weight_decay",
    "w_grad_clip",
    "alpha_lr",
    "alpha_weight_decay",
    "batch_size",
    "init_channels",
    "print_step",
    "num_nodes",
    "stem_multiplier",
];

impl DartsSettings {
    /// The primitives of the supernet: the search space, then `none`.
    pub fn primitives(&self) -> Vec<Primitive> {
        let mut out: Vec<Primitive> = self
            .search_space
            .iter()
            .filter_map(|n| Primitive::from_name(n))
            .filter(|p| *p != Primitive::None)
            .collect();
        out.push(Primitive::None);
        out
    }

    /// Sets one numeric setting from text or a JSON number; `source` names where it came from
    /// (`--set`, `--algorithm-settings`) for the error.
    fn set_number(&mut self, key: &str, value: &Value, source: &str) -> Result<(), UsageError> {
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            UsageError::new(format!("{source}: `{key}` must be a number, got {value}"))
        })?;
        let whole = || -> Result<usize, UsageError> {
            if number >= 0.0 && number.fract() == 0.0 && number <= u32::MAX as f64 {
                Ok(number as usize)
            } else {
                Err(UsageError::new(format!(
                    "{source}: `{key}` must be a whole number of at least 0, got {value}"
                )))
            }
        };
        match key {
            "num_epochs" => self.num_epochs = whole()?,
            "w_lr" => self.w_lr = number,
            "w_lr_min" => self.w_lr_min = number,
            "w_momentum" => self.w_momentum = number,
            "w_weight_decay" => self.w_weight_decay = number,
            "w_grad_clip" => self.w_grad_clip = number,
            "alpha_lr" => self.alpha_lr = number,
            "alpha_weight_decay" => self.alpha_weight_decay = number,
            "batch_size" => self.batch_size = whole()?,
            "init_channels" => self.init_channels = whole()?,
            "print_step" => self.print_step = whole()?,
            "num_nodes" => self.num_nodes = whole()?,
            "stem_multiplier" => self.stem_multiplier = whole()?,
            "num_layers" => self.num_layers = whole()?,
            "order" => {
                self.order = match whole()? {
                    1 => 1,
                    2 => 2,
                    _ => {
                        return Err(UsageError::new(format!(
                            "{source}: `order` is 1 (first order) or 2 (second order), got {value}"
                        )))
                    }
                }
            }
            "retrain_seeds" => self.retrain_seeds = whole()?,
            "random_genotypes" => self.random_genotypes = whole()?,
            "retrain_epochs" => self.retrain_epochs = whole()?,
            "retrain_lr" => self.retrain_lr = number,
            "train_images" => self.train_images = whole()?,
            _ => {
                return Err(UsageError::new(format!(
                    "{source}: no setting `{key}`; the settings are {}",
                    Self::keys().join(", ")
                )))
            }
        }
        Ok(())
    }

    /// Every key `--set` takes.
    pub fn keys() -> Vec<&'static str> {
        let mut keys = KATIB_KEYS.to_vec();
        keys.extend([
            "num_layers",
            "search_space",
            "order",
            "retrain_seeds",
            "random_genotypes",
            "retrain_epochs",
            "retrain_lr",
            "retrain_protocol",
            "train_images",
        ]);
        keys
    }

    /// Applies `--set KEY=VALUE`; `search_space` takes a list as `--search-space` does.
    pub fn set(&mut self, assignment: &str) -> Result<(), UsageError> {
        let source = format!("`--set {assignment}`");
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            UsageError::new(format!(
                "{source}: expected KEY=VALUE, e.g. --set alpha_lr=0.003"
            ))
        })?;
        let key = key.trim();
        if key == "retrain_protocol" {
            self.retrain_protocol = value.trim().to_string();
            return check_protocol(&self.retrain_protocol)
                .map_err(|e| UsageError::new(format!("{source}: {e}")));
        }
        if key == "search_space" {
            self.search_space =
                parse_search_space(value).map_err(|e| UsageError::new(format!("{source}: {e}")))?;
            return Ok(());
        }
        self.set_number(key, &Value::String(value.trim().to_string()), &source)
    }

    /// Applies Katib's `--algorithm-settings`, e.g. `{'num_epochs': 50, 'w_lr': '0.1'}`:
    /// numbers or numbers as strings; `num_workers` is accepted and ignored; an unknown key is
    /// refused.
    pub fn apply_algorithm_settings(&mut self, text: &str) -> Result<(), UsageError> {
        let source = "--algorithm-settings";
        let value = katib_json(text).map_err(|e| {
            UsageError::new(format!(
                "{source}: {e}; expected a dict such as \"{{'num_epochs': '10', 'init_channels': '8'}}\""
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(UsageError::new(format!(
                "{source}: expected a dict such as \"{{'num_epochs': '10'}}\", got {value}"
            )));
        };
        for (key, value) in &map {
            if IGNORED_KATIB_KEYS.contains(&key.as_str()) {
                continue;
            }
            if !KATIB_KEYS.contains(&key.as_str()) {
                return Err(UsageError::new(format!(
                    "{source}: no DARTS setting `{key}`; Katib's settings are {} (and num_workers, ignored)",
                    KATIB_KEYS.join(", ")
                )));
            }
            self.set_number(key, value, source)?;
        }
        Ok(())
    }

    /// Checks every value; the error names the setting and its range.
    pub fn validate(&self) -> Result<(), UsageError> {
        let bad = |m: String| Err(UsageError::new(m));
        for (key, v, max) in [
            ("num_epochs", self.num_epochs, NUM_EPOCHS_MAX),
            ("batch_size", self.batch_size, BATCH_SIZE_MAX),
            ("init_channels", self.init_channels, CHANNELS_MAX),
            ("print_step", self.print_step, usize::MAX),
            ("num_nodes", self.num_nodes, NUM_NODES_MAX),
            ("stem_multiplier", self.stem_multiplier, CHANNELS_MAX),
            ("num_layers", self.num_layers, NUM_LAYERS_MAX),
            ("retrain_epochs", self.retrain_epochs, NUM_EPOCHS_MAX),
            ("retrain_seeds", self.retrain_seeds, SEEDS_MAX),
        ] {
            if v == 0 || v > max {
                return bad(format!(
                    "{key} must be between 1 and {max}, got {v} (limits in src/darts/config.rs)"
                ));
            }
        }
        if self.random_genotypes > SEEDS_MAX {
            return bad(format!(
                "random_genotypes must be at most {SEEDS_MAX}, got {}",
                self.random_genotypes
            ));
        }
        if self.batch_size < 2 {
            return bad("batch_size must be at least 2 (batch norm needs two images)".into());
        }
        if self.stem_multiplier * self.init_channels > CHANNELS_MAX {
            return bad(format!(
                "stem_multiplier x init_channels must be at most {CHANNELS_MAX}, got {}",
                self.stem_multiplier * self.init_channels
            ));
        }
        for (key, v) in [
            ("w_lr", self.w_lr),
            ("alpha_lr", self.alpha_lr),
            ("retrain_lr", self.retrain_lr),
        ] {
            if !(v > 0.0 && v <= LR_MAX) {
                return bad(format!(
                    "{key} must be above 0 and at most {LR_MAX}, got {v}"
                ));
            }
        }
        if !(self.w_lr_min >= 0.0 && self.w_lr_min <= self.w_lr) {
            return bad(format!(
                "w_lr_min must be between 0 and w_lr ({}), got {}",
                self.w_lr, self.w_lr_min
            ));
        }
        if !(0.0..1.0).contains(&self.w_momentum) {
            return bad(format!(
                "w_momentum must be at least 0 and below 1, got {}",
                self.w_momentum
            ));
        }
        for (key, v) in [
            ("w_weight_decay", self.w_weight_decay),
            ("w_grad_clip", self.w_grad_clip),
            ("alpha_weight_decay", self.alpha_weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!(
                    "{key} must be a finite number of at least 0, got {v}"
                ));
            }
        }
        if self.init_channels < 2 && self.num_layers > 1 {
            // A factorized reduce splits its channels in two halves.
            return bad(format!(
                "init_channels must be at least 2 when num_layers > 1 (a reduction halves channels into two convolutions), got {}",
                self.init_channels
            ));
        }
        check_search_space(&self.search_space).map_err(UsageError::new)?;
        check_protocol(&self.retrain_protocol).map_err(UsageError::new)?;
        Ok(())
    }
}

/// `retrain_protocol` is one of `RETRAIN_PROTOCOLS`.
fn check_protocol(value: &str) -> Result<(), String> {
    if RETRAIN_PROTOCOLS.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "retrain_protocol is {} (cnn: the general trainer, as the fixed CNN baseline; final: the final-training protocol), got `{value}`",
            RETRAIN_PROTOCOLS.join(" or ")
        ))
    }
}

/// Katib's text as JSON: one pair of surrounding quotes dropped, single quotes made double
/// (Katib's trial does the same replacement).
pub fn katib_json(text: &str) -> Result<Value, String> {
    let mut t = text.trim();
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            let inner = &t[1..t.len() - 1];
            // Only a pair around the whole value, not the quotes of a string inside it.
            if inner.trim_start().starts_with(['{', '[']) || !inner.contains(q) {
                t = inner.trim();
                break;
            }
        }
    }
    if t.is_empty() {
        return Err("it is empty".into());
    }
    serde_json::from_str(&t.replace('\'', "\"")).map_err(|e| format!("cannot read `{text}`: {e}"))
}

/// Katib's `--search-space`, e.g. `['separable_convolution_3x3', 'skip_connection']`.
pub fn parse_search_space(text: &str) -> Result<Vec<String>, String> {
    let value = katib_json(text)?;
    let Value::Array(items) = value else {
        return Err(format!(
            "expected a list such as \"['separable_convolution_3x3', 'skip_connection']\", got {value}"
        ));
    };
    let mut names = Vec::new();
    for item in items {
        let Value::String(name) = item else {
            return Err(format!("every primitive is a name in quotes, got {item}"));
        };
        names.push(name.trim().to_string());
    }
    check_search_space(&names)?;
    // `none` is always added last; a list that names it keeps it once.
    names.retain(|n| n != NONE);
    Ok(names)
}

/// Every name known, none twice, at least one primitive besides `none`.
fn check_search_space(names: &[String]) -> Result<(), String> {
    for (i, name) in names.iter().enumerate() {
        if Primitive::from_name(name).is_none() {
            return Err(format!(
                "unknown primitive `{name}`; the primitives are {}",
                Primitive::all()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if names[..i].contains(name) {
            return Err(format!("primitive `{name}` is listed twice"));
        }
    }
    if names.iter().all(|n| n == NONE) {
        return Err("the search space is empty: name at least one primitive besides none".into());
    }
    Ok(())
}

/// Katib's `--num-layers` (a string, possibly quoted): a whole number of at least 1.
pub fn parse_num_layers(text: &str) -> Result<usize, UsageError> {
    let t = text.trim().trim_matches(['"', '\'']).trim();
    match t.parse::<usize>() {
        Ok(n) if (1..=NUM_LAYERS_MAX).contains(&n) => Ok(n),
        _ => Err(UsageError::new(format!(
            "--num-layers must be a whole number between 1 and {NUM_LAYERS_MAX}, got `{text}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn katib_settings_arrive_as_numbers_or_strings_in_single_quotes() {
        let mut s = DartsSettings::default();
        // What Katib's suggestion service sends: its defaults as numbers, the user's as strings,
        // num_workers among them, inside the quotes of the trial template.
        let text = "\"{'num_epochs': '3', 'w_lr': 0.025, 'w_lr_min': 0.001, 'w_momentum': 0.9, \
                    'w_weight_decay': 0.0003, 'w_grad_clip': 5.0, 'alpha_lr': 0.0003, \
                    'alpha_weight_decay': 0.001, 'batch_size': 128, 'num_workers': 4, \
                    'init_channels': '4', 'print_step': 50, 'num_nodes': 4, 'stem_multiplier': 3}\"";
        s.apply_algorithm_settings(text).unwrap();
        assert_eq!((s.num_epochs, s.init_channels, s.batch_size), (3, 4, 128));
        assert_eq!((s.alpha_lr, s.w_weight_decay), (3e-4, 3e-4));
        s.validate().unwrap();
        // Without the outer quotes, and with single outer quotes.
        s.apply_algorithm_settings("{'num_epochs': '10'}").unwrap();
        assert_eq!(s.num_epochs, 10);
        s.apply_algorithm_settings("'{\"num_epochs\": 7}'").unwrap();
        assert_eq!(s.num_epochs, 7);
    }

    #[test]
    fn bad_katib_settings_name_the_key() {
        let mut s = DartsSettings::default();
        let e = s
            .apply_algorithm_settings("{'num_epochs': 'ten'}")
            .unwrap_err();
        assert!(e.0.contains("num_epochs") && e.0.contains("number"), "{e}");
        let e = s
            .apply_algorithm_settings("{'num_epoch': '3'}")
            .unwrap_err();
        assert!(e.0.contains("num_epoch`"), "{e}");
        let e = s
            .apply_algorithm_settings("{'batch_size': '2.5'}")
            .unwrap_err();
        assert!(e.0.contains("batch_size") && e.0.contains("whole"), "{e}");
        assert!(s.apply_algorithm_settings("{'num_epochs': None}").is_err());
        assert!(s.apply_algorithm_settings("[1, 2]").is_err());
        assert!(s.apply_algorithm_settings("").is_err());
    }

    #[test]
    fn the_search_space_is_checked_and_none_is_added_last() {
        let names = parse_search_space(
            "\"['separable_convolution_3x3', 'max_pooling_3x3', 'skip_connection']\"",
        )
        .unwrap();
        assert_eq!(names.len(), 3);
        let s = DartsSettings {
            search_space: names,
            ..DartsSettings::default()
        };
        let p = s.primitives();
        assert_eq!(p.len(), 4);
        assert_eq!(p[3], Primitive::None);
        assert_eq!(p[1].name(), "max_pooling_3x3");
        let e = parse_search_space("['conv_7x7']").unwrap_err();
        assert!(e.contains("conv_7x7"), "{e}");
        let e = parse_search_space("[]").unwrap_err();
        assert!(e.contains("empty"), "{e}");
        assert!(parse_search_space("['none']")
            .unwrap_err()
            .contains("empty"));
        assert!(parse_search_space("['skip_connection', 'skip_connection']").is_err());
        assert_eq!(
            parse_search_space("['skip_connection', 'none']").unwrap(),
            ["skip_connection"]
        );
    }

    #[test]
    fn num_layers_and_set_keys() {
        assert_eq!(parse_num_layers("\"5\"").unwrap(), 5);
        assert_eq!(parse_num_layers("1").unwrap(), 1);
        assert!(parse_num_layers("0")
            .unwrap_err()
            .0
            .contains("--num-layers"));
        assert!(parse_num_layers("three").is_err());
        let mut s = DartsSettings::default();
        s.set("alpha_lr=0.01").unwrap();
        s.set("order=2").unwrap();
        s.set("search_space=['skip_connection','avg_pooling_3x3']")
            .unwrap();
        assert_eq!((s.alpha_lr, s.order), (0.01, 2));
        assert_eq!(s.search_space, ["skip_connection", "avg_pooling_3x3"]);
        assert!(s.set("order=3").unwrap_err().0.contains("order"));
        assert!(s.set("alpha_lr=fast").unwrap_err().0.contains("alpha_lr"));
        assert!(s.set("nope=1").unwrap_err().0.contains("nope"));
        assert_eq!(s.retrain_protocol, "cnn");
        s.set("retrain_protocol=final").unwrap();
        assert_eq!(s.retrain_protocol, "final");
        let e = s.set("retrain_protocol=adam").unwrap_err().0;
        assert!(
            e.contains("retrain_protocol") && e.contains("cnn or final"),
            "{e}"
        );
        let zero = DartsSettings {
            num_layers: 0,
            ..DartsSettings::default()
        };
        assert!(zero.validate().unwrap_err().0.contains("num_layers"));
        let lr = DartsSettings {
            w_lr_min: 1.0,
            ..DartsSettings::default()
        };
        assert!(lr.validate().unwrap_err().0.contains("w_lr_min"));
        let mut r = DartsSettings::default();
        r.set("retrain_lr=0.025").unwrap();
        assert_eq!(r.retrain_lr, 0.025);
        r.retrain_lr = 0.0;
        assert!(r.validate().unwrap_err().0.contains("retrain_lr"));
        DartsSettings::default().validate().unwrap();
    }
}
