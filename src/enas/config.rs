//! Every default of the `enas` feature: the controller's settings by Kubeflow Katib's names and
//! defaults (Katib's ENAS suggestion service), the shared-weight training of the ENAS paper
//! (Pham et al. 2018), the final choice, and the limits that bound a space's size.

use serde::{Deserialize, Serialize};

// --- The controller (Katib's algorithmSettings, with Katib's defaults) ---
pub const CONTROLLER_HIDDEN_SIZE: usize = 64; // LSTM units
pub const CONTROLLER_TEMPERATURE: f64 = 5.0; // logits are divided by this before the tanh
pub const CONTROLLER_TANH_CONST: f64 = 2.25; // ... and squashed to (-c, c) by c tanh(.)
pub const CONTROLLER_ENTROPY_WEIGHT: f64 = 1e-5; // weight of the sampled entropy added to the reward
pub const CONTROLLER_BASELINE_DECAY: f64 = 0.999; // decay of the moving-average baseline
pub const CONTROLLER_LEARNING_RATE: f64 = 5e-5; // Adam's learning rate
pub const CONTROLLER_SKIP_TARGET: f64 = 0.4; // skip probability the KL penalty pulls towards
pub const CONTROLLER_SKIP_WEIGHT: f64 = 0.8; // weight of that KL penalty
pub const CONTROLLER_TRAIN_STEPS: usize = 50; // controller updates per epoch
pub const CONTROLLER_LOG_EVERY_STEPS: usize = 10; // Katib's logging period (accepted, not used)
pub const CONTROLLER_INIT_RANGE: f64 = 0.1; // weights start uniform in (-r, r) (the ENAS paper)

// --- The shared weights (the ENAS paper's child training, on the digits' scale) ---
pub const EPOCHS: usize = 100; // alternations of the two phases (30 left sampled nets at ~25 % dev: README)
pub const BATCH_SIZE: usize = 32; // mini-batch of the shared-weight phase
pub const CONTROLLER_BATCH_SIZE: usize = 64; // dev examples that score one controller sample
pub const CHILD_LR: f64 = 0.05; // SGD's learning rate at the start, annealed by a cosine
pub const CHILD_LR_MIN: f64 = 0.0005; // ... down to this at the last step
pub const CHILD_MOMENTUM: f64 = 0.9; // SGD momentum (Nesterov)
pub const CHILD_WEIGHT_DECAY: f64 = 1e-4; // L2 penalty (the paper's)
pub const CHILD_GRAD_CLIP: f64 = 5.0; // global norm the shared gradients are clipped to
pub const BN_EPS: f64 = 1e-5; // batch norm's epsilon
pub const BN_MOMENTUM: f64 = 0.1; // batch norm's running-average momentum (standalone networks)

// --- The end of a search ---
pub const FINAL_SAMPLES: usize = 20; // architectures sampled and scored on the whole dev split
pub const NO_SHARING_EPOCHS: usize = 2; // --no-sharing: epochs each sampled child trains from scratch

// --- enas-trial (Katib's trial: Adam 1e-3, batch 128 on CIFAR-10; 32 on the small sets) ---
pub const TRIAL_EPOCHS: usize = 10; // Katib's --num_epochs default
pub const TRIAL_LR: f64 = 1e-3; // Adam's learning rate
pub const TRIAL_BATCH_SIZE: usize = 32;

// --- Limits ---
pub const LAYERS_MAX: usize = 64; // numLayers
pub const OPERATIONS_MAX: usize = 10_000; // operation ids a space enumerates
pub const CHANNELS_MAX: i64 = 4096; // num_filter, and channels of any layer's widest case
pub const FILTER_SIZE_MAX: i64 = 31; // filter_size and pool_size
pub const STRIDE_MAX: i64 = 8; // stride
pub const DEPTH_MULTIPLIER_MAX: i64 = 8; // depth_multiplier
pub const SUPERNET_WEIGHTS_MAX: i64 = 256 << 20; // shared weights of the widest supernet (1 GB)
pub const EPOCHS_MAX: usize = 100_000; // epochs, num_epochs
pub const SAMPLES_MAX: usize = 100_000; // final_samples, controller_train_steps
pub const SPACE_BYTES_MAX: usize = 16 << 20; // size of a YAML file

/// The settings of `archsearch enas`, by Katib's names for the controller's (`--set NAME=VALUE`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnasSettings {
    pub controller_hidden_size: usize,
    pub controller_temperature: f64,
    pub controller_tanh_const: f64,
    pub controller_entropy_weight: f64,
    pub controller_baseline_decay: f64,
    pub controller_learning_rate: f64,
    pub controller_skip_target: f64,
    pub controller_skip_weight: f64,
    pub controller_train_steps: usize,
    pub controller_log_every_steps: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub controller_batch_size: usize,
    pub child_lr: f64,
    pub child_lr_min: f64,
    pub child_momentum: f64,
    pub child_weight_decay: f64,
    pub child_grad_clip: f64,
    pub final_samples: usize,
    pub no_sharing_epochs: usize,
    pub retrain_seeds: usize,
    /// Epochs of the final retraining (the baseline CNN's protocol otherwise).
    pub final_epochs: usize,
}

impl Default for EnasSettings {
    fn default() -> Self {
        EnasSettings {
            controller_hidden_size: CONTROLLER_HIDDEN_SIZE,
            controller_temperature: CONTROLLER_TEMPERATURE,
            controller_tanh_const: CONTROLLER_TANH_CONST,
            controller_entropy_weight: CONTROLLER_ENTROPY_WEIGHT,
            controller_baseline_decay: CONTROLLER_BASELINE_DECAY,
            controller_learning_rate: CONTROLLER_LEARNING_RATE,
            controller_skip_target: CONTROLLER_SKIP_TARGET,
            controller_skip_weight: CONTROLLER_SKIP_WEIGHT,
            controller_train_steps: CONTROLLER_TRAIN_STEPS,
            controller_log_every_steps: CONTROLLER_LOG_EVERY_STEPS,
            epochs: EPOCHS,
            batch_size: BATCH_SIZE,
            controller_batch_size: CONTROLLER_BATCH_SIZE,
            child_lr: CHILD_LR,
            child_lr_min: CHILD_LR_MIN,
            child_momentum: CHILD_MOMENTUM,
            child_weight_decay: CHILD_WEIGHT_DECAY,
            child_grad_clip: CHILD_GRAD_CLIP,
            final_samples: FINAL_SAMPLES,
            no_sharing_epochs: NO_SHARING_EPOCHS,
            retrain_seeds: crate::config::RETRAIN_SEEDS,
            final_epochs: crate::config::TRAIN_EPOCHS,
        }
    }
}

impl EnasSettings {
    /// Applies `NAME=VALUE` (a field name; the value read as that field's type).
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let Some((name, value)) = assignment.split_once('=') else {
            return Err(format!(
                "--set takes NAME=VALUE, e.g. --set controller_learning_rate=0.001; got `{assignment}`"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        let mut json = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        let serde_json::Value::Object(map) = &mut json else {
            return Err("settings are not an object".into());
        };
        let Some(slot) = map.get_mut(name) else {
            let names: Vec<&String> = map.keys().collect();
            return Err(format!(
                "--set {name}: no such setting; the settings are {}",
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let parsed = if slot.is_u64() {
            value
                .parse::<u64>()
                .map(serde_json::Value::from)
                .map_err(|_| format!("--set {name}: `{value}` is not a whole number"))?
        } else {
            let f = value
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("--set {name}: `{value}` is not a finite number"))?;
            serde_json::Value::from(f)
        };
        *slot = parsed;
        *self = serde_json::from_value(json).map_err(|e| format!("--set {name}: {e}"))?;
        self.validate()
    }

    /// Checks every value against its range (Katib's ranges for Katib's settings).
    pub fn validate(&self) -> Result<(), String> {
        let count = |name: &str, v: usize, min: usize, max: usize| {
            if v < min || v > max {
                Err(format!("{name} must be from {min} to {max}, got {v}"))
            } else {
                Ok(())
            }
        };
        let real = |name: &str, v: f64, min: f64, max: f64, min_open: bool| {
            let low_ok = if min_open { v > min } else { v >= min };
            if !v.is_finite() || !low_ok || v > max {
                let bracket = if min_open { "above" } else { "at least" };
                Err(format!(
                    "{name} must be {bracket} {min} and at most {max}, got {v}"
                ))
            } else {
                Ok(())
            }
        };
        count(
            "controller_hidden_size",
            self.controller_hidden_size,
            1,
            4096,
        )?;
        real(
            "controller_temperature",
            self.controller_temperature,
            0.0,
            1e6,
            true,
        )?;
        real(
            "controller_tanh_const",
            self.controller_tanh_const,
            0.0,
            1e6,
            true,
        )?;
        real(
            "controller_entropy_weight",
            self.controller_entropy_weight,
            0.0,
            1e6,
            false,
        )?;
        real(
            "controller_baseline_decay",
            self.controller_baseline_decay,
            0.0,
            1.0,
            false,
        )?;
        real(
            "controller_learning_rate",
            self.controller_learning_rate,
            0.0,
            1.0,
            true,
        )?;
        real(
            "controller_skip_target",
            self.controller_skip_target,
            0.0,
            1.0,
            true,
        )?;
        if self.controller_skip_target >= 1.0 {
            return Err(format!(
                "controller_skip_target must be below 1 (its KL needs 1 - target > 0), got {}",
                self.controller_skip_target
            ));
        }
        real(
            "controller_skip_weight",
            self.controller_skip_weight,
            0.0,
            1e6,
            false,
        )?;
        count(
            "controller_train_steps",
            self.controller_train_steps,
            1,
            SAMPLES_MAX,
        )?;
        count(
            "controller_log_every_steps",
            self.controller_log_every_steps,
            1,
            SAMPLES_MAX,
        )?;
        count("epochs", self.epochs, 1, EPOCHS_MAX)?;
        count("batch_size", self.batch_size, 2, 65_536)?;
        count(
            "controller_batch_size",
            self.controller_batch_size,
            1,
            65_536,
        )?;
        real("child_lr", self.child_lr, 0.0, 10.0, true)?;
        real("child_lr_min", self.child_lr_min, 0.0, self.child_lr, false)?;
        real("child_momentum", self.child_momentum, 0.0, 0.999, false)?;
        real(
            "child_weight_decay",
            self.child_weight_decay,
            0.0,
            1.0,
            false,
        )?;
        real("child_grad_clip", self.child_grad_clip, 0.0, 1e6, false)?;
        count("final_samples", self.final_samples, 1, SAMPLES_MAX)?;
        count("no_sharing_epochs", self.no_sharing_epochs, 1, EPOCHS_MAX)?;
        count(
            "retrain_seeds",
            self.retrain_seeds,
            0,
            crate::config::RETRAIN_SEEDS_MAX,
        )?;
        count("final_epochs", self.final_epochs, 1, EPOCHS_MAX)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn katib_names_are_set_keys_and_ranges_are_checked() {
        let mut s = EnasSettings::default();
        s.set("controller_learning_rate=0.001").unwrap();
        assert_eq!(s.controller_learning_rate, 0.001);
        s.set("controller_train_steps=7").unwrap();
        assert_eq!(s.controller_train_steps, 7);
        assert!(s
            .set("controller_baseline_decay=1.5")
            .unwrap_err()
            .contains("controller_baseline_decay"));
        assert!(s
            .set("controller_hidden_size=2.5")
            .unwrap_err()
            .contains("whole number"));
        assert!(s.set("no_such=1").unwrap_err().contains("no such setting"));
    }
}
