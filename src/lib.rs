//! archsearch: neural architecture search on tch (libtorch). The default run reproduces the
//! half-moon NAS demo (a GRU controller trained by REINFORCE, after Zoph & Le 2016).

pub mod best;
#[cfg(feature = "cells")]
pub mod cells;
#[cfg(feature = "choice-list")]
pub mod choice_list;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cpu_time;
#[cfg(feature = "darts")]
pub mod darts;
pub mod data;
#[cfg(feature = "enas")]
pub mod enas;
pub mod error;
pub mod nn;
pub mod outdir;
pub mod output;
pub mod proxies;
pub mod search;
pub mod seeds;
pub mod selection;
pub mod space;
pub mod stats;
pub mod strategy;
