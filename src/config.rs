//! Every default of archsearch in one place: the half-moon NAS demo's hyperparameters
//! (docs/algorithms.md §1, after Zoph & Le 2016), grouped under short headers.
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

// --- Preset `reference`: minimal-nas exactly (docs/algorithms.md §1) ---
pub const REFERENCE_FEED_PREVIOUS_ACTION: bool = false; // all-zero GRU input at every step
pub const REFERENCE_CONTROLLER_LR: f64 = 1e-2; // Adam
pub const REFERENCE_ENTROPY_BETA: f64 = 0.01; // times 0.99 per rollout, no floor
pub const REFERENCE_ENTROPY_DECAY: f64 = 0.99; // beta's decay per rollout
pub const REFERENCE_USE_BASELINE: bool = false; // raw rewards
pub const REFERENCE_GRAD_CLIP: f64 = 0.0; // the original's clip_norm = 0

// --- Reward shaping (docs/algorithms.md §1) ---
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
pub const BENCH_TINY_OPS: usize = 2000; // tiny libtorch calls timed for `us_per_tiny_op`
pub const BENCH_KERNEL_SEEDS: u64 = 20; // children trained per timing of the CPU kernel
pub const BENCH_PEAK_ITERATIONS: u64 = 4_000_000; // iterations of the single-core peak FLOP loop
pub const BENCH_POPULATION_SIZES: [usize; 4] = [1, 8, 64, 256]; // children per population timing
pub const CPU_KERNEL: bool = true; // MLP children on a CPU train in cpu_mlp.rs's loops, not libtorch (--set child.cpu_kernel=false)
pub const CPU_KERNEL_AVX2: bool = true; // those loops use AVX2 where the CPU has it (same numbers, only faster)
pub const CPU_KERNEL_EVAL_POINTS: usize = 256; // points per pass when that kernel computes a split's loss or accuracy

// --- Feature `choice-list` (hannah-style spaces, docs/algorithms.md §2) ---
pub const CL_ROLLOUTS: usize = 500; // children evaluated per strategy and seed
pub const CL_BATCH: usize = 8; // configurations asked for (and trained side by side) at a time
pub const CL_BINS: usize = 8; // bins an Interval is cut into for the controller's decisions
pub const EVOLUTION_POPULATION: usize = 100; // aging evolution's population (hannah's default)
pub const EVOLUTION_SAMPLE_SIZE: usize = 20; // members drawn per tournament
pub const EVOLUTION_EPS: f64 = 0.1; // probability that a random sample replaces the mutation
pub const CL_MOVING_AVERAGE: usize = 50; // window of accuracy.png's curves with several runs

// --- Image data (src/data/images) ---
pub const IMAGE_DEV_FRACTION: f64 = 0.1; // MNIST, Fashion-MNIST, CIFAR-10: dev is this last part of the official training set
pub const MAX_DATA_FILE_BYTES: u64 = 1 << 30; // an image file (after gunzip) larger than this is refused
pub const DIGITS_PIXEL_MAX: f32 = 16.0; // the bundled digits' pixels count 4x4 blocks: 0 to 16

// --- General trainer (any tch module: src/nn/train.rs) ---
pub const TRAIN_OPTIMIZER: Optimizer = Optimizer::Sgd; // Sgd (with the momentum below) or Adam
pub const TRAIN_LR: f64 = 0.1; // learning rate at the start, annealed by a cosine
pub const TRAIN_LR_MIN: f64 = 0.0; // learning rate the cosine reaches after the last step
pub const TRAIN_MOMENTUM: f64 = 0.9; // SGD momentum (Adam uses ADAM_BETAS)
pub const TRAIN_NESTEROV: bool = true; // Nesterov momentum (SGD)
pub const TRAIN_WEIGHT_DECAY: f64 = 5e-4; // L2 penalty added to the gradient, both optimisers
pub const TRAIN_EPOCHS: usize = 20; // epochs at most; the cosine spans all of them
pub const TRAIN_BATCH_SIZE: usize = 32; // mini-batch size, reshuffled every epoch
pub const TRAIN_GRAD_CLIP: f64 = 5.0; // clip the gradients' global L2 norm to this; 0 = off
pub const TRAIN_PATIENCE: usize = 0; // stop after this many epochs without a better dev accuracy; 0 = never
pub const TRAIN_KEEP_BEST: bool = true; // end with the weights of the best dev epoch, not the last
pub const TRAIN_TIES_TO_LATER: bool = false; // of epochs tying for the best dev accuracy keep the last, not the first
pub const EVAL_BATCH_SIZE: usize = 1000; // examples per forward pass when evaluating
pub const GRAD_CLIP_EPS: f64 = 1e-6; // scale = max / (norm + this), as PyTorch's clip_grad_norm_
pub const TRAIN_LR_LIMIT: f64 = 1e3; // larger learning rates are refused (libtorch's Adam overflows near 1e38)
pub const TRAIN_WEIGHT_DECAY_LIMIT: f64 = 1e3; // larger weight decays are refused (libtorch's optimisers hold it as a 32-bit float)

// --- Baseline CNN (src/nn/cnn.rs) ---
pub const CNN_CHANNELS: [i64; 3] = [16, 32, 64]; // output channels of the three conv layers
pub const CNN_STRIDES: [i64; 3] = [1, 2, 2]; // their strides (8x8 digits: 8, 4, 2 pixels a side)
pub const CNN_KERNEL: i64 = 3; // kernel side, padded to keep the size at stride 1

// --- Final training (src/nn/final_training.rs): the chosen architecture trained properly ---
pub const RETRAIN_SEEDS: usize = 5; // every candidate is trained this often (seeds shared), the chosen one tested
pub const FINAL_OPTIMIZER: Optimizer = Optimizer::Adam; // the children's optimiser: a configuration's learning rate means the same
pub const FINAL_LR: f64 = 1e-2; // peak learning rate (the children's), annealed by a cosine
pub const FINAL_LR_MIN: f64 = 0.0; // learning rate the cosine reaches after the last step
pub const FINAL_MOMENTUM: f64 = 0.9; // SGD's momentum, when `final.optimizer` is sgd
pub const FINAL_WEIGHT_DECAY: f64 = 0.0; // L2 penalty; measured: 1e-3 changed little, 1e-2 underfits (README)
pub const FINAL_MAX_EPOCHS: usize = 200; // every epoch runs (twice 100 measured better on the moons: README)
pub const FINAL_BATCH_SIZE: usize = 32; // the children's mini-batch size
pub const FINAL_PATIENCE: usize = 0; // stop after this many epochs without a better dev accuracy; 0 = never
pub const FINAL_GRAD_CLIP: f64 = 0.0; // clip the gradients' global norm to this; 0 = off

// --- Choosing the best architecture (src/selection.rs) ---
pub const SELECT_CANDIDATES: usize = 5; // architectures trained with the final protocol before one is chosen
pub const SELECT_PRIOR_SAMPLES: f64 = 1.0; // pseudo-samples at the search's mean dev accuracy that shrink each architecture's mean

// --- Limits: the largest (or smallest) value accepted, whether it comes from a flag, `--set`,
// a YAML space, a data file or a checkpoint; they keep memory, time and arithmetic bounded ---
pub const ROLLOUTS_MAX: usize = 10_000_000; // rollouts per search
pub const SEARCHES_MAX: usize = 256; // searches run in lockstep (S)
pub const ROLLOUTS_PER_UPDATE_MAX: usize = 4096; // rollouts per controller update (K)
pub const CHILDREN_PER_UPDATE_MAX: usize = 4096; // K x S children trained side by side
pub const ROLLOUT_RECORDS_MAX: usize = 10_000_000; // rollouts x searches, every one kept in memory
pub const MAX_ACTIONS_MAX: usize = 64; // actions per rollout (so layers per child)
pub const CONTROLLER_HIDDEN_MAX: usize = 4096; // GRU hidden size
pub const CONTROLLER_WEIGHTS_MAX: usize = 64 << 20; // weights of all controllers together (~1 GB with Adam and gradient)
pub const CONTROLLER_LR_MAX: f64 = 1.0; // Adam's step is about lr: more only scrambles the policy
pub const GAMMA_MAX: f64 = 1.0; // a discount: gamma^T must not grow with T
pub const ENTROPY_BETA_MAX: f64 = 10.0; // entropy_beta and entropy_floor (an entropy is at most ln 10 here)
pub const PENALTY_MAX: f64 = 10.0; // |early_eos_penalty| and |repeat_penalty|; accuracies lie in [0, 1]
pub const GRAD_CLIP_MAX: f64 = 1e6; // a clip norm above this never clips
pub const CHILD_LR_MAX: f64 = 10.0; // child.lr and a space's learning_rate
pub const CHILD_BATCH_SIZE_MAX: usize = 1_000_000; // child.batch_size and a space's batch_size
pub const CHILD_MAX_EPOCHS_MAX: usize = 100_000; // child.max_epochs, child.patience and their space keys
pub const CHILD_WIDTH_MAX: usize = 4096; // units of one hidden layer of a child
pub const CHILD_WEIGHTS_MAX: usize = 4 << 20; // weights of one child (~64 MB with Adam and gradient)
pub const RETRAIN_SEEDS_MAX: usize = 1000; // retrainings of the best architecture
pub const MOVING_AVERAGE_MAX: usize = ROLLOUTS_MAX; // window of the moving averages
pub const DATA_BYTES_MAX: u64 = 1 << 30; // size of a --data file
pub const DATA_POINTS_MAX: usize = 10_000_000; // points of a --data file
pub const DATA_FEATURES_MAX: usize = 4096; // features (x1..xd) of a --data file
pub const DATA_VALUES_MAX: usize = 100_000_000; // points x features of a --data file (400 MB as f32)
pub const LABEL_MAX: i64 = 1000; // largest class label of a --data file
pub const CL_ROLLOUTS_MAX: usize = 1_000_000; // choice-list --rollouts
pub const CL_SEEDS_MAX: usize = 100; // choice-list --seeds
pub const CL_SPACE_BYTES_MAX: usize = 16 << 20; // size of a YAML space file
pub const CL_CONFIGSPACE_FORMAT_VERSION: f64 = 0.4; // ConfigSpace JSON layout version of deepcave/configspace.json
pub const CL_INDENT_MAX: usize = 1024; // columns of block indentation, checked before parsing (bounds nesting)
pub const CL_DEPTH_MAX: usize = 32; // parameters nested in parameters
pub const CL_PARAMETERS_MAX: usize = 200_000; // parameters and constants in a space
pub const CL_OPTIONS_MAX: usize = 50_000; // options of one list
pub const CL_PARAM_OPTIONS_MAX: usize = 64; // options of one list that are parameters, not fixed values (compared pairwise)
pub const CL_LIST_LENGTH_MAX: usize = 64; // elements of a ChoiceList (max - 1) or a Subset (size)
pub const CL_PARTITION_MAX: usize = 64; // groups of a Partition
pub const CL_DECISIONS_MAX: usize = 1000; // decisions of one configuration
pub const CELLS_SEEDS: u64 = 10; // cells search --seeds: searches per optimiser (the rest in src/cells/config.rs)
pub const CELLS_SEEDS_MAX: u64 = 10_000; // cells search --seeds

// --- Output ---
pub const MIN_REWARD_SD: f64 = 0.01; // smallest reward sd the baseline divides by (keeps the first advantages finite)
pub const REACH_LEVEL: f64 = 0.90; // moving-average level whose first crossing summary.json reports
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
    /// How the best architecture is chosen and trained at the end (`--set final.max_epochs=...`).
    #[serde(rename = "final", default)]
    pub final_training: FinalSettings,
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

impl ChildSettings {
    /// Checks the ranges and limits of a child's training settings; `name` turns a field's
    /// name into the caller's (`child.lr` for `--set`, `learning_rate` in a choice-list space).
    pub fn validate(&self, name: &dyn Fn(&str) -> String) -> Result<(), String> {
        real(
            &name("lr"),
            self.lr,
            Above(0.0),
            AtMost(CHILD_LR_MAX, "CHILD_LR_MAX"),
        )?;
        real(
            &name("dropout"),
            self.dropout,
            AtLeast(0.0),
            Below(1.0, "dropout keeps some units"),
        )?;
        count(
            &name("batch_size"),
            self.batch_size,
            CHILD_BATCH_SIZE_MAX,
            "CHILD_BATCH_SIZE_MAX",
        )?;
        count(
            &name("max_epochs"),
            self.max_epochs,
            CHILD_MAX_EPOCHS_MAX,
            "CHILD_MAX_EPOCHS_MAX",
        )?;
        count(
            &name("patience"),
            self.patience,
            CHILD_MAX_EPOCHS_MAX,
            "CHILD_MAX_EPOCHS_MAX",
        )?;
        Ok(())
    }
}

/// The lower end of a range: `Above(x)` excludes x, `AtLeast(x)` includes it.
#[derive(Clone, Copy)]
enum Low {
    Above(f64),
    AtLeast(f64),
}

/// The upper end of a range with the name of its limit: `Below` excludes it, `AtMost` includes it.
#[derive(Clone, Copy)]
enum High {
    Below(f64, &'static str),
    AtMost(f64, &'static str),
}
use High::*;
use Low::*;

/// A real setting must be finite and in its range; the message names the range and its limit.
fn real(name: &str, v: f64, low: Low, high: High) -> Result<(), String> {
    let (lo_ok, lo_text) = match low {
        Above(x) => (v > x, format!("above {x}")),
        AtLeast(x) => (v >= x, format!("at least {x}")),
    };
    let (hi_ok, hi_text, limit) = match high {
        Below(x, why) => (v < x, format!("below {x}"), why),
        AtMost(x, why) => (v <= x, format!("at most {x}"), why),
    };
    if v.is_finite() && lo_ok && hi_ok {
        return Ok(());
    }
    let limit = if limit.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        format!(" ({limit} in src/config.rs)")
    } else {
        format!(" ({limit})")
    };
    let shown = if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    };
    Err(format!(
        "{name} must be a finite number {lo_text} and {hi_text}{limit}, got {shown}"
    ))
}

/// A count must lie in 1..=max; the message names the limit.
fn count(name: &str, v: usize, max: usize, limit: &str) -> Result<(), String> {
    if v == 0 {
        return Err(format!("{name} must be at least 1, got 0"));
    }
    if v > max {
        return Err(format!(
            "{name} is {v}, above the limit of {max} ({limit} in src/config.rs)"
        ));
    }
    Ok(())
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
            final_training: FinalSettings::default(),
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

    /// Checks every value a user can set against its range and the limits above; the error
    /// names the setting, the allowed range and the limit. Settings from flags, `--set` and
    /// checkpoints all pass through here.
    pub fn validate(&self) -> Result<(), String> {
        real(
            "controller_lr",
            self.controller_lr,
            Above(0.0),
            AtMost(CONTROLLER_LR_MAX, "CONTROLLER_LR_MAX"),
        )?;
        real(
            "gamma",
            self.gamma,
            AtLeast(0.0),
            AtMost(GAMMA_MAX, "GAMMA_MAX"),
        )?;
        real(
            "entropy_beta",
            self.entropy_beta,
            AtLeast(0.0),
            AtMost(ENTROPY_BETA_MAX, "ENTROPY_BETA_MAX"),
        )?;
        real(
            "entropy_decay",
            self.entropy_decay,
            Above(0.0),
            AtMost(1.0, "a decay"),
        )?;
        real(
            "entropy_floor",
            self.entropy_floor,
            AtLeast(0.0),
            AtMost(ENTROPY_BETA_MAX, "ENTROPY_BETA_MAX"),
        )?;
        real(
            "baseline_decay",
            self.baseline_decay,
            Above(0.0),
            Below(1.0, "a decay"),
        )?;
        real(
            "grad_clip",
            self.grad_clip,
            AtLeast(0.0),
            AtMost(GRAD_CLIP_MAX, "GRAD_CLIP_MAX"),
        )?;
        for (name, v) in [
            ("early_eos_penalty", self.early_eos_penalty),
            ("repeat_penalty", self.repeat_penalty),
        ] {
            real(
                name,
                v,
                AtLeast(-PENALTY_MAX),
                AtMost(PENALTY_MAX, "PENALTY_MAX"),
            )?;
        }
        count("rollouts", self.rollouts, ROLLOUTS_MAX, "ROLLOUTS_MAX")?;
        count(
            "max_actions",
            self.max_actions,
            MAX_ACTIONS_MAX,
            "MAX_ACTIONS_MAX",
        )?;
        count(
            "rollouts_per_update",
            self.rollouts_per_update,
            ROLLOUTS_PER_UPDATE_MAX,
            "ROLLOUTS_PER_UPDATE_MAX",
        )?;
        count("searches", self.searches, SEARCHES_MAX, "SEARCHES_MAX")?;
        count(
            "controller_hidden",
            self.controller_hidden,
            CONTROLLER_HIDDEN_MAX,
            "CONTROLLER_HIDDEN_MAX",
        )?;
        count(
            "retrain_seeds",
            self.retrain_seeds,
            RETRAIN_SEEDS_MAX,
            "RETRAIN_SEEDS_MAX",
        )?;
        count(
            "moving_average",
            self.moving_average,
            MOVING_AVERAGE_MAX,
            "MOVING_AVERAGE_MAX",
        )?;
        self.child.validate(&|field| format!("child.{field}"))?;
        // Limits of products: memory grows with both factors.
        let children = self.rollouts_per_update.saturating_mul(self.searches);
        if children > CHILDREN_PER_UPDATE_MAX {
            return Err(format!(
                "rollouts_per_update x searches is {} x {} = {children} children trained side by side, above the limit of {CHILDREN_PER_UPDATE_MAX} (CHILDREN_PER_UPDATE_MAX in src/config.rs)",
                self.rollouts_per_update, self.searches
            ));
        }
        let records = self.rollouts.saturating_mul(self.searches);
        if records > ROLLOUT_RECORDS_MAX {
            return Err(format!(
                "rollouts x searches is {} x {} = {records} rollouts, above the limit of {ROLLOUT_RECORDS_MAX} (ROLLOUT_RECORDS_MAX in src/config.rs)",
                self.rollouts, self.searches
            ));
        }
        self.final_training
            .validate()
            .map_err(|e| format!("final.{e}"))
    }

    /// Applies `key=value` (a field name as in summary.json, `child.lr` for nested ones),
    /// checked by type; the error says what is wrong.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            format!("`--set {assignment}`: expected KEY=VALUE, e.g. --set controller_lr=0.003")
        })?;
        if key.trim() == "preset" {
            let flag = match value.trim() {
                v @ ("default" | "reference") => format!("`--preset {v}`"),
                _ => "`--preset default` or `--preset reference`".into(),
            };
            return Err(format!(
                "`--set {assignment}`: a preset is a set of values, not one setting; use {flag} instead"
            ));
        }
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

/// The optimisers of the general trainer (tch's implementations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Stochastic gradient descent with momentum (Nesterov's when `nesterov`).
    Sgd,
    /// Adam (Kingma & Ba 2015) with ADAM_BETAS and ADAM_EPS.
    Adam,
}

/// How the general trainer (`nn::train`) trains a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerSettings {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub lr_min: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Global L2 norm the gradients are clipped to; 0 = no clipping.
    pub grad_clip: f64,
    /// Epochs without a better dev accuracy before stopping; 0 = run every epoch.
    pub patience: usize,
    /// Restore the weights (and batch-norm statistics) of the best dev epoch at the end.
    pub keep_best: bool,
    /// Of epochs tying for the best dev accuracy, the last counts as the best (else the first).
    #[serde(default)]
    pub ties_to_later: bool,
    pub eval_batch_size: usize,
}

impl Default for TrainerSettings {
    fn default() -> Self {
        TrainerSettings {
            optimizer: TRAIN_OPTIMIZER,
            lr: TRAIN_LR,
            lr_min: TRAIN_LR_MIN,
            momentum: TRAIN_MOMENTUM,
            nesterov: TRAIN_NESTEROV,
            weight_decay: TRAIN_WEIGHT_DECAY,
            epochs: TRAIN_EPOCHS,
            batch_size: TRAIN_BATCH_SIZE,
            grad_clip: TRAIN_GRAD_CLIP,
            patience: TRAIN_PATIENCE,
            keep_best: TRAIN_KEEP_BEST,
            ties_to_later: TRAIN_TIES_TO_LATER,
            eval_batch_size: EVAL_BATCH_SIZE,
        }
    }
}

impl TrainerSettings {
    /// Checks every value; the error names the setting and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lr > 0.0 && self.lr <= TRAIN_LR_LIMIT) {
            return Err(format!(
                "lr must be above 0 and at most {TRAIN_LR_LIMIT}, got {}",
                self.lr
            ));
        }
        if !(self.lr_min.is_finite() && (0.0..=self.lr).contains(&self.lr_min)) {
            return Err(format!(
                "lr_min must be between 0 and lr ({}), got {}",
                self.lr, self.lr_min
            ));
        }
        for (name, v) in [
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
            ("grad_clip", self.grad_clip),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "{name} must be a finite number of at least 0, got {v}"
                ));
            }
        }
        if self.weight_decay > TRAIN_WEIGHT_DECAY_LIMIT {
            return Err(format!(
                "weight_decay must be at most {TRAIN_WEIGHT_DECAY_LIMIT} (TRAIN_WEIGHT_DECAY_LIMIT in src/config.rs), got {:e}",
                self.weight_decay
            ));
        }
        if self.momentum >= 1.0 {
            return Err(format!("momentum must be below 1, got {}", self.momentum));
        }
        if self.nesterov && self.optimizer == Optimizer::Sgd && self.momentum == 0.0 {
            return Err("nesterov needs a momentum above 0".into());
        }
        for (name, v) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The final training of the chosen architecture (`nn::final_training`) and how many
/// candidates it judges (`selection`): the general trainer with a cosine schedule, keeping the
/// weights of the last epoch with the best dev accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalSettings {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub lr_min: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub max_epochs: usize,
    pub batch_size: usize,
    /// Epochs without a better dev accuracy before stopping; 0 = run every epoch.
    pub patience: usize,
    pub grad_clip: f64,
    /// Architectures trained with this protocol before the best is chosen.
    pub candidates: usize,
    /// Pseudo-samples at the search's mean dev accuracy that shrink each architecture's mean
    /// when the candidates are ranked.
    pub prior_samples: f64,
}

impl Default for FinalSettings {
    fn default() -> Self {
        FinalSettings {
            optimizer: FINAL_OPTIMIZER,
            lr: FINAL_LR,
            lr_min: FINAL_LR_MIN,
            momentum: FINAL_MOMENTUM,
            weight_decay: FINAL_WEIGHT_DECAY,
            max_epochs: FINAL_MAX_EPOCHS,
            batch_size: FINAL_BATCH_SIZE,
            patience: FINAL_PATIENCE,
            grad_clip: FINAL_GRAD_CLIP,
            candidates: SELECT_CANDIDATES,
            prior_samples: SELECT_PRIOR_SAMPLES,
        }
    }
}

impl FinalSettings {
    /// The general trainer's settings of this protocol, for a child with this learning rate and
    /// batch size (a choice-list configuration may set its own).
    pub fn trainer(&self, lr: f64, batch_size: usize) -> TrainerSettings {
        TrainerSettings {
            optimizer: self.optimizer,
            lr,
            lr_min: self.lr_min.min(lr),
            momentum: self.momentum,
            nesterov: false,
            weight_decay: self.weight_decay,
            epochs: self.max_epochs,
            batch_size,
            grad_clip: self.grad_clip,
            patience: self.patience,
            keep_best: true,
            ties_to_later: true,
            eval_batch_size: EVAL_BATCH_SIZE,
        }
    }

    /// Checks every value; the error names the setting (without the `final.` prefix).
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("max_epochs", self.max_epochs),
            ("batch_size", self.batch_size),
            ("candidates", self.candidates),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !(self.lr_min.is_finite() && self.lr_min >= 0.0 && self.lr_min <= self.lr) {
            return Err(format!(
                "lr_min must be between 0 and lr ({}), got {}",
                self.lr, self.lr_min
            ));
        }
        self.trainer(self.lr, self.batch_size).validate()?;
        if !(self.prior_samples.is_finite() && self.prior_samples >= 0.0) {
            return Err(format!(
                "prior_samples must be a finite number of at least 0, got {}",
                self.prior_samples
            ));
        }
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
    fn final_training_settings_are_set_by_name_and_checked() {
        let mut s = Settings::default();
        s.set("final.max_epochs=7").unwrap();
        s.set("final.optimizer=sgd").unwrap();
        assert_eq!(s.final_training.max_epochs, 7);
        assert_eq!(s.final_training.optimizer, Optimizer::Sgd);
        let t = s.final_training.trainer(0.05, 16);
        assert_eq!((t.epochs, t.lr, t.batch_size), (7, 0.05, 16));
        assert!(t.keep_best && t.ties_to_later && t.validate().is_ok());
        for (bad, named) in [
            ("final.candidates=0", "final.candidates"),
            ("final.max_epochs=0", "final.max_epochs"),
            ("final.lr=-1", "final.lr"),
            ("final.lr_min=1", "final.lr_min"),
            ("final.prior_samples=-1", "final.prior_samples"),
            ("final.momentum=1", "final.momentum"),
        ] {
            let err = s.set(bad).unwrap_err();
            assert!(err.contains(named), "{bad}: {err}");
        }
        assert_eq!(
            s.final_training.max_epochs, 7,
            "a refused --set changes nothing"
        );
        // A checkpoint written before these settings existed reads with the defaults.
        let mut old = serde_json::to_value(Settings::default()).unwrap();
        old.as_object_mut().unwrap().remove("final");
        let read: Settings = serde_json::from_value(old).unwrap();
        assert_eq!(read.final_training, FinalSettings::default());
    }

    #[test]
    fn every_numeric_setting_has_a_range_that_names_its_limit() {
        // (assignment, text the refusal must contain)
        let refused = [
            ("controller_hidden=1000000", "CONTROLLER_HIDDEN_MAX"),
            ("controller_hidden=0", "at least 1"),
            ("searches=100000", "SEARCHES_MAX"),
            ("rollouts=10000001", "ROLLOUTS_MAX"),
            ("rollouts_per_update=4097", "ROLLOUTS_PER_UPDATE_MAX"),
            ("max_actions=65", "MAX_ACTIONS_MAX"),
            ("retrain_seeds=100000000", "RETRAIN_SEEDS_MAX"),
            ("moving_average=0", "at least 1"),
            ("child.max_epochs=100001", "CHILD_MAX_EPOCHS_MAX"),
            ("child.patience=100001", "CHILD_MAX_EPOCHS_MAX"),
            ("child.batch_size=1000001", "CHILD_BATCH_SIZE_MAX"),
            ("child.lr=11", "CHILD_LR_MAX"),
            ("child.lr=0", "above 0"),
            ("child.dropout=1.5", "below 1"),
            ("child.dropout=1", "below 1"),
            ("child.dropout=-1", "at least 0"),
            ("gamma=1e300", "GAMMA_MAX"),
            ("gamma=1.01", "GAMMA_MAX"),
            ("gamma=-1", "at least 0"),
            ("entropy_beta=1e300", "ENTROPY_BETA_MAX"),
            ("entropy_floor=11", "ENTROPY_BETA_MAX"),
            ("entropy_decay=1.5", "at most 1"),
            ("baseline_decay=1", "below 1"),
            ("repeat_penalty=1e308", "PENALTY_MAX"),
            ("early_eos_penalty=-11", "at least -10"),
            ("controller_lr=2", "CONTROLLER_LR_MAX"),
            ("grad_clip=1e7", "GRAD_CLIP_MAX"),
            ("controller_lr=NaN", "controller_lr"),
            ("controller_lr=1e400", "controller_lr"),
            ("child.max_epochs=1e20", "child.max_epochs"),
            ("seed=-1", "seed"),
            ("final.weight_decay=1e308", "TRAIN_WEIGHT_DECAY_LIMIT"),
        ];
        for (assignment, expected) in refused {
            let mut s = Settings::default();
            let e = s.set(assignment).unwrap_err();
            assert!(e.contains(expected), "{assignment}: {e}");
            assert_eq!(s, Settings::default(), "{assignment} changed nothing");
        }
        // The ends of the ranges are accepted.
        let mut s = Settings::default();
        for ok in [
            "gamma=1",
            "gamma=0",
            "child.dropout=0.99",
            "controller_hidden=1",
            "controller_lr=1",
            "early_eos_penalty=-10",
            "searches=256",
        ] {
            s.set(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn limits_of_products_are_checked_too() {
        let s = Settings {
            searches: 2,
            rollouts_per_update: 4096,
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .contains("CHILDREN_PER_UPDATE_MAX"));
        let s = Settings {
            searches: 2,
            rollouts: ROLLOUTS_MAX,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("ROLLOUT_RECORDS_MAX"));
        let s = Settings {
            controller_hidden: CONTROLLER_HIDDEN_MAX,
            ..Settings::default()
        };
        assert_eq!(
            s.validate(),
            Ok(()),
            "one search at the largest hidden size fits"
        );
    }

    #[test]
    fn a_preset_cannot_be_set_as_one_value() {
        let mut s = Settings::default();
        let e = s.set("preset=reference").unwrap_err();
        assert!(e.contains("use `--preset reference`"), "{e}");
        assert_eq!(s, Settings::default());
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
