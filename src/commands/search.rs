//! One default search from start to finish: check every input, load the data, run the search
//! loop with progress, streamed results and checkpoints, stop cleanly on SIGINT or SIGTERM,
//! resume from a checkpoint, and write the report. Its options and the checks of a resumed
//! folder are in `search_options.rs`; run folders, atomic writes and the stop flag come from
//! `outdir.rs`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::search_options::{canonical_source, resume_start, SearchOptions, Start, COMMAND};
use crate::config::{ChildSettings, DataSettings, Settings, CHECKPOINT_EVERY, TORCH_THREADS};
use crate::data::{self, Source};
use crate::error::{UsageError, EXIT_INTERRUPTED};
use crate::nn::child::TensorData;
use crate::nn::evaluator::MlpEvaluator;
use crate::outdir::{self, device_name, parse_device, Stop};
use crate::output::checkpoint::{self, Checkpoint};
use crate::output::progress::{say, Progress};
use crate::output::record::{self, Record, RecordCsv};
use crate::output::summary::{finish, print_summary, Finished};
use crate::search::{self, LoopSettings, Search, SearchState};
use crate::space::halfmoon::mlp_spec;
use crate::space::{MlpSpace, SearchSpace};
use crate::strategy::Reinforce;
use crate::{output::plot, usage_bail};

/// `archsearch` with no command: the half-moon search, new or resumed. Returns the exit code.
pub fn search(args: &SearchOptions) -> Result<i32> {
    // Signals are watched from the start: one during the checks stops the run before its
    // first step (exit 130), instead of killing it half-way.
    let stop = Stop::on_signals()?;
    // Everything a user can get wrong is checked before any work or any write.
    let mut start = match &args.resume {
        Some(dir) => resume_start(dir, args)?,
        None => {
            let device = parse_device(&args.device)?;
            Start {
                out: PathBuf::new(),
                settings: args.settings()?,
                source: canonical_source(args.source()?)?,
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
    let device = start.device;
    // A resume checks the data, every row of rollouts.csv and the checkpoint's state before it
    // writes anything: a refused resume leaves every byte of the folder as it was.
    let resumed = match start.resumed.take() {
        Some(saved) => {
            if saved.data_hash != data_hash {
                usage_bail!(
                    "the data of {} changed since it was searched; resume with the same data",
                    start.out.display()
                );
            }
            let mut state = new_state(&space, &settings, device);
            state.restore(&saved.searches, saved.done).map_err(|e| {
                UsageError::new(format!(
                    "{} does not fit the settings it holds ({e:#}); nothing was changed",
                    checkpoint::path(&start.out).display()
                ))
            })?;
            let rows = record::resume(&start.out.join("rollouts.csv"), saved.done, &state.keys())?;
            if let Some(r) = rows
                .records
                .iter()
                .find(|r| space.parse(&r.architecture).is_none())
            {
                usage_bail!(
                    "{}: rollout {} holds `{}`, not an architecture of this space; the run cannot be resumed as it is",
                    start.out.join("rollouts.csv").display(),
                    r.rollout,
                    r.architecture
                );
            }
            Some((saved, rows, state))
        }
        None => None,
    };
    tch::set_num_threads(TORCH_THREADS);
    // Only now is anything written.
    if resumed.is_some() {
        outdir::ensure_marker(&start.out, COMMAND)?;
    } else {
        start.out = outdir::prepare(args.out.as_deref(), args.force, COMMAND)?;
    }
    let out = start.out.clone();
    let fresh = resumed.is_none();
    let started = Instant::now();
    let tensors = TensorData::new(&splits, device);

    let (mut state, mut records, mut csv, wall_before) = match resumed {
        Some((saved, rows, state)) => {
            let path = out.join("rollouts.csv");
            outdir::write_atomically(&path, &rows.text)?;
            let csv = RecordCsv::append_to(&path)?;
            (state, rows.records, csv, saved.wall_seconds)
        }
        None => {
            let csv = RecordCsv::create(&out.join("rollouts.csv"))?;
            (new_state(&space, &settings, device), Vec::new(), csv, 0.0)
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
    let save = |state: &SearchState, csv: &RecordCsv| -> Result<()> {
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
                searches: state.checkpoint()?,
                wall_seconds: wall_before + started.elapsed().as_secs_f64(),
            },
        )
    };
    // The first checkpoint comes first: from here on a killed run can be resumed.
    save(&state, &csv)?;
    if splits.train.n_features == 2 && (fresh || !out.join("halfmoon.png").exists()) {
        plot::data(&out.join("halfmoon.png"), &splits)?;
    }

    let (n_in, n_out) = (tensors.n_features, tensors.n_classes);
    let mut evaluator = MlpEvaluator {
        trainer: crate::nn::trainer::trainer_for(
            settings.rollouts_per_update * settings.searches,
            &tensors,
            &stop,
        ),
        interpret: Box::new(|config| {
            let text = config.as_str().unwrap_or_default();
            let decisions = space
                .parse(text)
                .ok_or_else(|| anyhow::anyhow!("`{config}` is not a half-moon architecture"))?;
            Ok((mlp_spec(&decisions, n_in, n_out), settings.child.clone()))
        }),
    };
    let mut progress = Progress::new(settings.rollouts, state.done, args.quiet);
    let window = settings.moving_average;
    let mut last_saved = state.done;
    {
        let mut on_update = |batch: &[Record], state: &SearchState| -> Result<()> {
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
            let beta = batch.last().and_then(|r| r.beta).unwrap_or(f64::NAN);
            progress.update(
                state.done,
                &format!("acc(avg {window}) {ma:.3}  beta {beta:.1e}  {last}"),
            );
            Ok(())
        };
        let keep_going = || !stop.requested();
        let steps = LoopSettings {
            rollouts: settings.rollouts,
            per_update: settings.rollouts_per_update,
        };
        search::run(
            &mut evaluator,
            steps,
            &mut state,
            &mut on_update,
            &keep_going,
        )?;
    }
    progress.finish();
    save(&state, &csv)?;
    let searched = state.done >= settings.rollouts;

    let interpret = |architecture: &str, defaults: &ChildSettings| {
        let decisions = space
            .parse(architecture)
            .ok_or_else(|| anyhow::anyhow!("`{architecture}` is not a half-moon architecture"))?;
        Ok((mlp_spec(&decisions, n_in, n_out), defaults.clone()))
    };
    let summary = finish(&Finished {
        out: &out,
        settings: &settings,
        searches: &state.keys(),
        space: None,
        interpret: &interpret,
        splits: &splits,
        tensors: &tensors,
        records: &records,
        done: state.done,
        source: &start.source,
        wall_seconds: wall_before + started.elapsed().as_secs_f64(),
        interrupted: !searched,
        quiet: args.quiet,
        stop: &stop,
    })?;
    if summary.interrupted {
        let when = if searched {
            "interrupted during the final retraining".to_string()
        } else {
            format!("interrupted after rollout {}", state.done)
        };
        say(
            args.quiet,
            &format!(
                "{when}: checkpoint written; continue with `archsearch --resume {}`",
                out.display()
            ),
        );
    }
    print_summary(&summary, &out);
    Ok(if summary.interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
}

/// The default run's searches: REINFORCE on `space`, search `s` seeded `settings.seed + s`.
fn new_state<'a>(space: &'a MlpSpace, settings: &Settings, device: tch::Device) -> SearchState<'a> {
    let searches = (0..settings.searches)
        .map(|s| {
            let seed = crate::seeds::search_seed(settings.seed, s);
            let mut rng = crate::seeds::stream(seed, None);
            let strategy = Reinforce::new(space, settings, device, &mut rng);
            Search::new(Box::new(strategy), seed, rng)
        })
        .collect();
    SearchState { searches, done: 0 }
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Moons => "the half moons".into(),
        Source::Csv(p) => p.display().to_string(),
        Source::Named(n) => n.clone(),
        Source::Images(images) => images.dataset.name().into(),
    }
}
