//! Every default of the `darts` feature (DARTS, Liu, Simonyan & Yang 2019, as Kubeflow Katib's
//! DARTS trial runs it): Katib's values by Katib's names, and the values archsearch uses instead
//! on small image sets, with the reason for each (docs/algorithms.md §6).

// --- Katib's defaults (its DARTS suggestion service, sent to the trial as numbers) ---
pub const KATIB_NUM_EPOCHS: usize = 50; // search epochs
pub const KATIB_W_LR: f64 = 0.025; // SGD learning rate of the weights, start of the cosine
pub const KATIB_W_LR_MIN: f64 = 0.001; // end of the cosine
pub const KATIB_W_MOMENTUM: f64 = 0.9; // SGD momentum of the weights
pub const KATIB_W_WEIGHT_DECAY: f64 = 3e-4; // L2 penalty of the weights
pub const KATIB_W_GRAD_CLIP: f64 = 5.0; // global norm the weights' gradient is clipped to
pub const KATIB_ALPHA_LR: f64 = 3e-4; // Adam learning rate of the alphas
pub const KATIB_ALPHA_WEIGHT_DECAY: f64 = 1e-3; // L2 penalty of the alphas
pub const KATIB_BATCH_SIZE: usize = 128; // images per step, in both halves
pub const KATIB_INIT_CHANNELS: usize = 16; // channels of the first cells
pub const KATIB_PRINT_STEP: usize = 50; // a progress line every this many steps
pub const KATIB_NUM_NODES: usize = 4; // intermediate nodes per cell
pub const KATIB_STEM_MULTIPLIER: usize = 3; // stem channels = this x init_channels
/// Katib's own example search space (its darts-gpu Experiment), in Katib's names.
pub const KATIB_SEARCH_SPACE: [&str; 6] = [
    "separable_convolution_3x3",
    "dilated_convolution_3x3",
    "dilated_convolution_5x5",
    "avg_pooling_3x3",
    "max_pooling_3x3",
    "skip_connection",
];

// --- archsearch's defaults for small image sets (8x8 digits: ~20 alpha steps an epoch) ---
pub const NUM_EPOCHS: usize = 20; // Katib: 50; fewer, smaller epochs fit the 10-minute goal
pub const BATCH_SIZE: usize = 32; // Katib: 128; 4x the steps per epoch on 629 alpha images
pub const ALPHA_LR: f64 = 3e-3; // Katib: 3e-4; 10x, so the alphas leave uniform (README)
pub const INIT_CHANNELS: usize = 8; // Katib: 16; half on 8x8 images; 4 gave cells below the fixed CNN (98.07 % over seeds 0-3 against 98.50 %), 8 above it (98.67 %; BENCHMARKS.md)
pub const NUM_LAYERS: usize = 3; // cells: normal, reduce, reduce, as Katib's darts-gpu Experiment (8x8 -> 2x2)
pub const W_LR: f64 = KATIB_W_LR; // unchanged
pub const W_LR_MIN: f64 = KATIB_W_LR_MIN; // unchanged
pub const W_MOMENTUM: f64 = KATIB_W_MOMENTUM; // unchanged
pub const W_WEIGHT_DECAY: f64 = KATIB_W_WEIGHT_DECAY; // unchanged
pub const W_GRAD_CLIP: f64 = KATIB_W_GRAD_CLIP; // unchanged
pub const ALPHA_WEIGHT_DECAY: f64 = KATIB_ALPHA_WEIGHT_DECAY; // unchanged
pub const PRINT_STEP: usize = KATIB_PRINT_STEP; // unchanged
pub const NUM_NODES: usize = KATIB_NUM_NODES; // unchanged
pub const STEM_MULTIPLIER: usize = KATIB_STEM_MULTIPLIER; // unchanged
pub const ORDER: u8 = 1; // 1: alpha gradient at the current weights; 2: the unrolled step

// --- The optimisers' fixed constants (the paper's and Katib's) ---
pub const ALPHA_BETAS: (f64, f64) = (0.5, 0.999); // Adam betas of the alphas
pub const ALPHA_EPS: f64 = 1e-8; // Adam epsilon (PyTorch's default)
pub const ALPHA_INIT_SD: f64 = 1e-3; // alphas start as 1e-3 x standard normal
pub const HESSIAN_EPS: f64 = 0.01; // finite-difference step = this / ||grad_w' L_val||
pub const BN_EPS: f64 = 1e-5; // batch norm epsilon (PyTorch's default)
pub const BN_MOMENTUM: f64 = 0.1; // batch norm running-statistics momentum (PyTorch's default)
pub const CLIP_EPS: f64 = 1e-6; // PyTorch's clip_grad_norm_ divides by norm + this

// --- After the search ---
pub const RETRAIN_SEEDS: usize = 10; // trainings of the found genotype: 10, as the fixed CNN's figure (3 left a standard error of 0.3 to 0.5 points on 360 test images, more than the gaps judged)
pub const RANDOM_GENOTYPES: usize = 5; // random genotypes trained the same way, as the baseline
pub const RETRAIN_EPOCHS: usize = crate::config::TRAIN_EPOCHS; // epochs of each retraining (20: the fixed CNN baseline's)
pub const RETRAIN_LR: f64 = crate::config::TRAIN_LR; // peak learning rate of the "cnn" protocol (0.1: the fixed CNN baseline's)
pub const RETRAIN_PROTOCOL: &str = "cnn"; // "cnn": the general trainer, as the fixed CNN baseline is trained; "final": the final-training protocol
pub const RETRAIN_PROTOCOLS: [&str; 2] = ["cnn", "final"]; // the values retrain_protocol takes
pub const TRAIN_IMAGES: usize = 0; // use only this many training images; 0 = all (tests)
pub const NEAR_UNIFORM: f64 = 0.05; // an edge whose weights spread (max - min) less than this is near uniform
pub const NEAR_UNIFORM_SHARE: f64 = 0.5; // warn when more than this share of edges is near uniform

// --- Limits (bad input beyond them is refused) ---
pub const NUM_EPOCHS_MAX: usize = 100_000; // search epochs
pub const NUM_LAYERS_MAX: usize = 64; // cells
pub const NUM_NODES_MAX: usize = 16; // intermediate nodes per cell
pub const CHANNELS_MAX: usize = 1024; // init_channels and stem_multiplier x init_channels
pub const BATCH_SIZE_MAX: usize = 65_536; // images per step
pub const LR_MAX: f64 = 10.0; // w_lr and alpha_lr
pub const SEEDS_MAX: usize = 1000; // retrain_seeds and random_genotypes
