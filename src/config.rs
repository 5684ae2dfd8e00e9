//! Every default of archsearch in one place: the half-moon NAS demo's hyperparameters
//! (REFERENCE.md section 1, after Zoph & Le 2016), grouped under short headers.
//!
//! Change a constant and rerun; the flags in `cli.rs` override the most used ones.

use serde::{Deserialize, Serialize};

// --- Data (sklearn make_moons semantics) ---
pub const N_POINTS: usize = 1000; // points generated
pub const NOISE: f64 = 0.2; // sd of the Gaussian noise on both coordinates
pub const DATA_SEED: u64 = 0; // the data's seed; fixed, so searches with other seeds see the same points
pub const TRAIN_FRACTION: f64 = 0.7; // first 70 % train
pub const DEV_FRACTION: f64 = 0.1; // next 10 % dev (gives the reward); the rest is test

// --- Search ---
pub const ROLLOUTS: usize = 5000; // architectures sampled and trained
pub const SEED: u64 = 0; // seed of the controller, the children and the retraining
pub const MAX_ACTIONS: usize = 6; // actions per rollout (widths and activations alike)
pub const ROLLOUTS_PER_UPDATE: usize = 1; // K: rollouts sampled per controller update (1 = reference)
pub const SEARCHES: usize = 1; // S: independent searches run in lockstep

// --- Controller (GRU cell + linear head) ---
pub const CONTROLLER_HIDDEN: usize = 64; // GRU hidden size
pub const GAMMA: f64 = 1.0; // discount (1: every step gets the whole rollout's reward)

// --- Preset `default`: the search that learns (chosen by measurement; README, "Presets") ---
pub const FEED_PREVIOUS_ACTION: bool = true; // one-hot previous action as GRU input
pub const CONTROLLER_LR: f64 = 1e-2; // Adam learning rate of the controller
pub const ENTROPY_BETA: f64 = 0.01; // entropy bonus at the first rollout
pub const ENTROPY_DECAY: f64 = 0.99; // beta is multiplied by this after every rollout
pub const ENTROPY_FLOOR: f64 = 0.0; // beta never decays below this
pub const USE_BASELINE: bool = true; // subtract a moving average of past rewards (measured: README, "Presets")
pub const BASELINE_DECAY: f64 = 0.95; // weight of the old baseline in the moving average
pub const NORMALISE_ADVANTAGE: bool = false; // divide by a moving sd of rewards (needs the baseline)
pub const GRAD_CLIP: f64 = 0.0; // clip the controller's gradient norm to this; 0 = off

// --- Preset `reference`: minimal-nas exactly (REFERENCE.md section 1) ---
pub const REFERENCE_FEED_PREVIOUS_ACTION: bool = false; // all-zero GRU input at every step
pub const REFERENCE_CONTROLLER_LR: f64 = 1e-2; // Adam
pub const REFERENCE_ENTROPY_BETA: f64 = 0.01; // times 0.99 per rollout, no floor
pub const REFERENCE_ENTROPY_DECAY: f64 = 0.99; // beta's decay per rollout
pub const REFERENCE_USE_BASELINE: bool = false; // raw rewards
pub const REFERENCE_GRAD_CLIP: f64 = 0.0; // the original's clip_norm = 0

// --- Reward shaping (REFERENCE.md section 1) ---
pub const EARLY_EOS_PENALTY: f64 = -1.0; // EOS as the first or second action
pub const REPEAT_PENALTY: f64 = -0.1; // two widths, or two activations, in a row

// --- Child network training ---
pub const CHILD_LR: f64 = 1e-2; // Adam learning rate
pub const BATCH_SIZE: usize = 32; // mini-batch size, reshuffled every epoch
pub const MAX_EPOCHS: usize = 100; // epochs at most
pub const PATIENCE: usize = 10; // stop after this many epochs without a better dev accuracy
pub const ADAM_BETAS: (f64, f64) = (0.9, 0.999); // PyTorch's Adam defaults, children and controller
pub const ADAM_EPS: f64 = 1e-8; // PyTorch's Adam default
pub const LEAKY_RELU_SLOPE: f64 = 0.01; // fixed: tch's leaky_relu uses it; the hand-written backward must agree
pub const TORCH_THREADS: i32 = 1; // intra-op threads: tiny tensors run fastest on one
pub const CPU_WORKERS: usize = 0; // threads training children side by side on a CPU; 0 = one per core
pub const POPULATION_ON_CPU: bool = false; // batched population on CPU too (it wins on CUDA; see BENCHMARKS.md)
pub const CPU_KERNEL: bool = true; // MLP children on a CPU train in cpu_mlp.rs's loops, not libtorch (--set child.cpu_kernel=false)
pub const CPU_KERNEL_AVX2: bool = true; // those loops use AVX2 where the CPU has it (same numbers, only faster)
pub const CPU_KERNEL_EVAL_POINTS: usize = 256; // points per pass when that kernel computes a split's loss or accuracy

// --- Feature `choice-list` (hannah-style spaces, REFERENCE.md section 2) ---
pub const CL_EVALUATIONS: usize = 500; // children evaluated per strategy and seed
pub const CL_BATCH: usize = 8; // configurations asked for (and trained side by side) at a time
pub const CL_BINS: usize = 8; // bins an Interval is cut into for the controller's decisions
pub const EVOLUTION_POPULATION: usize = 100; // aging evolution's population (hannah's default)
pub const EVOLUTION_SAMPLE_SIZE: usize = 20; // members drawn per tournament
pub const EVOLUTION_EPS: f64 = 0.1; // probability that a random sample replaces the mutation

// --- Final evaluation ---
pub const RETRAIN_SEEDS: usize = 5; // the best architecture is retrained this often and tested

// --- Output ---
pub const MOVING_AVERAGE: usize = 100; // window of the moving averages (plots, progress, summary)
pub const LAST_ROLLOUTS: usize = 500; // summary's "last" mean covers this many final rollouts
pub const OUT_ROOT: &str = "runs"; // default --out is OUT_ROOT/<date-time>
pub const CHECKPOINT_EVERY: usize = 50; // rollouts between checkpoints (one is also written at exit)

/// The two presets of the default search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Tuned so that the search learns (previous action fed back, and what measurement chose).
    Default,
    /// The Python original exactly: all-zero GRU input, no baseline, entropy 0.01 * 0.99^t.
    Reference,
}

/// Every setting of one search, filled from the constants above and overridden by flags.
/// Passed down explicitly so tests can run with tiny values; written whole into summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub preset: Preset,
    pub rollouts: usize,
    pub seed: u64,
    pub max_actions: usize,
    pub rollouts_per_update: usize,
    pub searches: usize,
    pub controller_hidden: usize,
    pub feed_previous_action: bool,
    pub controller_lr: f64,
    pub gamma: f64,
    pub entropy_beta: f64,
    pub entropy_decay: f64,
    pub entropy_floor: f64,
    pub use_baseline: bool,
    pub baseline_decay: f64,
    pub normalise_advantage: bool,
    pub grad_clip: f64,
    pub early_eos_penalty: f64,
    pub repeat_penalty: f64,
    pub child: ChildSettings,
    pub retrain_seeds: usize,
    pub moving_average: usize,
}

/// How one child network is trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChildSettings {
    pub lr: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub patience: usize,
    /// Dropout after every activation while training (0 in the half-moon space).
    #[serde(default)]
    pub dropout: f64,
    /// On a CPU, train in `cpu_mlp.rs`'s loops instead of libtorch (`CPU_KERNEL`).
    #[serde(default = "cpu_kernel_default")]
    pub cpu_kernel: bool,
}

fn cpu_kernel_default() -> bool {
    CPU_KERNEL
}

/// How the data is made when no file or named dataset is given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSettings {
    pub n_points: usize,
    pub noise: f64,
    pub seed: u64,
    pub train_fraction: f64,
    pub dev_fraction: f64,
}

impl Default for ChildSettings {
    fn default() -> Self {
        ChildSettings {
            lr: CHILD_LR,
            batch_size: BATCH_SIZE,
            max_epochs: MAX_EPOCHS,
            patience: PATIENCE,
            dropout: 0.0,
            cpu_kernel: CPU_KERNEL,
        }
    }
}

impl Default for DataSettings {
    fn default() -> Self {
        DataSettings {
            n_points: N_POINTS,
            noise: NOISE,
            seed: DATA_SEED,
            train_fraction: TRAIN_FRACTION,
            dev_fraction: DEV_FRACTION,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            preset: Preset::Default,
            rollouts: ROLLOUTS,
            seed: SEED,
            max_actions: MAX_ACTIONS,
            rollouts_per_update: ROLLOUTS_PER_UPDATE,
            searches: SEARCHES,
            controller_hidden: CONTROLLER_HIDDEN,
            feed_previous_action: FEED_PREVIOUS_ACTION,
            controller_lr: CONTROLLER_LR,
            gamma: GAMMA,
            entropy_beta: ENTROPY_BETA,
            entropy_decay: ENTROPY_DECAY,
            entropy_floor: ENTROPY_FLOOR,
            use_baseline: USE_BASELINE,
            baseline_decay: BASELINE_DECAY,
            normalise_advantage: NORMALISE_ADVANTAGE,
            grad_clip: GRAD_CLIP,
            early_eos_penalty: EARLY_EOS_PENALTY,
            repeat_penalty: REPEAT_PENALTY,
            child: ChildSettings::default(),
            retrain_seeds: RETRAIN_SEEDS,
            moving_average: MOVING_AVERAGE,
        }
    }
}

impl Settings {
    /// The settings of a preset, before flags.
    pub fn preset(preset: Preset) -> Settings {
        match preset {
            Preset::Default => Settings::default(),
            Preset::Reference => Settings {
                preset,
                feed_previous_action: REFERENCE_FEED_PREVIOUS_ACTION,
                controller_lr: REFERENCE_CONTROLLER_LR,
                entropy_beta: REFERENCE_ENTROPY_BETA,
                entropy_decay: REFERENCE_ENTROPY_DECAY,
                entropy_floor: 0.0,
                use_baseline: REFERENCE_USE_BASELINE,
                normalise_advantage: false,
                grad_clip: REFERENCE_GRAD_CLIP,
                ..Settings::default()
            },
        }
    }

    /// Checks every value a user can set; the error names the setting and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("controller_lr", self.controller_lr),
            ("child.lr", self.child.lr),
            ("entropy_decay", self.entropy_decay),
            ("baseline_decay", self.baseline_decay),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a finite number above 0, got {v}"));
            }
        }
        let non_negative = [
            ("entropy_beta", self.entropy_beta),
            ("entropy_floor", self.entropy_floor),
            ("grad_clip", self.grad_clip),
            ("gamma", self.gamma),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "{name} must be a finite number of at least 0, got {v}"
                ));
            }
        }
        for (name, v) in [
            ("early_eos_penalty", self.early_eos_penalty),
            ("repeat_penalty", self.repeat_penalty),
        ] {
            if !v.is_finite() {
                return Err(format!("{name} must be finite, got {v}"));
            }
        }
        if self.entropy_decay > 1.0 || self.baseline_decay >= 1.0 {
            return Err("entropy_decay must be at most 1 and baseline_decay below 1".into());
        }
        let counts = [
            ("rollouts", self.rollouts),
            ("max_actions", self.max_actions),
            ("rollouts_per_update", self.rollouts_per_update),
            ("searches", self.searches),
            ("controller_hidden", self.controller_hidden),
            ("child.batch_size", self.child.batch_size),
            ("child.max_epochs", self.child.max_epochs),
            ("child.patience", self.child.patience),
            ("retrain_seeds", self.retrain_seeds),
            ("moving_average", self.moving_average),
        ];
        for (name, v) in counts {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }

    /// Applies `key=value` (a field name as in summary.json, `child.lr` for nested ones),
    /// checked by type; the error says what is wrong.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            format!("`--set {assignment}`: expected KEY=VALUE, e.g. --set controller_lr=0.003")
        })?;
        let mut tree = serde_json::to_value(&*self).expect("settings serialise");
        let mut node = &mut tree;
        for part in key.trim().split('.') {
            node = node
                .get_mut(part)
                .filter(|n| !n.is_null())
                .ok_or_else(|| format!("`--set {assignment}`: no setting `{key}`; the names are those of summary.json's \"settings\""))?;
        }
        let parsed: serde_json::Value = serde_json::from_str(value.trim())
            .unwrap_or_else(|_| serde_json::Value::String(value.trim().to_string()));
        *node = parsed;
        let updated: Settings =
            serde_json::from_value(tree).map_err(|e| format!("`--set {assignment}`: {e}"))?;
        updated
            .validate()
            .map_err(|e| format!("`--set {assignment}`: {e}"))?;
        *self = updated;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_by_name_and_checks_types_and_ranges() {
        let mut s = Settings::default();
        s.set("controller_lr=0.003").unwrap();
        s.set("child.patience=4").unwrap();
        s.set("use_baseline=true").unwrap();
        assert_eq!(
            (s.controller_lr, s.child.patience, s.use_baseline),
            (0.003, 4, true)
        );
        assert!(s
            .set("nonsense=1")
            .unwrap_err()
            .contains("no setting `nonsense`"));
        assert!(
            s.set("child.lr=fast").unwrap_err().contains("child.lr")
                || s.set("child.lr=fast").is_err()
        );
        assert!(s.set("controller_lr=-1").unwrap_err().contains("above 0"));
        assert!(s
            .set("child.batch_size=0")
            .unwrap_err()
            .contains("at least 1"));
        assert!(s.set("controller_lr").unwrap_err().contains("KEY=VALUE"));
        assert_eq!(s.controller_lr, 0.003, "a refused --set changes nothing");
    }

    #[test]
    fn the_reference_preset_is_the_original() {
        let r = Settings::preset(Preset::Reference);
        assert!(!r.feed_previous_action && !r.use_baseline && !r.normalise_advantage);
        assert_eq!(
            (
                r.entropy_beta,
                r.entropy_decay,
                r.entropy_floor,
                r.grad_clip
            ),
            (0.01, 0.99, 0.0, 0.0)
        );
        assert_eq!(r.controller_lr, 1e-2);
        assert!(Settings::default().validate().is_ok() && r.validate().is_ok());
    }
}
