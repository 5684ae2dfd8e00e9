//! Run folders and what keeps them safe, shared by every command that writes one: creating the
//! folder with its run marker, `--force` that only ever replaces what archsearch wrote, atomic
//! file writes, the stop flag that SIGINT and SIGTERM set, and the `--device` flag's parsing.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;

use tch::Device;

use crate::config::OUT_ROOT;
use crate::error::{UsageError, EXIT_INTERRUPTED};

/// The command name the default search's marker records.
pub const SEARCH_COMMAND: &str = "search";

/// The run marker: written first into every folder archsearch creates for a run, it is what
/// lets `--force` replace the folder later.
pub const MARKER: &str = ".archsearch-run";

/// Every file a run folder may hold besides the marker (and their `.tmp` twins while they are
/// written): the only files `--force` deletes. A command that writes another file adds it here.
/// The folder of DeepCAVE run folders a run may hold (`crate::output::deepcave`): one subfolder
/// per search, each holding only these files.
pub const DEEPCAVE_DIR: &str = "deepcave";
pub const DEEPCAVE_FILES: [&str; 5] = [
    "configspace.json",
    "configs.json",
    "origins.json",
    "meta.json",
    "history.jsonl",
];

pub const RUN_FILES: [&str; 29] = [
    "rollouts.csv",
    "alphas.csv",
    "genotype.txt",
    "checkpoint.ot",
    "alphas.png",
    "normal.png",
    "reduce.png",
    "checkpoint.json",
    "summary.json",
    "run.json",
    "accuracy.png",
    "halfmoon.png",
    "boundary.png",
    "strategies.png",
    "regret.png",        // cells search: regret against simulated time
    "architecture.json", // enas: Katib's architecture string
    "nn_config.json",    // enas: Katib's nn_config string
    "architecture.png",  // enas: the found network
    "checkpoint-a.ot",   // enas: the checkpoint's tensors, two alternating slots
    "checkpoint-b.ot",
    "rows.csv",     // cells build: the rows as trainings finish
    "build.json",   // cells build: the settings and wall time, for --resume
    "table.csv.gz", // cells build: the finished table
    "table.json",   // cells build: how the table was built
    "table.png",    // cells build: the spread of the cells' accuracy
    "proxies.csv",  // cells proxies: every class's scores
    "proxies.png",  // cells proxies: score rank against accuracy, per proxy
    "scores.csv",   // cells proxies: the raw scores as each class is scored, for --resume
    "proxies.json", // cells proxies: the settings, for --resume
];

/// Set by SIGINT or SIGTERM (or by `request`); long loops look at it once per step and stop.
/// Once set it stays set.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag nothing sets but `request`.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// The process's flag that SIGINT and SIGTERM set; a second signal exits at once with 130.
    /// Installed once, by the first call (`cli::main` calls it at start-up, so a signal during
    /// the checks before any work is seen too); later calls return the same flag.
    pub fn on_signals() -> Result<Stop> {
        static SIGNALS: std::sync::OnceLock<Stop> = std::sync::OnceLock::new();
        if let Some(stop) = SIGNALS.get() {
            return Ok(stop.clone());
        }
        let stop = Stop::new();
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first, so it sees the flag as the earlier signal left it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                EXIT_INTERRUPTED,
                Arc::clone(&stop.0),
            )
            .context("cannot install the signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(&stop.0))
                .context("cannot install the signal handler")?;
        }
        Ok(SIGNALS.get_or_init(|| stop).clone())
    }

    /// True once a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for code that takes a plain `&AtomicBool` (the general trainer).
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }

    /// Asks every loop that watches this flag to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The first line of the marker.
#[derive(Serialize, serde::Deserialize)]
struct Marker {
    command: String,
    archsearch_version: String,
}

/// Why `dir` may never be a run folder (the working folder, one of its parents, the home
/// folder, the root), or None.
fn protected(dir: &Path) -> Option<&'static str> {
    // A folder that does not exist yet is none of these.
    let target = dir.canonicalize().ok()?;
    if let Ok(cwd) = std::env::current_dir().and_then(|c| c.canonicalize()) {
        if cwd == target {
            return Some("the working folder");
        }
        if cwd.starts_with(&target) {
            return Some("a parent of the working folder");
        }
    }
    if target.parent().is_none() {
        return Some("the filesystem root");
    }
    let home = std::env::var_os("HOME").and_then(|h| Path::new(&h).canonicalize().ok());
    if home.as_deref() == Some(target.as_path()) {
        return Some("the home folder");
    }
    None
}

/// The command that wrote the run in `dir`, by its marker; None when there is no marker.
pub fn run_command(dir: &Path) -> Option<String> {
    let path = dir.join(MARKER);
    if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    serde_json::from_str::<Marker>(text.lines().next()?)
        .ok()
        .map(|m| m.command)
}

/// Refuses to resume `dir` as a run of `command` when its marker names another command, and
/// says how to resume it instead.
pub fn check_resume_command(dir: &Path, command: &str) -> Result<(), UsageError> {
    match run_command(dir) {
        Some(other) if other != command => {
            let resume = if other == SEARCH_COMMAND {
                String::from("archsearch --resume")
            } else {
                format!("archsearch {other} --resume")
            };
            Err(UsageError::new(format!(
                "{} holds a run of another command; resume it with `{resume} {}`",
                dir.display(),
                dir.display()
            )))
        }
        _ => Ok(()),
    }
}

/// True when `dir` holds a marker written by archsearch.
pub fn is_run_folder(dir: &Path) -> bool {
    run_command(dir).is_some()
}

/// The entries of `dir` that archsearch did not write (by name and kind).
fn foreign_entries(dir: &Path) -> Result<Vec<String>, UsageError> {
    let mut foreign = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| UsageError::new(format!("cannot read --out {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry
            .map_err(|e| UsageError::new(format!("cannot read --out {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == MARKER
            || RUN_FILES.iter().any(|f| {
                *f == name || Path::new(f).with_extension("tmp").as_os_str() == name.as_str()
            });
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(true);
        if name == DEEPCAVE_DIR && is_dir {
            if deepcave_files(&entry.path()).is_none() {
                foreign.push(name);
            }
        } else if !ours || is_dir {
            foreign.push(name);
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// The files of a `deepcave/` folder, subfolders first in the order to delete them (files, then
/// their subfolder, then the folder itself): None unless it holds nothing but subfolders (not
/// symlinks) of DeepCAVE's files (or their `.tmp`).
fn deepcave_files(dir: &Path) -> Option<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for run in std::fs::read_dir(dir).ok()? {
        let run = run.ok()?;
        if !run.file_type().ok()?.is_dir() {
            return None;
        }
        for file in std::fs::read_dir(run.path()).ok()? {
            let file = file.ok()?;
            let name = file.file_name().to_string_lossy().into_owned();
            let known = DEEPCAVE_FILES.iter().any(|f| {
                *f == name || Path::new(f).with_extension("tmp").as_os_str() == name.as_str()
            });
            if !known || !file.file_type().ok()?.is_file() {
                return None;
            }
            paths.push(file.path());
        }
        paths.push(run.path());
    }
    paths.push(dir.to_path_buf());
    Some(paths)
}

/// Creates the run folder `--out` (or `runs/<date-time>`) and writes the marker into it, naming
/// `command`. A non-empty folder is refused unless `force`; `force` replaces only a folder
/// holding the marker and nothing but the files archsearch writes, and deletes only those. The
/// working folder, its parents, the home folder and the root are refused always.
pub fn prepare(out: Option<&Path>, force: bool, command: &str) -> Result<PathBuf> {
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
    check_out(&dir, force)?;
    if force && dir.is_dir() {
        // check_out made sure every entry is a file archsearch wrote; the marker goes last, so
        // a folder emptied halfway is still recognised.
        for name in entry_names(&dir)?
            .into_iter()
            .filter(|n| n != MARKER)
            .chain([MARKER.to_string()])
        {
            let path = dir.join(&name);
            if name == DEEPCAVE_DIR && path.is_dir() {
                // check_out made sure it holds only DeepCAVE's files in subfolders.
                for p in deepcave_files(&path).unwrap_or_default() {
                    let removed = if p.is_dir() {
                        std::fs::remove_dir(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                    removed.map_err(|e| {
                        UsageError::new(format!("--force: cannot delete {}: {e}", p.display()))
                    })?;
                }
                continue;
            }
            if path.symlink_metadata().is_ok() {
                std::fs::remove_file(&path).map_err(|e| {
                    UsageError::new(format!("--force: cannot delete {}: {e}", path.display()))
                })?;
            }
        }
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| UsageError::new(format!("cannot create --out {}: {e}", dir.display())))?;
    write_marker(&dir, command).map_err(|e| {
        UsageError::new(format!("cannot write into --out {}: {e:#}", dir.display()))
    })?;
    Ok(dir)
}

/// Every entry name of `dir`.
fn entry_names(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Checks that `dir` may become a run folder (with `force`: may be replaced), writing nothing.
pub fn check_out(dir: &Path, force: bool) -> Result<(), UsageError> {
    if let Some(what) = protected(dir) {
        return Err(UsageError::new(format!(
            "--out {} is {what}; a run needs a folder of its own: choose a new one, such as {}/NAME",
            dir.display(),
            OUT_ROOT
        )));
    }
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(UsageError::new(format!(
            "--out {} is a file, not a folder; choose a folder",
            dir.display()
        )));
    }
    let non_empty = std::fs::read_dir(dir)
        .map_err(|e| UsageError::new(format!("cannot read --out {}: {e}", dir.display())))?
        .next()
        .is_some();
    if !non_empty {
        return Ok(());
    }
    if !force {
        return Err(UsageError::new(format!(
            "--out {} is not empty; pass `--resume {}` to continue the search in it, `--force` to replace it, or choose a new folder",
            dir.display(),
            dir.display()
        )));
    }
    if !is_run_folder(dir) {
        return Err(UsageError::new(format!(
            "--force replaces only a run folder archsearch wrote (one holding {MARKER}); {} holds none, so nothing was deleted: choose a new --out, or empty it yourself",
            dir.display()
        )));
    }
    let foreign = foreign_entries(dir)?;
    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        return Err(UsageError::new(format!(
            "--force: {} holds {} entr{} archsearch did not write ({}{}), so nothing was deleted: move {} away or choose a new --out",
            dir.display(),
            foreign.len(),
            if foreign.len() == 1 { "y" } else { "ies" },
            shown.join(", "),
            if foreign.len() > shown.len() { ", ..." } else { "" },
            if foreign.len() == 1 { "it" } else { "them" },
        )));
    }
    Ok(())
}

/// Writes the marker naming `command` into `dir`.
fn write_marker(dir: &Path, command: &str) -> Result<()> {
    let line = serde_json::to_string(&Marker {
        command: command.into(),
        archsearch_version: env!("CARGO_PKG_VERSION").into(),
    })
    .context("cannot serialise the run marker")?;
    write_atomically(&dir.join(MARKER), format!("{line}\n").as_bytes())
}

/// After a resume passed every check: writes the marker into a folder written before markers
/// existed, so that `--force` may replace it later.
pub fn ensure_marker(dir: &Path, command: &str) -> Result<()> {
    if dir.join(MARKER).symlink_metadata().is_ok() {
        return Ok(());
    }
    write_marker(dir, command)
}

/// Writes `value` as pretty JSON through a temporary file renamed into place, so a reader never
/// sees half a file.
pub fn write_json_atomically(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .with_context(|| format!("cannot serialise {}", path.display()))?;
    write_atomically(path, text.as_bytes())
}

/// Writes bytes to `path` via `path.tmp`, fsync and rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot sync {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Checks a single output file before any work: its extension is `extension` (the only format
/// written), it is not a folder, and its folder exists and may be written.
pub fn check_file_out(path: &Path, extension: &str, what: &str) -> Result<(), UsageError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if ext != extension {
        return Err(UsageError::new(format!(
            "--out {}: {what} is written as {} only; give a file name ending in .{extension}",
            path.display(),
            extension.to_uppercase()
        )));
    }
    if path.is_dir() {
        return Err(UsageError::new(format!(
            "--out {} is a folder; give a file name ending in .{extension}",
            path.display()
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(UsageError::new(format!(
            "--out {}: the folder {} does not exist; create it first",
            path.display(),
            parent.display()
        )));
    }
    let writable = |p: &Path| {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access(2) reads a NUL-terminated path and nothing else.
        unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
    };
    if !writable(parent) || (path.exists() && !writable(path)) {
        return Err(UsageError::new(format!(
            "--out {}: cannot write there (no permission); choose another file",
            path.display()
        )));
    }
    Ok(())
}

/// Prints to stdout, ignoring errors: a full or closed stdout never stops a run (its results
/// are in its folder). A reader that went away still ends the process through SIGPIPE.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints to stderr, ignoring errors: messages are best effort, see `outln!`.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Resolves `auto`, `cpu`, `cuda` and `cuda:N`; asking for CUDA where there is none is an error.
pub fn parse_device(text: &str) -> Result<Device, UsageError> {
    let no_cuda = || {
        UsageError::new(format!(
            "`--device {text}` was asked for, but libtorch sees no CUDA device; use `--device cpu` (or `auto`)"
        ))
    };
    match text {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(no_cuda())
            }
        }
        other => {
            let index = other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    UsageError::new(format!(
                        "unknown device `{other}`; use auto, cpu, cuda or cuda:N"
                    ))
                })?;
            let count = tch::Cuda::device_count() as usize;
            if count == 0 {
                Err(no_cuda())
            } else if index >= count {
                Err(UsageError::new(format!(
                    "`--device {other}` was asked for, but libtorch sees {count} CUDA device(s): use cuda:0 to cuda:{}",
                    count - 1
                )))
            } else {
                Ok(Device::Cuda(index))
            }
        }
    }
}

/// A readable name for a device, with the GPU model where known.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_or_explain() {
        assert_eq!(parse_device("cpu"), Ok(Device::Cpu));
        assert!(parse_device("gpu")
            .unwrap_err()
            .0
            .contains("unknown device"));
        if !tch::Cuda::is_available() {
            assert!(parse_device("cuda")
                .unwrap_err()
                .0
                .contains("no CUDA device"));
            assert!(parse_device("cuda:1")
                .unwrap_err()
                .0
                .contains("no CUDA device"));
            assert_eq!(parse_device("auto"), Ok(Device::Cpu));
        }
    }

    #[test]
    fn force_deletes_a_deepcave_folder_only_of_deepcave_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        prepare(Some(&run), false, "choice-list").unwrap();
        let search = run.join(DEEPCAVE_DIR).join("random-seed0");
        std::fs::create_dir_all(&search).unwrap();
        for f in DEEPCAVE_FILES {
            std::fs::write(search.join(f), "{}").unwrap();
        }
        std::fs::write(run.join("summary.json"), "{}").unwrap();
        prepare(Some(&run), true, "choice-list").unwrap();
        assert!(!run.join(DEEPCAVE_DIR).exists() && !run.join("summary.json").exists());
        // A file of another name inside, or a file directly in deepcave/: refused, all kept.
        for stray in ["random-seed0/notes.txt", "notes.txt"] {
            std::fs::create_dir_all(&search).unwrap();
            std::fs::write(search.join("history.jsonl"), "").unwrap();
            std::fs::write(run.join(DEEPCAVE_DIR).join(stray), "mine").unwrap();
            let e = prepare(Some(&run), true, "choice-list").unwrap_err();
            assert!(e.to_string().contains(DEEPCAVE_DIR), "{e}");
            assert!(search.join("history.jsonl").exists());
            std::fs::remove_file(run.join(DEEPCAVE_DIR).join(stray)).unwrap();
        }
    }

    #[test]
    fn force_replaces_only_a_marked_folder_of_known_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        assert_eq!(prepare(Some(&run), false, "search").unwrap(), run);
        assert!(is_run_folder(&run));
        std::fs::write(run.join("summary.json"), "{}").unwrap();
        std::fs::write(run.join("summary.tmp"), "{").unwrap();
        // Without --force a non-empty folder is refused; with it, replaced.
        assert!(check_out(&run, false).unwrap_err().0.contains("not empty"));
        prepare(Some(&run), true, "search").unwrap();
        assert!(!run.join("summary.json").exists() && !run.join("summary.tmp").exists());
        assert!(is_run_folder(&run));

        // A file archsearch did not write: refused, nothing deleted.
        std::fs::write(run.join("rollouts.csv"), "x").unwrap();
        std::fs::write(run.join("notes.txt"), "mine").unwrap();
        let e = prepare(Some(&run), true, "search").unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert!(run.join("rollouts.csv").exists() && run.join("notes.txt").exists());
        // A folder named like a run file is not one either.
        std::fs::remove_file(run.join("notes.txt")).unwrap();
        std::fs::create_dir(run.join("boundary.png")).unwrap();
        assert!(prepare(Some(&run), true, "search").is_err());
        assert!(run.join("rollouts.csv").exists());

        // No marker (or a forged empty one): refused, nothing deleted.
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join("rollouts.csv"), "x").unwrap();
        std::fs::write(plain.join(MARKER), "").unwrap();
        let e = prepare(Some(&plain), true, "search").unwrap_err();
        assert!(e.to_string().contains("holds none"), "{e}");
        assert!(plain.join("rollouts.csv").exists());
    }

    #[test]
    fn output_files_are_checked_by_extension_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("c.PNG");
        assert!(check_file_out(&ok, "png", "the figure").is_ok());
        let e = check_file_out(&dir.path().join("c.txt"), "png", "the figure").unwrap_err();
        assert!(e.0.contains("PNG only"), "{}", e.0);
        let e = check_file_out(&dir.path().join("no/c.png"), "png", "x").unwrap_err();
        assert!(e.0.contains("does not exist"), "{}", e.0);
        assert!(check_file_out(dir.path(), "png", "x").is_err());
    }

    #[test]
    fn a_stop_stays_requested() {
        let stop = Stop::new();
        let other = stop.clone();
        assert!(!other.requested());
        stop.request();
        assert!(other.requested() && stop.requested());
    }
}
