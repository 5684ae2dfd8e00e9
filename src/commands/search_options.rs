//! The default search's options: the command line's flags as plain values, the settings and
//! data source they make, and the checks of a `--resume` folder against its checkpoint (every
//! flag given, every constant of config.rs, the data).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::config::{Preset, Settings};
use crate::data::images::ImageSource;
use crate::data::Source;
use crate::error::UsageError;
use crate::outdir::{self, parse_device};
use crate::output::checkpoint::{self, Checkpoint};
use crate::space::{MlpSpace, SearchSpace};
use crate::usage_bail;

/// What the default search is asked to do: the command line's flags as plain values.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub rollouts: u64,
    pub seed: u64,
    pub device: String,
    pub out: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub dataset: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub rollouts_per_update: u64,
    pub searches: u64,
    pub preset: Preset,
    /// `--set KEY=VALUE` assignments, in order.
    pub overrides: Vec<String>,
    pub resume: Option<PathBuf>,
    pub force: bool,
    pub quiet: bool,
    /// The options given explicitly (not defaulted), by field name.
    pub given: Vec<String>,
}

impl SearchOptions {
    /// The settings of this run: the preset's constants with the flags and `--set`s applied,
    /// checked whole (ranges and limits, `Settings::validate`, the controllers' size) however
    /// the values arrived.
    pub fn settings(&self) -> Result<Settings, UsageError> {
        let mut settings = Settings {
            rollouts: self.rollouts as usize,
            seed: self.seed,
            rollouts_per_update: self.rollouts_per_update as usize,
            searches: self.searches as usize,
            ..Settings::preset(self.preset)
        };
        for assignment in &self.overrides {
            settings.set(assignment).map_err(UsageError::new)?;
        }
        settings.validate().map_err(UsageError::new)?;
        crate::strategy::controller::check_weights(
            MlpSpace::new(&settings).vocabulary(),
            settings.controller_hidden,
            settings.searches,
        )
        .map_err(UsageError::new)?;
        Ok(settings)
    }

    /// Where the points come from.
    pub fn source(&self) -> Result<Source, UsageError> {
        match (&self.data, &self.dataset) {
            (Some(path), _) => Ok(Source::Csv(path.clone())),
            (None, Some(name)) => crate::data::images::source_for(name, self.data_dir.as_deref()),
            (None, None) => Ok(Source::Moons),
        }
    }
}

/// The command name the run marker records.
pub const COMMAND: &str = outdir::SEARCH_COMMAND;

/// The source with a CSV file's path made absolute and canonical: the checkpoint then finds the
/// file from any working folder, and paths are compared by the file they name.
pub fn canonical_source(source: Source) -> Result<Source> {
    match source {
        Source::Csv(path) => path.canonicalize().map(Source::Csv).map_err(|e| {
            UsageError::new(format!(
                "{}: cannot open the data file: {e}",
                path.display()
            ))
            .into()
        }),
        Source::Images(ImageSource {
            dataset,
            dir: Some(dir),
        }) => dir
            .canonicalize()
            .map(|dir| {
                Source::Images(ImageSource {
                    dataset,
                    dir: Some(dir),
                })
            })
            .map_err(|e| {
                UsageError::new(format!("--data-dir {}: cannot open it: {e}", dir.display())).into()
            }),
        other => Ok(other),
    }
}

/// Where a run starts from: nothing, or a checkpoint with the rows written before it.
pub struct Start {
    pub out: PathBuf,
    pub settings: Settings,
    pub source: Source,
    pub device: tch::Device,
    pub resumed: Option<Checkpoint>,
}

/// Checks a `--resume` folder against this run's settings: the flags the user gave must agree
/// with the checkpoint, and so must every constant of config.rs.
pub fn resume_start(dir: &Path, args: &SearchOptions) -> Result<Start> {
    outdir::check_resume_command(dir, COMMAND)?;
    if outdir::is_run_folder(dir) && !checkpoint::path(dir).exists() {
        usage_bail!(
            "{} holds no checkpoint: its run was stopped before it wrote the first one, so there is nothing to resume; start it again with `--out {} --force`",
            dir.display(),
            dir.display()
        );
    }
    let saved = checkpoint::load(dir)?;
    let given = |flag: &str| args.given.iter().any(|g| g == flag);
    // Flags not given now take the checkpoint's values, so `--resume DIR` alone suffices.
    let pick = |flag: &str, now: u64, then: usize| if given(flag) { now } else { then as u64 };
    let mut replay = SearchOptions {
        rollouts: pick("rollouts", args.rollouts, saved.settings.rollouts),
        seed: if given("seed") {
            args.seed
        } else {
            saved.settings.seed
        },
        rollouts_per_update: pick(
            "rollouts_per_update",
            args.rollouts_per_update,
            saved.settings.rollouts_per_update,
        ),
        searches: pick("searches", args.searches, saved.settings.searches),
        preset: if given("preset") {
            args.preset
        } else {
            saved.settings.preset
        },
        ..args.clone()
    };
    if !given("overrides") {
        // Reapply the checkpoint's values of every setting a --set may have changed.
        let flags = [
            "rollouts",
            "seed",
            "rollouts_per_update",
            "searches",
            "preset",
        ];
        replay.overrides =
            checkpoint::differences(&Settings::preset(replay.preset), &saved.settings)
                .iter()
                .filter_map(|d| d.split_once(": was ").map(|(key, _)| key.to_string()))
                .filter(|key| !flags.contains(&key.as_str()))
                .map(|key| format!("{key}={}", setting_value(&saved.settings, &key)))
                .collect();
    }
    let settings = replay.settings()?;
    let differences = checkpoint::differences(&saved.settings, &settings);
    if !differences.is_empty() {
        usage_bail!(
            "{} was searched with other settings than now ({}); rebuild with the same constants and flags, or start a new run",
            dir.display(),
            differences.join("; ")
        );
    }
    // A checkpoint of an older archsearch may hold a relative path: made canonical here when
    // it still names a file from this working folder.
    let saved_source = match &saved.source {
        Source::Csv(p) => Source::Csv(p.canonicalize().unwrap_or_else(|_| p.clone())),
        other => other.clone(),
    };
    let source = if given("data") || given("dataset") || given("data_dir") {
        canonical_source(args.source()?)?
    } else {
        saved_source.clone()
    };
    if source != saved_source {
        usage_bail!(
            "{} was searched on {:?}, not {:?}; resume without --data/--dataset/--data-dir",
            dir.display(),
            saved_source,
            source
        );
    }
    let device = parse_device(if given("device") {
        &args.device
    } else {
        &saved.device
    })?;
    Ok(Start {
        out: dir.to_path_buf(),
        settings,
        source,
        device,
        resumed: Some(saved),
    })
}

/// The JSON text of a setting, by its dotted name.
fn setting_value(settings: &Settings, key: &str) -> String {
    let tree = serde_json::to_value(settings).expect("settings serialise");
    key.split('.')
        .fold(&tree, |node, part| &node[part])
        .to_string()
}
