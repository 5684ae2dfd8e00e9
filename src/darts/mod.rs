//! DARTS, differentiable architecture search (Liu, Simonyan & Yang 2019), with Kubeflow Katib's
//! trial interface: the settings by Katib's names (`config`, `settings`), the operations
//! (`ops`), the supernet of mixed operations (`supernet`), the architect computing the alpha
//! gradient of first or second order (`architect`), genotypes and the discrete network
//! (`genotype`, `discrete`), and the bilevel search with its outputs and the commands
//! `darts` and `darts-train` (`search`, `plots`).

pub mod architect;
pub mod config;
pub mod discrete;
pub mod genotype;
pub mod ops;
pub mod plots;
pub mod search;
pub mod settings;
pub mod supernet;
