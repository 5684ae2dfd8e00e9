//! The NAS-Bench-201 cell space (cargo feature `cells`), after Dong & Yang 2020
//! ("NAS-Bench-201: Extending the scope of reproducible neural architecture search";
//! docs/algorithms.md §7): the cell and its string form, the cell as a categorical
//! configuration (one hyperparameter per edge) in ConfigSpace's JSON format, the canonical
//! form that identifies isomorphic cells, the tabulated benchmark, and optimisers searching it
//! in simulated time (`cells search`).

pub mod build;
pub mod cell;
pub mod config;
pub mod configspace;
pub mod deepcave;
pub mod evaluator;
pub mod isomorphism;
pub mod nb201;
pub mod network;
pub mod progress;
pub mod proxies;
pub mod proxy_plot;
pub mod proxy_search;
pub mod report;
pub mod run;
pub mod space;
pub mod stack;
pub mod strategies;
pub mod table;
pub mod table_plot;

pub use cell::{Cell, Op};
