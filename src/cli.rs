//! The command line: flags for the settings people change most (defaults from `config.rs`),
//! checked before any work starts, and the mapping of errors to exit codes.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands::search_options::SearchOptions;
use crate::config;
use crate::error::{UsageError, EXIT_USAGE};
use crate::strategy::StrategyChoice;

/// Neural architecture search on libtorch. Without a command: the half-moon search of a GRU
/// controller trained by REINFORCE (Zoph & Le 2016), writing CSV, JSON and plots to --out.
#[derive(Parser, Debug)]
#[command(name = "archsearch", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub search: SearchArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure child-training speed (single child and population) on a device.
    Bench(crate::commands::bench::BenchArgs),
    /// Draw the learning curves of several run folders in one figure (mean and band over searches).
    Compare(crate::commands::compare::CompareArgs),
    /// Search a hannah-style YAML space (needs the cargo feature `choice-list`).
    ChoiceList(ChoiceListArgs),
    /// The NAS-Bench-201 cell space (needs the cargo feature `cells`).
    #[command(subcommand)]
    Cells(CellsCommand),
    /// ENAS macro search with parameter sharing, in Kubeflow Katib's formats (needs the cargo
    /// feature `enas`).
    Enas(EnasArgs),
    /// Train one architecture as a Katib ENAS trial does, printing Katib's metric lines (needs
    /// the cargo feature `enas`).
    EnasTrial(EnasTrialArgs),
    /// Write the default run's moons (or, with --data-seed, other ones) as CSV (x1,x2,label;
    /// train, dev, test in order), to feed the same points to another implementation or back
    /// with --data.
    Moons(MoonsArgs),
    /// Differentiable architecture search (DARTS) of conv cells on an image set, first or
    /// second order, with Katib's trial arguments (needs the cargo feature `darts`).
    Darts(DartsArgs),
    /// Train the network of a DARTS genotype (archsearch's or Katib's) as the fixed CNN baseline
    /// is trained, or with `--set retrain_protocol=final` by the final-training protocol (needs
    /// the cargo feature `darts`).
    DartsTrain(DartsTrainArgs),
}

/// The image sets of `archsearch darts`.
const DARTS_DATASETS: [&str; 4] = ["digits", "mnist", "fashion-mnist", "cifar10"];

/// Flags of `archsearch darts`.
#[derive(Args, Debug, Clone)]
pub struct DartsArgs {
    /// The image set: the bundled 8x8 digits, or mnist, fashion-mnist, cifar10 from --data-dir
    #[arg(long, default_value = "digits", value_parser = DARTS_DATASETS)]
    pub dataset: String,
    /// The folder holding the files of mnist, fashion-mnist or cifar10 (never downloaded)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// 1: the alpha gradient at the current weights; 2: through the unrolled weight step
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub order: Option<u8>,
    /// Katib's algorithm settings, e.g. "{'num_epochs': '10', 'init_channels': '8'}"
    #[arg(long, value_name = "DICT", allow_hyphen_values = true)]
    pub algorithm_settings: Option<String>,
    /// Katib's search space, e.g. "['separable_convolution_3x3', 'skip_connection']" (none is added)
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub search_space: Option<String>,
    /// Cells in the network (Katib's numLayers)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub num_layers: Option<String>,
    /// Override a setting by its summary.json name under "settings", e.g. --set alpha_lr=0.003 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Seed of the weights, alphas, batches and retrainings (CPU runs repeat exactly)
    #[arg(long, default_value_t = config::SEED)]
    pub seed: u64,
    /// Where the supernet trains: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder [default: runs/<date-time>]; must not exist or be empty
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the contents of a non-empty --out folder
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted or killed DARTS search in this folder from its last checkpoint
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force", "order", "algorithm_settings", "search_space", "num_layers", "overrides", "dataset", "data_dir", "seed"])]
    pub resume: Option<PathBuf>,
    /// No progress lines
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `archsearch darts-train`.
#[derive(Args, Debug, Clone)]
pub struct DartsTrainArgs {
    /// The genotype, in Katib's format: "Genotype(normal=[[('skip_connection',0),...]],...)"
    #[arg(long, allow_hyphen_values = true)]
    pub genotype: String,
    /// The image set
    #[arg(long, default_value = "digits", value_parser = DARTS_DATASETS)]
    pub dataset: String,
    /// The folder holding the files of mnist, fashion-mnist or cifar10
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Cells in the network
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub num_layers: Option<String>,
    /// Override a setting (init_channels, stem_multiplier, retrain_seeds, retrain_epochs, ...)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// First seed of the trainings
    #[arg(long, default_value_t = config::SEED)]
    pub seed: u64,
    /// Where the network trains: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// No progress lines
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(not(feature = "darts"))]
fn darts(_: &DartsArgs) -> anyhow::Result<i32> {
    Err(UsageError::new(NO_DARTS).into())
}

#[cfg(not(feature = "darts"))]
fn darts_train(_: &DartsTrainArgs) -> anyhow::Result<i32> {
    Err(UsageError::new(NO_DARTS).into())
}

#[cfg(not(feature = "darts"))]
const NO_DARTS: &str = "this archsearch was built without the `darts` feature; run it with \
     `cargo run --release --features darts -- darts --dataset digits` \
     (or `make build`, which enables every feature)";

#[cfg(feature = "darts")]
fn darts(args: &DartsArgs) -> anyhow::Result<i32> {
    crate::darts::search::run(&crate::darts::search::DartsOptions {
        dataset: args.dataset.clone(),
        data_dir: args.data_dir.clone(),
        order: args.order,
        algorithm_settings: args.algorithm_settings.clone(),
        search_space: args.search_space.clone(),
        num_layers: args.num_layers.clone(),
        overrides: args.overrides.clone(),
        seed: args.seed,
        device: args.device.clone(),
        out: args.out.clone(),
        force: args.force,
        resume: args.resume.clone(),
        quiet: args.quiet,
    })
}

#[cfg(feature = "darts")]
fn darts_train(args: &DartsTrainArgs) -> anyhow::Result<i32> {
    crate::darts::search::train_genotype(&crate::darts::search::TrainOptions {
        genotype: args.genotype.clone(),
        dataset: args.dataset.clone(),
        data_dir: args.data_dir.clone(),
        num_layers: args.num_layers.clone(),
        overrides: args.overrides.clone(),
        seed: args.seed,
        device: args.device.clone(),
        quiet: args.quiet,
    })
}

/// Flags of `archsearch moons`.
#[derive(Args, Debug, Clone)]
pub struct MoonsArgs {
    /// The CSV file to write
    #[arg(long)]
    pub out: PathBuf,
    /// The seed of the points: the default run's, or another draw of the same size and noise
    #[arg(long, allow_negative_numbers = true, default_value_t = config::DATA_SEED)]
    pub data_seed: u64,
}

/// Subcommands of `archsearch cells`.
#[derive(Subcommand, Debug, Clone)]
pub enum CellsCommand {
    /// Write the cell space as configspace.json (ConfigSpace's JSON layout) and print how many
    /// of its 15 625 cells are unique up to isomorphism.
    Space(CellsSpaceArgs),
    /// Train every class of isomorphic cells with a fixed protocol and tabulate train, dev and
    /// test accuracy and seconds per epoch (a NAS-Bench-201-style table; resumable)
    Build(CellsBuildArgs),
    /// Score every class of cells of a table with the training-free proxies at initialisation,
    /// rank-correlate them with the trained accuracy, and search on each proxy alone
    Proxies(CellsProxiesArgs),
    /// Run optimisers on a cell table in simulated time (each query costs its tabulated
    /// training seconds) and compare their regret over seeds: rollouts.csv, summary.json,
    /// regret.png.
    Search(CellsSearchArgs),
}

/// Flags of `archsearch cells proxies`.
#[derive(Args, Debug, Clone)]
pub struct CellsProxiesArgs {
    /// The table to judge the proxies against: NAME.csv.gz with NAME.json beside it, or
    /// NAS-Bench-201's pickle [default: the bundled table of the digits]
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Examples of the one batch every proxy sees
    #[cfg_attr(feature = "cells", arg(default_value_t = crate::cells::config::PROXY_BATCH as u64))]
    #[cfg_attr(not(feature = "cells"), arg(default_value_t = 1))]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch: u64,
    /// Seeds of every proxy-guided search setting
    #[cfg_attr(feature = "cells", arg(default_value_t = crate::cells::config::PROXY_SEEDS as u64))]
    #[cfg_attr(not(feature = "cells"), arg(default_value_t = 1))]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub seeds: u64,
    /// Score only the first N classes of cells (to try it out)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Folder to write into (default: runs/<date-time>)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace a previous run folder of archsearch's at --out
    #[arg(long)]
    pub force: bool,
    /// Finish a stopped or killed run in DIR with its own settings (the scores already there
    /// are kept)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force", "table", "limit"])]
    pub resume: Option<PathBuf>,
    /// No progress on stderr
    #[arg(long)]
    pub quiet: bool,
}

/// Flags of `archsearch cells build`.
#[derive(Args, Debug, Clone)]
pub struct CellsBuildArgs {
    /// Image dataset to train on: digits (bundled), mnist, fashion-mnist or cifar10
    #[arg(long, default_value = "digits", conflicts_with = "resume")]
    pub dataset: String,
    /// Folder holding the dataset's files (not for digits)
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub data_dir: Option<PathBuf>,
    /// Epochs of every training (the table's full budget)
    #[cfg_attr(feature = "cells", arg(default_value_t = crate::cells::config::BUILD_EPOCHS as u64))]
    #[cfg_attr(not(feature = "cells"), arg(default_value_t = 1))]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000), conflicts_with = "resume")]
    pub epochs: u64,
    /// Trainings per cell, each with its own seed
    #[cfg_attr(feature = "cells", arg(default_value_t = crate::cells::config::BUILD_SEEDS as u64))]
    #[cfg_attr(not(feature = "cells"), arg(default_value_t = 1))]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100), conflicts_with = "resume")]
    pub seeds: u64,
    /// Train only the first N classes of isomorphic cells (a partial table, to try the build)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "resume")]
    pub limit: Option<u64>,
    /// Cells trained at once (each with its seeds side by side), one libtorch thread each
    #[cfg_attr(feature = "cells", arg(default_value_t = crate::cells::config::BUILD_WORKERS as u64))]
    #[cfg_attr(not(feature = "cells"), arg(default_value_t = 1))]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,
    /// Where to train: cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Folder to write into (default: runs/<date-time>)
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Replace a previous run folder of archsearch's at --out
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Finish the build in DIR, training only what is missing
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// No progress on stderr
    #[arg(long)]
    pub quiet: bool,
}

/// The optimisers of `archsearch cells search`.
const CELLS_STRATEGIES: [&str; 7] = [
    "random",
    "evolution",
    "reinforce",
    "bo",
    "hyperband",
    "dehb",
    "all",
];

/// Flags of `archsearch cells search`.
#[derive(Args, Debug, Clone)]
pub struct CellsSearchArgs {
    /// The optimiser: random search, regularised evolution, REINFORCE, SMAC-style Bayesian
    /// optimisation (bo), Hyperband, DEHB, or all of them with the same seeds and budget
    #[arg(long, default_value = "all", value_parser = CELLS_STRATEGIES)]
    pub strategy: String,
    /// Searches per optimiser, seeds seed, seed+1, ...
    #[arg(long, allow_negative_numbers = true, default_value_t = config::CELLS_SEEDS, value_parser = clap::value_parser!(u64).range(1..=config::CELLS_SEEDS_MAX))]
    pub seeds: u64,
    /// First seed
    #[arg(long, allow_negative_numbers = true, default_value_t = config::SEED)]
    pub seed: u64,
    /// Simulated seconds each search may spend (summed tabulated training time of its
    /// queries) [default: 200 x the table's median full-training seconds]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub budget: Option<f64>,
    /// The table to search: NAME.csv.gz written by `archsearch cells build` with NAME.json
    /// beside it, or NAS-Bench-201's pickle [default: the bundled table of the digits]
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
    /// Output folder [default: runs/<date-time>]; must not exist or be empty
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the contents of a non-empty --out folder
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted or killed search in this folder
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force", "strategy", "seeds", "seed", "budget", "table"])]
    pub resume: Option<PathBuf>,
    /// No progress lines
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `archsearch cells space`.
#[derive(Args, Debug, Clone)]
pub struct CellsSpaceArgs {
    /// Folder to write configspace.json into (default: runs/<date-time>)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace a previous run folder of archsearch's at --out
    #[arg(long)]
    pub force: bool,
}

/// `archsearch cells` in a build without the feature: say how to get it.
#[cfg(not(feature = "cells"))]
fn cells(_: &CellsCommand) -> anyhow::Result<i32> {
    Err(UsageError::new(
        "this archsearch was built without the `cells` feature; run it with \
         `cargo run --release --features cells -- cells space --out DIR` \
         (or `make build`, which enables every feature)",
    )
    .into())
}

#[cfg(feature = "cells")]
fn cells(command: &CellsCommand) -> anyhow::Result<i32> {
    match command {
        CellsCommand::Space(args) => {
            let dir = crate::outdir::prepare(args.out.as_deref(), args.force, "cells space")?;
            let path = dir.join("configspace.json");
            crate::outdir::write_json_atomically(
                &path,
                &crate::cells::configspace::configspace_json(),
            )?;
            println!("wrote {}", path.display());
            println!(
                "{} cells, {} unique up to isomorphism (NAS-Bench-201's rule), {} classes that build the same network (the table's entries)",
                crate::cells::config::CELLS,
                crate::cells::isomorphism::unique_count(),
                crate::cells::isomorphism::functional_count()
            );
            Ok(0)
        }
        CellsCommand::Build(args) => {
            crate::cells::build::command(&crate::cells::build::BuildOptions {
                dataset: args.dataset.clone(),
                data_dir: args.data_dir.clone(),
                epochs: args.epochs as usize,
                seeds: args.seeds as usize,
                limit: args.limit.map(|l| l as usize),
                workers: args.workers as usize,
                device: args.device.clone(),
                out: args.out.clone(),
                force: args.force,
                resume: args.resume.clone(),
                quiet: args.quiet,
            })
        }
        CellsCommand::Proxies(args) => {
            crate::cells::proxies::command(&crate::cells::proxies::ProxyOptions {
                table: args.table.clone(),
                batch: args.batch as usize,
                seeds: args.seeds as usize,
                limit: args.limit.map(|l| l as usize),
                out: args.out.clone(),
                force: args.force,
                resume: args.resume.clone(),
                quiet: args.quiet,
            })
        }
        CellsCommand::Search(args) => crate::cells::run::run(&crate::cells::run::SearchOptions {
            strategy: args.strategy.clone(),
            seeds: args.seeds,
            seed: args.seed,
            budget: args.budget,
            table: args.table.clone(),
            out: args.out.clone(),
            force: args.force,
            resume: args.resume.clone(),
            quiet: args.quiet,
        }),
    }
}

/// Flags of `archsearch choice-list`.
#[derive(Args, Debug, Clone)]
pub struct ChoiceListArgs {
    /// The search space: a YAML file in hannah's parametrization (see spaces/mlp.yaml)
    #[arg(long, value_name = "FILE.yaml", required_unless_present = "resume")]
    pub space: Option<PathBuf>,
    /// Continue the interrupted or killed choice-list search in this folder
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force", "space"])]
    pub resume: Option<PathBuf>,
    /// How to search
    #[arg(long, value_enum, default_value = "evolution")]
    pub strategy: StrategyChoice,
    /// Children evaluated (rollouts) per strategy and seed; `--evaluations` is an alias
    #[arg(long, visible_alias = "evaluations", allow_negative_numbers = true, default_value_t = config::CL_ROLLOUTS as u64, value_parser = clap::value_parser!(u64).range(1..=config::CL_ROLLOUTS_MAX as u64))]
    pub rollouts: u64,
    /// First seed
    #[arg(long, allow_negative_numbers = true, default_value_t = config::SEED)]
    pub seed: u64,
    /// Runs per strategy, seeds seed, seed+1, ...
    #[arg(long, allow_negative_numbers = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=config::CL_SEEDS_MAX as u64))]
    pub seeds: u64,
    /// Where children train: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder [default: runs/<date-time>]; must not exist or be empty
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the contents of a non-empty --out folder
    #[arg(long)]
    pub force: bool,
    /// No progress bar or progress lines
    #[arg(long, short)]
    pub quiet: bool,
    /// The flags given on the command line (not defaulted), by field name.
    #[arg(skip)]
    pub given: Vec<String>,
    /// Override a setting by its summary.json name under "controller_settings", e.g.
    /// --set final.max_epochs=50 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Flags of `archsearch enas`.
#[derive(Args, Debug, Clone)]
pub struct EnasArgs {
    /// A whole Katib Experiment YAML: its spec.nasConfig and ENAS algorithmSettings are used
    #[arg(long, value_name = "FILE.yaml", conflicts_with_all = ["space", "resume"])]
    pub katib_experiment: Option<PathBuf>,
    /// A bare Katib nasConfig (graphConfig and operations) [default: spaces/enas-digits.yaml]
    #[arg(long, value_name = "FILE.yaml", conflicts_with = "resume")]
    pub space: Option<PathBuf>,
    /// An image dataset: digits (bundled), mnist, fashion-mnist or cifar10 (with --data-dir)
    #[arg(long, default_value = "digits", conflicts_with = "resume")]
    pub dataset: String,
    /// The folder holding the dataset's files
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub data_dir: Option<PathBuf>,
    /// Seed of the controller, the shared weights, the batches and the retraining
    #[arg(long, allow_negative_numbers = true, default_value_t = config::SEED, conflicts_with = "resume")]
    pub seed: u64,
    /// Where to train: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu", conflicts_with = "resume")]
    pub device: String,
    /// Train every sampled architecture from scratch (Katib's ENAS) instead of sharing weights
    #[arg(long, conflicts_with = "resume")]
    pub no_sharing: bool,
    /// Override a setting by its name (Katib's for the controller), e.g.
    /// --set controller_learning_rate=0.001 --set epochs=10 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    pub overrides: Vec<String>,
    /// Output folder [default: runs/<date-time>]; must not exist or be empty
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the contents of a non-empty --out folder
    #[arg(long)]
    pub force: bool,
    /// Continue the interrupted or killed enas search in this folder
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force"])]
    pub resume: Option<PathBuf>,
    /// No progress lines
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `archsearch enas-trial`, as a Katib ENAS trial receives them.
#[derive(Args, Debug, Clone)]
pub struct EnasTrialArgs {
    /// Katib's architecture string, e.g. "[[2], [0, 1]]" (single or double quotes)
    #[arg(long, allow_hyphen_values = true)]
    pub architecture: String,
    /// Katib's nn_config string (single or double quotes)
    #[arg(long, visible_alias = "nn_config", allow_hyphen_values = true)]
    pub nn_config: String,
    /// Epochs to train
    #[arg(long, visible_alias = "num_epochs", default_value_t = 10)]
    pub num_epochs: usize,
    /// An image dataset: digits (bundled), mnist, fashion-mnist or cifar10 (with --data-dir)
    #[arg(long, default_value = "digits")]
    pub dataset: String,
    /// The folder holding the dataset's files
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seed of the initial weights and the batches
    #[arg(long, allow_negative_numbers = true, default_value_t = config::SEED)]
    pub seed: u64,
    /// Where to train: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// `archsearch enas` in a build without the feature: say how to get it.
#[cfg(not(feature = "enas"))]
fn enas(_: &EnasArgs) -> anyhow::Result<i32> {
    Err(UsageError::new(
        "this archsearch was built without the `enas` feature; run it with \
         `cargo run --release --features enas -- enas --dataset digits` \
         (or `make build`, which enables every feature)",
    )
    .into())
}

#[cfg(feature = "enas")]
fn enas(args: &EnasArgs) -> anyhow::Result<i32> {
    crate::enas::command::run(&crate::enas::command::EnasOptions {
        katib_experiment: args.katib_experiment.clone(),
        space: args.space.clone(),
        dataset: args.dataset.clone(),
        data_dir: args.data_dir.clone(),
        seed: args.seed,
        device: args.device.clone(),
        no_sharing: args.no_sharing,
        overrides: args.overrides.clone(),
        out: args.out.clone(),
        force: args.force,
        resume: args.resume.clone(),
        quiet: args.quiet,
    })
}

/// `archsearch enas-trial` in a build without the feature: say how to get it.
#[cfg(not(feature = "enas"))]
fn enas_trial(_: &EnasTrialArgs) -> anyhow::Result<i32> {
    Err(UsageError::new(
        "this archsearch was built without the `enas` feature; run it with \
         `cargo run --release --features enas -- enas-trial ...` \
         (or `make build`, which enables every feature)",
    )
    .into())
}

#[cfg(feature = "enas")]
fn enas_trial(args: &EnasTrialArgs) -> anyhow::Result<i32> {
    crate::enas::command::trial(&crate::enas::command::TrialOptions {
        architecture: args.architecture.clone(),
        nn_config: args.nn_config.clone(),
        num_epochs: args.num_epochs,
        dataset: args.dataset.clone(),
        data_dir: args.data_dir.clone(),
        seed: args.seed,
        device: args.device.clone(),
    })
}

/// `archsearch choice-list` in a build without the feature: say how to get it.
#[cfg(not(feature = "choice-list"))]
fn choice_list(_: &ChoiceListArgs) -> anyhow::Result<i32> {
    Err(UsageError::new(
        "this archsearch was built without the `choice-list` feature; run it with \
         `cargo run --release --features choice-list -- choice-list --space spaces/mlp.yaml` \
         (or `make build`, which enables every feature)",
    )
    .into())
}

#[cfg(feature = "choice-list")]
fn choice_list(args: &ChoiceListArgs) -> anyhow::Result<i32> {
    crate::choice_list::run::run(&crate::choice_list::run::ChoiceListOptions {
        space: args.space.clone(),
        resume: args.resume.clone(),
        strategy: args.strategy,
        rollouts: args.rollouts,
        seed: args.seed,
        seeds: args.seeds,
        device: args.device.clone(),
        out: args.out.clone(),
        force: args.force,
        quiet: args.quiet,
        given: args.given.clone(),
        overrides: args.overrides.clone(),
    })
}

/// Flags of the default search.
#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    /// Architectures to sample and train (per search)
    #[arg(long, allow_negative_numbers = true, default_value_t = config::ROLLOUTS as u64, value_parser = clap::value_parser!(u64).range(1..=config::ROLLOUTS_MAX as u64))]
    pub rollouts: u64,
    /// Seed of the controller, the children and the retraining (CPU runs repeat exactly)
    #[arg(long, allow_negative_numbers = true, default_value_t = config::SEED)]
    pub seed: u64,
    /// Where children train: auto, cpu, cuda or cuda:N (auto picks CUDA when libtorch sees one)
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder [default: runs/<date-time>]; must not exist or be empty
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Points to search on instead of the moons: a CSV file with header x1,x2,label
    #[arg(long, conflicts_with = "dataset", value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// A real dataset instead of the moons: iris and winequality (linfa-datasets), the 8x8
    /// digits (bundled), or mnist, fashion-mnist and cifar10 read from --data-dir
    #[arg(long, value_parser = crate::data::DATASETS)]
    pub dataset: Option<String>,
    /// The folder holding the files of --dataset mnist, fashion-mnist or cifar10 (never downloaded)
    #[arg(long, value_name = "DIR", requires = "dataset")]
    pub data_dir: Option<PathBuf>,
    /// Rollouts sampled per controller update; their children train together (K)
    #[arg(long, allow_negative_numbers = true, default_value_t = config::ROLLOUTS_PER_UPDATE as u64, value_parser = clap::value_parser!(u64).range(1..=config::ROLLOUTS_PER_UPDATE_MAX as u64))]
    pub rollouts_per_update: u64,
    /// Independent searches (seeds seed, seed+1, ...) run in lockstep, children trained together (S)
    #[arg(long, allow_negative_numbers = true, default_value_t = config::SEARCHES as u64, value_parser = clap::value_parser!(u64).range(1..=config::SEARCHES_MAX as u64))]
    pub searches: u64,
    /// Controller settings: `default` (tuned so the search learns) or `reference` (the original)
    #[arg(long, value_enum, default_value = "default")]
    pub preset: config::Preset,
    /// Override any setting by its summary.json name, e.g. --set controller_lr=0.003 (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue the interrupted or killed search in this folder from its last checkpoint
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "force"])]
    pub resume: Option<PathBuf>,
    /// Replace the contents of a non-empty --out folder
    #[arg(long)]
    pub force: bool,
    /// No progress bar or progress lines
    #[arg(long, short)]
    pub quiet: bool,
    /// The flags given on the command line (not defaulted), by field name.
    #[arg(skip)]
    pub given: Vec<String>,
}

impl SearchArgs {
    /// The plain options of the default search that these flags give.
    pub fn options(&self) -> SearchOptions {
        SearchOptions {
            rollouts: self.rollouts,
            seed: self.seed,
            device: self.device.clone(),
            out: self.out.clone(),
            data: self.data.clone(),
            dataset: self.dataset.clone(),
            data_dir: self.data_dir.clone(),
            rollouts_per_update: self.rollouts_per_update,
            searches: self.searches,
            preset: self.preset,
            overrides: self.overrides.clone(),
            resume: self.resume.clone(),
            force: self.force,
            quiet: self.quiet,
            given: self.given.clone(),
        }
    }
}

/// Parses the command line, runs it, and turns the outcome into an exit code.
pub fn main() -> i32 {
    install_panic_hook();
    // Like other Unix tools, end quietly when stdout's reader goes away (`archsearch ... | head`)
    // instead of failing on the next print. SAFETY: setting a signal's action to the default
    // at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.search.given = [
        "rollouts",
        "seed",
        "device",
        "data",
        "dataset",
        "data_dir",
        "rollouts_per_update",
        "searches",
        "preset",
        "overrides",
    ]
    .into_iter()
    .filter(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
    .map(String::from)
    .collect();
    if let (Some(Command::ChoiceList(args)), Some(sub)) =
        (&mut cli.command, matches.subcommand_matches("choice-list"))
    {
        args.given = ["strategy", "rollouts", "seed", "seeds", "device"]
            .into_iter()
            .filter(|id| sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .map(String::from)
            .collect();
    }
    let outcome = match cli.command {
        Some(Command::Bench(args)) => crate::commands::bench::run(&args).map(|_| 0),
        Some(Command::Compare(args)) => crate::commands::compare::run(&args).map(|_| 0),
        Some(Command::ChoiceList(args)) => choice_list(&args),
        Some(Command::Cells(command)) => cells(&command),
        Some(Command::Enas(args)) => enas(&args),
        Some(Command::EnasTrial(args)) => enas_trial(&args),
        Some(Command::Moons(args)) => crate::commands::moons::run(&args.out, args.data_seed),
        Some(Command::Darts(args)) => darts(&args),
        Some(Command::DartsTrain(args)) => darts_train(&args),
        None => crate::commands::search::search(&cli.search.options()),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<UsageError>() {
                crate::errln!("error: {usage}");
                EXIT_USAGE
            } else {
                crate::errln!("error: {e:#}");
                1
            }
        }
    }
}

/// A failure inside libtorch or a bug prints one line, not a backtrace.
fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown".into());
        let message = message.lines().next().unwrap_or("").to_string();
        let place = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        crate::errln!("error: internal failure: {message}{place}\nThis is a bug in archsearch or libtorch; set RUST_BACKTRACE=1 for details.");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_constants() {
        let cli = Cli::try_parse_from(["archsearch", "--rollouts", "20", "--seed", "3"]).unwrap();
        let s = cli.search.options().settings().unwrap();
        assert_eq!((s.rollouts, s.seed), (20, 3));
        assert_eq!(s.child, crate::config::ChildSettings::default());
        assert!(Cli::try_parse_from(["archsearch", "--rollouts", "0"]).is_err());
        assert!(Cli::try_parse_from(["archsearch", "--rollouts", "-5"]).is_err());
        assert!(
            Cli::try_parse_from(["archsearch", "--data", "a.csv", "--dataset", "iris"]).is_err()
        );
    }

    #[test]
    fn choice_list_takes_rollouts_and_the_evaluations_alias() {
        for flag in ["--rollouts", "--evaluations"] {
            let cli =
                Cli::try_parse_from(["archsearch", "choice-list", "--space", "s.yaml", flag, "7"])
                    .unwrap();
            let Some(Command::ChoiceList(args)) = cli.command else {
                panic!("not choice-list")
            };
            assert_eq!(args.rollouts, 7, "{flag}");
        }
    }
}
