//! One default search from start to finish: check every input, load the data, run the search
//! loop with progress, streamed results and checkpoints, stop cleanly on SIGINT or SIGTERM,
//! resume from a checkpoint, and write the report.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::checkpoint::{self, Checkpoint};
use crate::child::TensorData;
use crate::cli::{device_name, parse_device, SearchArgs};
use crate::config::{DataSettings, Settings, CHECKPOINT_EVERY, OUT_ROOT, TORCH_THREADS};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::progress::{say, Progress};
use crate::report::{resume_csv, RolloutCsv};
use crate::search::{self, RolloutRecord, SearchState};
use crate::space::MlpSpace;
use crate::summary::{finish, print_summary, Finished};
use crate::{plot, usage_bail};

/// Creates `--out` (or `runs/<date-time>`). A non-empty folder is refused unless `force`, which
/// empties it first.
pub fn prepare_out(out: Option<&Path>, force: bool) -> Result<PathBuf> {
    let dir = match out {
        Some(p) => p.to_path_buf(),
        None => {
            let stamp = chrono::Local::now().format("%Y-%m-%d_%H-%M-%S").to_string();
            let mut dir = Path::new(OUT_ROOT).join(&stamp);
            let mut n = 2;
            while dir.exists() {
                dir = Path::new(OUT_ROOT).join(format!("{stamp}-{n}"));
                n += 1;
            }
            dir
        }
    };
    if dir.exists() {
        if !dir.is_dir() {
            usage_bail!(
                "--out {} is a file, not a folder; choose a folder",
                dir.display()
            );
        }
        let non_empty = std::fs::read_dir(&dir)
            .map_err(|e| UsageError::new(format!("cannot read --out {}: {e}", dir.display())))?
            .next()
            .is_some();
        if non_empty && !force {
            usage_bail!(
                "--out {} is not empty; pass `--resume {}` to continue the search in it, `--force` to replace it, or choose a new folder",
                dir.display(),
                dir.display()
            );
        }
        if non_empty {
            std::fs::remove_dir_all(&dir).map_err(|e| {
                UsageError::new(format!("--force: cannot empty {}: {e}", dir.display()))
            })?;
        }
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| UsageError::new(format!("cannot create --out {}: {e}", dir.display())))?;
    let probe = dir.join(".archsearch-write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| UsageError::new(format!("cannot write into --out {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(probe);
    Ok(dir)
}

/// Sets the returned flag on SIGINT or SIGTERM; a second signal exits at once with 130.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as the earlier signal left it.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            EXIT_INTERRUPTED,
            Arc::clone(&stop),
        )
        .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    Ok(stop)
}

/// Where a run starts from: nothing, or a checkpoint with the rows written before it.
struct Start {
    out: PathBuf,
    settings: Settings,
    source: Source,
    device: tch::Device,
    resumed: Option<(Checkpoint, Vec<RolloutRecord>)>,
}

/// Checks a `--resume` folder against this run's settings: the flags the user gave must agree
/// with the checkpoint, and so must every constant of config.rs.
fn resume_start(dir: &Path, args: &SearchArgs) -> Result<Start> {
    let saved = checkpoint::load(dir)?;
    let given = |flag: &str| args.given.iter().any(|g| g == flag);
    // Flags not given now take the checkpoint's values, so `--resume DIR` alone suffices.
    let pick = |flag: &str, now: u64, then: usize| if given(flag) { now } else { then as u64 };
    let mut replay = SearchArgs {
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
    let source = if given("data") || given("dataset") || given("data_dir") {
        args.source()?
    } else {
        saved.source.clone()
    };
    if source != saved.source {
        usage_bail!(
            "{} was searched on {:?}, not {:?}; resume without --data/--dataset/--data-dir",
            dir.display(),
            saved.source,
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
        resumed: Some((saved, Vec::new())),
    })
}

/// The JSON text of a setting, by its dotted name.
fn setting_value(settings: &Settings, key: &str) -> String {
    let tree = serde_json::to_value(settings).expect("settings serialise");
    key.split('.')
        .fold(&tree, |node, part| &node[part])
        .to_string()
}

/// `archsearch` with no command: the half-moon search, new or resumed. Returns the exit code.
pub fn search(args: &SearchArgs) -> Result<i32> {
    // Everything a user can get wrong is checked before any work or any write.
    let mut start = match &args.resume {
        Some(dir) => resume_start(dir, args)?,
        None => {
            let device = parse_device(&args.device)?;
            Start {
                out: PathBuf::new(),
                settings: args.settings()?,
                source: args.source()?,
                device,
                resumed: None,
            }
        }
    };
    // The data's seed is fixed (config::DATA_SEED): searches with other seeds see the same points.
    let splits = data::load(&start.source, &DataSettings::default())?;
    let data_hash = checkpoint::data_hash(&splits);
    let settings = start.settings.clone();
    let space = MlpSpace::new(&settings);
    let with_search = settings.searches > 1;
    if let Some((saved, records)) = &mut start.resumed {
        if saved.data_hash != data_hash {
            usage_bail!(
                "the data of {} changed since it was searched; resume with the same data",
                start.out.display()
            );
        }
        *records = resume_csv(
            &start.out.join("rollouts.csv"),
            with_search,
            saved.done,
            settings.searches,
            &space,
        )?;
    } else {
        start.out = prepare_out(args.out.as_deref(), args.force)?;
    }
    let out = start.out.clone();
    let device = start.device;
    tch::set_num_threads(TORCH_THREADS);
    let stop = stop_on_signals()?;
    let started = Instant::now();
    let tensors = TensorData::new(&splits, device);

    let (mut state, mut records, mut csv, wall_before) = match start.resumed {
        Some((saved, records)) => {
            let state = SearchState::from_checkpoint(&space, &settings, device, &saved)?;
            let csv = RolloutCsv::append_to(&out.join("rollouts.csv"), with_search)?;
            (state, records, csv, saved.wall_seconds)
        }
        None => {
            if splits.train.n_features == 2 {
                plot::data(&out.join("halfmoon.png"), &splits)?;
            }
            let csv = RolloutCsv::create(&out.join("rollouts.csv"), with_search)?;
            (
                SearchState::new(&space, &settings, device),
                Vec::new(),
                csv,
                0.0,
            )
        }
    };
    say(
        args.quiet,
        &format!(
            "archsearch: {} rollouts x {} search(es) on {} ({} train / {} dev / {} test points), device {}, {} in {}",
            settings.rollouts,
            settings.searches,
            source_name(&start.source),
            splits.train.len(),
            splits.dev.len(),
            splits.test.len(),
            device_name(device),
            if state.done > 0 { format!("resuming after rollout {}", state.done) } else { "writing".into() },
            out.display()
        ),
    );
    let save = |state: &SearchState, csv: &RolloutCsv| -> Result<()> {
        // Rows reach the disk before the checkpoint that counts them.
        csv.sync()?;
        checkpoint::save(
            &out,
            &Checkpoint {
                archsearch_version: env!("CARGO_PKG_VERSION").into(),
                settings: settings.clone(),
                source: start.source.clone(),
                data_hash: data_hash.clone(),
                device: device_name(device),
                done: state.done,
                beta: state.beta,
                searches: state.checkpoint(),
                wall_seconds: wall_before + started.elapsed().as_secs_f64(),
            },
        )
    };
    save(&state, &csv)?;

    let mut trainer =
        crate::trainer::trainer_for(settings.rollouts_per_update * settings.searches, &tensors);
    let mut progress = Progress::new(settings.rollouts, state.done, args.quiet);
    let window = settings.moving_average;
    let mut last_saved = state.done;
    {
        let mut on_update = |batch: &[RolloutRecord], state: &SearchState| -> Result<()> {
            csv.append(batch)?;
            records.extend_from_slice(batch);
            if state.done / CHECKPOINT_EVERY > last_saved / CHECKPOINT_EVERY {
                save(state, &csv)?;
                last_saved = state.done;
            }
            let recent: Vec<f64> = records
                .iter()
                .rev()
                .take(window * settings.searches)
                .map(|r| r.accuracy)
                .collect();
            let ma = recent.iter().sum::<f64>() / recent.len().max(1) as f64;
            let last = batch.last().map(|r| r.architecture.as_str()).unwrap_or("");
            progress.update(
                state.done,
                &format!("acc(avg {window}) {ma:.3}  beta {:.1e}  {last}", state.beta),
            );
            Ok(())
        };
        let keep_going = || !stop.load(Ordering::Relaxed);
        search::run(
            &space,
            &tensors,
            &settings,
            trainer.as_mut(),
            &mut state,
            &mut on_update,
            &keep_going,
        )?;
    }
    progress.finish();
    save(&state, &csv)?;
    let interrupted = state.done < settings.rollouts;
    if interrupted {
        say(args.quiet, &format!("interrupted after rollout {}: checkpoint written; continue with `archsearch --resume {}`", state.done, out.display()));
    }

    let summary = finish(&Finished {
        out: &out,
        settings: &settings,
        space: &space,
        splits: &splits,
        tensors: &tensors,
        records: &records,
        done: state.done,
        source: &start.source,
        wall_seconds: wall_before + started.elapsed().as_secs_f64(),
        interrupted,
        quiet: args.quiet,
        stop: &stop,
    })?;
    print_summary(&summary, &out);
    let interrupted = interrupted || summary.final_training_interrupted;
    Ok(if interrupted { EXIT_INTERRUPTED } else { 0 })
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Moons => "the half moons".into(),
        Source::Csv(p) => p.display().to_string(),
        Source::Named(n) => n.clone(),
        Source::Images(images) => images.dataset.name().into(),
    }
}
