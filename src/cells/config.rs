//! Defaults of the `cells` feature (the NAS-Bench-201 cell space, docs/algorithms.md §7).

// --- the cell space ---
pub const NODES: usize = 4; // nodes of a cell: node 0 is the input, node 3 the output
pub const EDGES: usize = NODES * (NODES - 1) / 2; // one edge from every earlier node: 6
pub const OPS: usize = 5; // operations an edge can carry
pub const CELLS: usize = 15_625; // OPS^EDGES cells in the space
pub const UNIQUE_CELLS: usize = 6_466; // NAS-Bench-201's published count of non-isomorphic cells
pub const FUNCTIONAL_CELLS: usize = 4_930; // classes that build the same network (isomorphism::functional)

// --- reading the real NAS-Bench-201 results (NASLib's pickle, src/cells/nb201.rs) ---
pub const NB201_BUDGETS: [usize; 8] = [1, 2, 4, 8, 12, 25, 50, 100]; // epochs offered below the file's full count
pub const NB201_DATASETS: [&str; 4] = ["cifar10-valid", "cifar100", "ImageNet16-120", "ninapro"]; // dataset keys tried in order

// --- the configuration space ---
pub const SPACE_NAME: &str = "nas-bench-201-cell"; // `name` of the exported configspace.json
pub const JSON_FORMAT_VERSION: f64 = 0.4; // ConfigSpace JSON layout version written
pub const DEFAULT_OP: &str = "none"; // default choice of every edge (ConfigSpace's first choice)

// --- the table build (`archsearch cells build`): NAS-Bench-201's protocol, scaled down ---
pub const BUILD_CHANNELS: i64 = 4; // channels of the skeleton's first stage (NAS-Bench-201: 16)
pub const BUILD_CELLS_PER_STAGE: usize = 1; // cells per stage, N (NAS-Bench-201: 5)
pub const BUILD_EPOCHS: usize = 4; // epochs of every training (NAS-Bench-201: 12 and 200)
pub const BUILD_BUDGETS: [usize; 3] = [1, 2, 4]; // epoch budgets offered to multi-fidelity optimisers
pub const BUILD_SEEDS: usize = 2; // trainings per cell, each with its own seed
pub const BUILD_SEED: u64 = 0; // base of every training's seed
pub const BUILD_LR: f64 = 0.1; // SGD learning rate, cosine-annealed to BUILD_LR_MIN (NAS-Bench-201's)
pub const BUILD_LR_MIN: f64 = 0.0; // learning rate at the last step
pub const BUILD_MOMENTUM: f64 = 0.9; // Nesterov momentum (NAS-Bench-201's)
pub const BUILD_WEIGHT_DECAY: f64 = 5e-4; // (NAS-Bench-201's)
pub const BUILD_BATCH_SIZE: usize = 128; // mini-batch (NAS-Bench-201: 256, on 50 000 images)
pub const BUILD_WORKERS: usize = 2; // cells trained at once, one libtorch thread each
pub const BUILD_CHANNELS_LAST: bool = true; // a cell's seeds, stacked, train on channels-last images (measured 1.8x faster than NCHW)
pub const BUILD_ROWS_FILE: &str = "rows.csv"; // the rows as they come, kept for --resume
pub const TABLE_FILE: &str = "table.csv.gz"; // the finished table (with table.json beside it)

// --- training-free proxies (`archsearch cells proxies`) ---
pub const PROXY_BATCH: usize = 128; // examples every proxy sees (NASWOT's batch)
pub const PROXY_BATCH_SEED: u64 = 0; // the shuffle that picks them from the train split
pub const PROXY_SEEDS: usize = 50; // seeds of every proxy-guided search setting
pub const PROXY_SEARCH_SEED: u64 = 1; // base of those seeds
pub const PROXY_RANDOM_SIZES: [usize; 3] = [10, 100, 1000]; // cells random search scores
pub const PROXY_POOL: usize = 64; // the evolutionary search's pool
pub const PROXY_TOURNAMENT: usize = 10; // cells drawn from the pool per step
pub const PROXY_EVOLUTION_STEPS: usize = 40; // steps (each scores up to 24 neighbours)
pub const PROXY_RANDOM_CHILD: f64 = 0.25; // chance the child is a random neighbour
pub const PROXY_WARM_UP: usize = 512; // random cells the warmed-up pool is the best 64 of

// --- searching the table (`archsearch cells search`, docs/algorithms.md §7.2) ---
pub const SEARCH_TRAININGS: f64 = 200.0; // default --budget: this many median full trainings' seconds
pub const SEARCH_THREADS: usize = 2; // searches run side by side (this machine has 2 cores)
pub const SEARCH_MAX_QUERIES: usize = 100_000; // queries per search at most, whatever the budget
pub const EVOLUTION_POPULATION: usize = 20; // regularised evolution: population P
pub const EVOLUTION_SAMPLE: usize = 5; // regularised evolution: sample (tournament) size S
pub const BO_INITIAL_DESIGN: usize = 10; // SMAC-style BO: random configurations before the model (SMAC3: 10 per hyperparameter; 20 or 40 measured no better)
pub const BO_RANDOM_EVERY: usize = 5; // every this many proposals one is random (SMAC3's HPO facade: probability 0.2)
pub const BO_TREES: usize = 10; // random forest: trees (SMAC's default)
pub const BO_MIN_SPLIT: usize = 3; // random forest: a node with fewer points is a leaf (SMAC3's forest default; its HPO facade's 2 measured no better)
pub const BO_MAX_DEPTH: usize = 20; // random forest: depth at most
pub const BO_FEATURE_RATIO: f64 = 5.0 / 6.0; // random forest: share of features tried per split (SMAC3's forest default)
pub const BO_LOCAL_STARTS: usize = 10; // EI maximisation: local searches from the evaluated cells of lowest predicted cost (SMAC3: 10)
pub const BO_RANDOM_CANDIDATES: usize = 500; // EI maximisation: random candidates scored beside them
pub const BO_RANDOM_STARTS: usize = 10; // EI maximisation: the best random candidates also start local searches
pub const BO_LOG_Y: bool = true; // model log-scaled costs, maximise log EI (SMAC3's HPO facade)
pub const BO_PREDICTED_BEST: bool = true; // EI's incumbent: lowest predicted (SMAC3) or observed cost
pub const BO_BY_CLASS: bool = true; // one functional class of isomorphic cells is one configuration
pub const BO_EXHAUSTIVE: bool = false; // EI maximisation: score every cell instead of local and random search
pub const BO_RANDOM_TRIES: usize = 100; // random proposals: draws to find a class not yet evaluated
pub const BO_LOG_EPSILON: f64 = 1e-10; // log scaling: the lower end's extra margin (SMAC3's)
pub const BO_XI: f64 = 0.0; // expected improvement's exploration margin (SMAC's default)
pub const HYPERBAND_ETA: f64 = 3.0; // Hyperband and DEHB: keep 1/eta of each rung (Li et al.: 3)
pub const DEHB_F: f64 = 0.5; // DEHB: mutation factor of rand/1 (Awad et al.: 0.5)
pub const DEHB_CR: f64 = 0.5; // DEHB: binomial crossover rate (Awad et al.: 0.5)
