//! Defaults of the `cells` feature (the NAS-Bench-201 cell space, docs/algorithms.md §7).

// --- the cell space ---
pub const NODES: usize = 4; // nodes of a cell: node 0 is the input, node 3 the output
pub const EDGES: usize = NODES * (NODES - 1) / 2; // one edge from every earlier node: 6
pub const OPS: usize = 5; // operations an edge can carry
pub const CELLS: usize = 15_625; // OPS^EDGES cells in the space
pub const UNIQUE_CELLS: usize = 6_466; // NAS-Bench-201's published count of non-isomorphic cells

// --- the configuration space ---
pub const SPACE_NAME: &str = "nas-bench-201-cell"; // `name` of the exported configspace.json
pub const JSON_FORMAT_VERSION: f64 = 0.4; // ConfigSpace JSON layout version written
pub const DEFAULT_OP: &str = "none"; // default choice of every edge (ConfigSpace's first choice)

// --- searching the table (`archsearch cells search`, docs/algorithms.md §7.4) ---
pub const SEARCH_TRAININGS: f64 = 200.0; // default --budget: this many median full trainings' seconds
pub const SEARCH_THREADS: usize = 2; // searches run side by side (this machine has 2 cores)
pub const SEARCH_MAX_QUERIES: usize = 100_000; // queries per search at most, whatever the budget
pub const EVOLUTION_POPULATION: usize = 20; // regularised evolution: population P
pub const EVOLUTION_SAMPLE: usize = 5; // regularised evolution: sample (tournament) size S
pub const BO_INITIAL_DESIGN: usize = 10; // SMAC-style BO: random configurations before the model
pub const BO_RANDOM_EVERY: usize = 2; // every this many proposals one is random (SMAC interleaves)
pub const BO_TREES: usize = 10; // random forest: trees (SMAC's default)
pub const BO_MIN_SPLIT: usize = 3; // random forest: a node with fewer points is a leaf (SMAC's default)
pub const BO_MAX_DEPTH: usize = 20; // random forest: depth at most
pub const BO_FEATURE_RATIO: f64 = 5.0 / 6.0; // random forest: share of features tried per split
pub const BO_LOCAL_STARTS: usize = 10; // EI maximisation: local searches from the best configurations
pub const BO_RANDOM_CANDIDATES: usize = 500; // EI maximisation: random candidates scored beside them
pub const BO_XI: f64 = 0.0; // expected improvement's exploration margin (SMAC's default)
pub const HYPERBAND_ETA: f64 = 3.0; // Hyperband and DEHB: keep 1/eta of each rung (Li et al.: 3)
pub const DEHB_F: f64 = 0.5; // DEHB: mutation factor of rand/1 (Awad et al.: 0.5)
pub const DEHB_CR: f64 = 0.5; // DEHB: binomial crossover rate (Awad et al.: 0.5)
