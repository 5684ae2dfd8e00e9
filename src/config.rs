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
pub const FEED_PREVIOUS_ACTION: bool = true; // one-hot previous action as GRU input; false = reference's zeros
pub const CONTROLLER_LR: f64 = 1e-2; // Adam learning rate of the controller

// --- REINFORCE ---
pub const GAMMA: f64 = 1.0; // discount (1: every step gets the whole rollout's reward)
pub const ENTROPY_BETA: f64 = 0.01; // entropy bonus at the first rollout
pub const ENTROPY_DECAY: f64 = 0.99; // beta is multiplied by this after every rollout
pub const USE_BASELINE: bool = false; // subtract a moving average of past rewards
pub const BASELINE_DECAY: f64 = 0.95; // weight of the old baseline in the moving average

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

// --- Final evaluation ---
pub const RETRAIN_SEEDS: usize = 5; // the best architecture is retrained this often and tested

// --- Output ---
pub const MOVING_AVERAGE: usize = 100; // window of the moving averages (plots, progress, summary)
pub const LAST_ROLLOUTS: usize = 500; // summary's "last" mean covers this many final rollouts
pub const OUT_ROOT: &str = "runs"; // default --out is OUT_ROOT/<date-time>
pub const CHECKPOINT_EVERY: usize = 50; // rollouts between checkpoints (one is also written at exit)

/// Every setting of one search, filled from the constants above and overridden by flags.
/// Passed down explicitly so tests can run with tiny values; written whole into summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
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
    pub use_baseline: bool,
    pub baseline_decay: f64,
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
            use_baseline: USE_BASELINE,
            baseline_decay: BASELINE_DECAY,
            early_eos_penalty: EARLY_EOS_PENALTY,
            repeat_penalty: REPEAT_PENALTY,
            child: ChildSettings::default(),
            retrain_seeds: RETRAIN_SEEDS,
            moving_average: MOVING_AVERAGE,
        }
    }
}
