//! archsearch: neural architecture search on tch (libtorch). The default run reproduces the
//! half-moon NAS demo (a GRU controller trained by REINFORCE, after Zoph & Le 2016).

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod child;
#[cfg(feature = "choice-list")]
pub mod choice_list;
pub mod cli;
pub mod compare;
pub mod config;
pub mod controller;
pub mod cpu_mlp;
pub mod data;
pub mod error;
pub mod mlp;
pub mod nn;
pub mod outdir;
pub mod plot;
pub mod population;
pub mod progress;
pub mod report;
pub mod run;
pub mod search;
pub mod selection;
pub mod space;
pub mod strategy;
pub mod summary;
pub mod trainer;
