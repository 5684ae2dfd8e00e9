//! Running the binary with a bound on its time, for tests that must never hang: a run still
//! going after `patience` gets SIGTERM and must then end within `grace` (else it is killed and
//! reported as hung). Output goes to files, so a chatty run never blocks on a full pipe.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a bounded run ended.
#[derive(Debug)]
pub struct Ended {
    /// The exit code, if the process exited (not killed by a signal).
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// SIGTERM was sent because it was still running after `patience`.
    pub terminated: bool,
    /// It was still running `grace` after SIGTERM and had to be killed.
    pub hung: bool,
    /// Wall time until it ended.
    pub seconds: f64,
}

/// Runs the binary with `args` in the working directory `cwd` (bounded as described above).
pub fn run(args: &[String], cwd: &Path, patience: Duration, grace: Duration) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    let out_path = cwd.join(".stdout");
    let err_path = cwd.join(".stderr");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("a stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("a stderr file"))
        .spawn()
        .expect("the binary starts");
    let (mut terminated, mut hung) = (false, false);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting works") {
            break status;
        }
        let elapsed = started.elapsed();
        if !terminated && elapsed > patience {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            terminated = true;
        } else if terminated && elapsed > patience + grace && !hung {
            hung = true;
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let ended = Ended {
        code: status.code(),
        signal: status.signal(),
        stdout: read(&out_path),
        stderr: read(&err_path),
        terminated,
        hung,
        seconds: started.elapsed().as_secs_f64(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    ended
}

/// `args` as owned strings.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Whether stderr shows a panic or an abort (texts of Rust's panic handler, archsearch's hook
/// and libtorch).
pub fn crashed(stderr: &str) -> bool {
    [
        "panicked",
        "internal failure",
        "stack backtrace",
        "fatal runtime error",
        "terminate called",
        "Aborted",
    ]
    .iter()
    .any(|t| stderr.contains(t))
}
