//! Checkpoints: everything the search loop needs to continue exactly where it was (each
//! search's strategy state and random stream, the rollout count, the settings and the data's
//! fingerprint), for every command, written atomically with a checksum so a crash, a kill or a
//! full disk never leaves a file that resumes wrongly.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::data::{Source, Splits};
use crate::error::UsageError;

/// The checkpoint's file name inside a run folder.
pub const FILE: &str = "checkpoint.json";
/// First line of every checkpoint; the checksum and length follow on it.
const MAGIC: &str = "archsearch-checkpoint-v2";
/// The first line of the checkpoints of archsearch 0.1 before the one search loop.
const MAGIC_V1: &str = "archsearch-checkpoint-v1";

/// One search's state: its strategy's (`Strategy::state`) and its random stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchCheckpoint {
    pub strategy: String,
    pub seed: u64,
    pub rng: Pcg64,
    pub state: serde_json::Value,
}

/// A whole run's state after `done` rollouts per search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub archsearch_version: String,
    pub settings: Settings,
    pub source: Source,
    /// Fingerprint of the points, so a changed data file is noticed.
    pub data_hash: String,
    pub device: String,
    pub done: usize,
    pub searches: Vec<SearchCheckpoint>,
    /// Wall seconds spent before this checkpoint, over every earlier session of the run.
    pub wall_seconds: f64,
}

/// FNV-1a, 64 bits: enough to notice a truncated or damaged file (not an adversary).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_more(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a continued from the hash `h` of earlier bytes.
fn fnv1a_more(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A fingerprint of the points of every split (hashed as they stand: no copy of image data).
pub fn data_hash(splits: &Splits) -> String {
    let mut h = fnv1a(&[]);
    for part in [&splits.train, &splits.dev, &splits.test] {
        for v in &part.features {
            h = fnv1a_more(h, &v.to_le_bytes());
        }
        for l in &part.labels {
            h = fnv1a_more(h, &l.to_le_bytes());
        }
    }
    format!("{h:016x}")
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes the checkpoint through a temporary file, fsync and rename: the previous checkpoint
/// stays in place until the new one is complete.
pub fn save(dir: &Path, checkpoint: &Checkpoint) -> Result<()> {
    // JSON has no NaN: serde would write `null`, and the file would not load again.
    if let Some(what) = non_finite(checkpoint) {
        anyhow::bail!("the checkpoint was not written: {what} is not finite");
    }
    let body = serde_json::to_vec(checkpoint).context("cannot serialise the checkpoint")?;
    let mut bytes = format!("{MAGIC} {:016x} {}\n", fnv1a(&body), body.len()).into_bytes();
    bytes.extend_from_slice(&body);
    crate::outdir::write_atomically(&path(dir), &bytes)?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The first number of a checkpoint that is NaN or infinite, by name (a strategy's own state
/// is checked by the strategy: JSON cannot hold such numbers).
pub fn non_finite(c: &Checkpoint) -> Option<String> {
    (!c.wall_seconds.is_finite()).then(|| "wall_seconds".to_string())
}

/// Reads and verifies a checkpoint; a missing, truncated or damaged file is a `UsageError`.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let file = path(dir);
    let bytes = std::fs::read(&file).map_err(|e| {
        UsageError::new(format!(
            "cannot read {}: {e}; is {} a run folder written by archsearch?",
            file.display(),
            dir.display()
        ))
    })?;
    parse(&bytes).map_err(|why| {
        UsageError::new(format!(
            "{} is corrupt or truncated ({why}); nothing was changed",
            file.display()
        ))
        .into()
    })
}

/// Parses checkpoint bytes; the error says what is wrong with them.
pub fn parse(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "the header is not text")?;
    let fields: Vec<&str> = header.split(' ').collect();
    if fields[0] == MAGIC_V1 {
        return Err(
            "written by an earlier archsearch, whose checkpoints this version cannot read; finish that run with the archsearch that started it, or start it again"
                .into(),
        );
    }
    if fields.len() != 3 || fields[0] != MAGIC {
        return Err(format!("the header is not `{MAGIC} <checksum> <length>`"));
    }
    let body = &bytes[newline + 1..];
    let length: usize = fields[2]
        .parse()
        .map_err(|_| "the header's length is not a number")?;
    if body.len() != length {
        return Err(format!(
            "{} bytes of data where the header promises {length}",
            body.len()
        ));
    }
    if fields[1] != format!("{:016x}", fnv1a(body)) {
        return Err("the checksum does not match the data".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("unreadable data: {e}"))
}

/// The settings that differ between a checkpoint and this run, as `name: was X, now Y`.
pub fn differences(saved: &Settings, now: &Settings) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(saved).expect("settings serialise"),
        serde_json::to_value(now).expect("settings serialise"),
    );
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    out
}

fn diff(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            for (key, va) in x {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match y.get(key) {
                    Some(vb) => diff(&name, va, vb, out),
                    None => out.push(format!("{name}: was {va}, now absent")),
                }
            }
            for key in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{prefix}{key}: absent in the checkpoint"));
            }
        }
        _ if a != b => out.push(format!("{prefix}: was {a}, now {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    #[test]
    fn the_data_hash_is_fnv1a_of_every_value_in_order() {
        // Hashed in place, it must equal the hash of the concatenated bytes (as checkpoints
        // written before hashed them), so older runs still resume.
        let splits = crate::data::split(&crate::data::make_moons(30, 0.2, 4), 0.7, 0.1);
        let mut bytes = Vec::new();
        for part in [&splits.train, &splits.dev, &splits.test] {
            bytes.extend(part.features.iter().flat_map(|v| v.to_le_bytes()));
            bytes.extend(part.labels.iter().flat_map(|l| l.to_le_bytes()));
        }
        assert_eq!(data_hash(&splits), format!("{:016x}", fnv1a(&bytes)));
    }

    fn sample() -> Checkpoint {
        Checkpoint {
            archsearch_version: "0".into(),
            settings: Settings::default(),
            source: Source::Moons,
            data_hash: "00".into(),
            device: "cpu".into(),
            done: 50,
            searches: vec![SearchCheckpoint {
                strategy: "reinforce".into(),
                seed: 3,
                rng: Pcg64::seed_from_u64(3),
                state: serde_json::json!({"controller": [0.1, -0.25, 1e-7], "beta": 0.01 * 0.99f64.powi(50)}),
            }],
            wall_seconds: 1.5,
        }
    }

    #[test]
    fn round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), sample());
    }

    #[test]
    fn truncation_and_damage_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        let bytes = std::fs::read(path(dir.path())).unwrap();
        let truncated = &bytes[..bytes.len() - 10];
        assert!(parse(truncated).unwrap_err().contains("bytes of data"));
        let mut damaged = bytes.clone();
        let i = damaged.len() - 20;
        damaged[i] ^= 1;
        assert!(parse(&damaged).unwrap_err().contains("checksum"));
        std::fs::write(path(dir.path()), truncated).unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().contains("corrupt or truncated"));
    }

    #[test]
    fn a_non_finite_number_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample();
        c.wall_seconds = f64::INFINITY;
        let err = save(dir.path(), &c).unwrap_err().to_string();
        assert!(err.contains("wall_seconds"), "{err}");
        assert!(!path(dir.path()).exists(), "nothing written");
        assert_eq!(non_finite(&sample()), None);
    }

    #[test]
    fn a_checkpoint_of_the_earlier_format_is_named_as_such() {
        let body = b"{}";
        let mut bytes = format!("{MAGIC_V1} {:016x} {}\n", fnv1a(body), body.len()).into_bytes();
        bytes.extend_from_slice(body);
        assert!(parse(&bytes).unwrap_err().contains("earlier archsearch"));
    }

    #[test]
    fn differences_name_the_setting() {
        let mut now = Settings::default();
        now.child.lr = 0.02;
        now.seed = 9;
        let d = differences(&Settings::default(), &now);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d.iter().any(|x| x == "child.lr: was 0.01, now 0.02"),
            "{d:?}"
        );
        assert!(d.iter().any(|x| x == "seed: was 0, now 9"), "{d:?}");
        assert!(differences(&now, &now).is_empty());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert!(parse(&bytes).is_err());
        }

        #[test]
        fn every_float_survives_a_save_and_load_exactly(beta in proptest::num::f64::NORMAL, w in proptest::num::f32::NORMAL) {
            let mut c = sample();
            c.wall_seconds = beta;
            c.searches[0].state = serde_json::json!({"controller": [w], "beta": beta});
            let body = serde_json::to_vec(&c).unwrap();
            let mut bytes = format!("{MAGIC} {:016x} {}\n", fnv1a(&body), body.len()).into_bytes();
            bytes.extend_from_slice(&body);
            prop_assert_eq!(parse(&bytes).unwrap(), c);
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = format!("{MAGIC} {:016x} {}\n", fnv1a(&body), body.len()).into_bytes();
            bytes.extend_from_slice(&body);
            let _ = parse(&bytes);
        }
    }
}
