//! The NAS-Bench-201 cell space (cargo feature `cells`), after Dong & Yang 2020
//! ("NAS-Bench-201: Extending the scope of reproducible neural architecture search";
//! docs/algorithms.md §7): the cell and its string form, the cell as a categorical
//! configuration (one hyperparameter per edge) in ConfigSpace's JSON format, and the
//! canonical form that identifies isomorphic cells.

pub mod cell;
pub mod config;
pub mod configspace;
pub mod deepcave;
pub mod isomorphism;
pub mod nb201;
pub mod table;

pub use cell::{Cell, Op};
