//! archsearch: neural architecture search on tch (libtorch). The default run reproduces the
//! half-moon NAS demo (a GRU controller trained by REINFORCE, after Zoph & Le 2016).

#[cfg(feature = "choice-list")]
pub mod choice_list;
pub mod cli;
pub mod commands;
pub mod config;
#[cfg(feature = "darts")]
pub mod darts;
pub mod data;
pub mod error;
pub mod nn;
pub mod outdir;
pub mod output;
pub mod search;
pub mod selection;
pub mod space;
pub mod strategy;
