//! Defaults of the `cells` feature (the NAS-Bench-201 cell space, docs/algorithms.md §7).

// --- the cell space ---
pub const NODES: usize = 4; // nodes of a cell: node 0 is the input, node 3 the output
pub const EDGES: usize = NODES * (NODES - 1) / 2; // one edge from every earlier node: 6
pub const OPS: usize = 5; // operations an edge can carry
pub const CELLS: usize = 15_625; // OPS^EDGES cells in the space
pub const UNIQUE_CELLS: usize = 6_466; // NAS-Bench-201's published count of non-isomorphic cells

// --- reading the real NAS-Bench-201 results (NASLib's pickle, src/cells/nb201.rs) ---
pub const NB201_BUDGETS: [usize; 8] = [1, 2, 4, 8, 12, 25, 50, 100]; // epochs offered below the file's full count
pub const NB201_DATASETS: [&str; 4] = ["cifar10-valid", "cifar100", "ImageNet16-120", "ninapro"]; // dataset keys tried in order

// --- the configuration space ---
pub const SPACE_NAME: &str = "nas-bench-201-cell"; // `name` of the exported configspace.json
pub const JSON_FORMAT_VERSION: f64 = 0.4; // ConfigSpace JSON layout version written
pub const DEFAULT_OP: &str = "none"; // default choice of every edge (ConfigSpace's first choice)
