//! Helpers shared by the end-to-end tests: running the binary and reading what it wrote.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Output};

/// The binary under test, not yet run.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_archsearch"))
}

/// Runs the binary to completion.
pub fn archsearch(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// Settings that shrink the final training of the chosen architecture (a few epochs, two
/// candidates, two seeds), so that an end-to-end search ends in seconds.
pub const QUICK_FINAL: [&str; 6] = [
    "--set",
    "final.max_epochs=6",
    "--set",
    "final.candidates=2",
    "--set",
    "retrain_seeds=2",
];

/// Runs the binary to completion with `args` and then QUICK_FINAL.
pub fn archsearch_quick(args: &[&str]) -> Output {
    bin()
        .args(args)
        .args(QUICK_FINAL)
        .output()
        .expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// rollouts.csv without the `seconds` column (the only one that may differ between runs).
pub fn csv_without_seconds(dir: &Path) -> Vec<Vec<String>> {
    file_without_seconds(&dir.join("rollouts.csv"))
}

/// The rows of any CSV file with a `seconds` column, that column left out.
pub fn file_without_seconds(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let seconds = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "seconds")
        .unwrap();
    reader
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != seconds)
                .map(|(_, v)| v.to_string())
                .collect()
        })
        .collect()
}

/// The named columns of every row of a folder's rollouts.csv, in the order of `names`.
pub fn csv_columns(dir: &Path, names: &[&str]) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(dir.join("rollouts.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let at: Vec<usize> = names
        .iter()
        .map(|n| {
            header
                .iter()
                .position(|h| h == *n)
                .unwrap_or_else(|| panic!("no column {n}"))
        })
        .collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            at.iter().map(|&i| r[i].to_string()).collect()
        })
        .collect()
}

pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Every file of a folder with its bytes, by name (sorted): equal snapshots mean not a byte of
/// any file changed, and no file came or went.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for p in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            // subfolders (deepcave/) by relative path
            for (sub, bytes) in snapshot(&p) {
                files.push((format!("{name}/{sub}"), bytes));
            }
        } else {
            files.push((name, std::fs::read(&p).unwrap()));
        }
    }
    files.sort();
    files
}

/// The lines of a child's stderr, as they come.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)) {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits for a stderr line containing `text` (a generous bound against a hang of the test).
pub fn wait_for(lines: &std::sync::mpsc::Receiver<String>, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::time::Instant::now() < deadline {
        match lines.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(line) if line.contains(text) => return,
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("stderr ended before `{text}`: {e}"),
        }
    }
    panic!("no `{text}` on stderr");
}
