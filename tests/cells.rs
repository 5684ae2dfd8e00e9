//! End-to-end test of `archsearch cells space` (feature `cells`): the exported configspace.json
//! reads back as the six edge hyperparameters, and the unique count is NAS-Bench-201's.
#![cfg(feature = "cells")]

use std::process::Command;

#[test]
fn cells_space_writes_configspace_and_prints_unique_count() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("space");
    let run = Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .args(["cells", "space", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("6466 unique"));
    let text = std::fs::read_to_string(out.join("configspace.json")).unwrap();
    let space: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = space["hyperparameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]);
    assert_eq!(space["format_version"], 0.4);
    // A second run into the same folder is refused before writing (exit 2).
    let again = Command::new(env!("CARGO_BIN_EXE_archsearch"))
        .args(["cells", "space", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
}
