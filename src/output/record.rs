//! The one record of an evaluated architecture, as every command writes it to rollouts.csv and
//! reads it back (for resuming, `compare` and the summary), through `rows.rs`.

use std::path::Path;

use anyhow::Result;
use csv::StringRecord;

use crate::error::UsageError;
use crate::output::rows::{self, RowWriter};

/// One evaluated architecture of one search.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Which of the searches run side by side it belongs to (not written: it follows from
    /// `strategy` and `seed`).
    pub search: usize,
    /// The strategy that proposed it.
    pub strategy: String,
    /// The seed of its search.
    pub seed: u64,
    /// 1-based rollout number within its search.
    pub rollout: usize,
    /// The configuration: the half-moon notation (`[8, Tanh, EOS]`) or a JSON object.
    pub architecture: String,
    /// Dev accuracy of the child's last epoch (0 if it diverged).
    pub accuracy: f64,
    /// What the strategy learned from (REINFORCE: shaping plus accuracy).
    pub reward: f64,
    /// Entropy weight of the update that learned from it (policy-gradient strategies).
    pub beta: Option<f64>,
    /// Loss of that update.
    pub loss: Option<f64>,
    pub epochs: usize,
    /// Wall seconds of this rollout (its share of the batch it was trained in).
    pub seconds: f64,
    pub diverged: bool,
    /// What else the strategy reported of it (`Told::details`; Null where nothing). Not a
    /// column of the shared rollouts.csv: a command that records it writes its own columns.
    pub details: serde_json::Value,
}

/// The columns of rollouts.csv, in order.
pub const COLUMNS: [&str; 11] = [
    "strategy",
    "seed",
    "rollout",
    "architecture",
    "accuracy",
    "reward",
    "beta",
    "loss",
    "epochs",
    "seconds",
    "diverged",
];

impl Record {
    /// The fields of its CSV row (floats in Rust's shortest exact form, so they read back
    /// bit for bit; an absent value is an empty field).
    pub fn fields(&self) -> Vec<String> {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        vec![
            self.strategy.clone(),
            self.seed.to_string(),
            self.rollout.to_string(),
            self.architecture.clone(),
            self.accuracy.to_string(),
            self.reward.to_string(),
            opt(self.beta),
            opt(self.loss),
            self.epochs.to_string(),
            format!("{:.4}", self.seconds),
            u8::from(self.diverged).to_string(),
        ]
    }
}

/// rollouts.csv being written: one complete row per write, flushed per batch.
pub struct RecordCsv(RowWriter);

impl RecordCsv {
    /// Creates the file with its header.
    pub fn create(path: &Path) -> Result<Self> {
        Ok(RecordCsv(RowWriter::create(path, &COLUMNS)?))
    }

    /// Opens an existing file to append to.
    pub fn append_to(path: &Path) -> Result<Self> {
        Ok(RecordCsv(RowWriter::append_to(path)?))
    }

    pub fn append(&mut self, records: &[Record]) -> Result<()> {
        let rows: Vec<Vec<String>> = records.iter().map(Record::fields).collect();
        self.0.append(&rows)
    }

    /// Forces what was written onto the disk.
    pub fn sync(&self) -> Result<()> {
        self.0.sync()
    }
}

/// The text of a whole rollouts.csv holding `records`.
pub fn text(records: &[Record]) -> Vec<u8> {
    let lines: Vec<Vec<String>> = records.iter().map(Record::fields).collect();
    rows::text(&COLUMNS, &lines)
}

/// Reads every complete row of a rollouts.csv (a partial last line is left out). Files of
/// earlier versions read too: the default run's (no `strategy` and `seed`; a `search` column
/// with several searches) and choice-list's (`evaluation`, `configuration`, no `beta`/`loss`).
/// `search` is the index of the row's (strategy, seed) in order of first appearance.
pub fn read(path: &Path) -> Result<Vec<Record>, String> {
    let (header, rows) = rows::read(path)?;
    let column = |names: &[&str]| header.iter().position(|h| names.contains(&h));
    let rollout = column(&["rollout", "evaluation"]).ok_or("no `rollout` column")?;
    let architecture =
        column(&["architecture", "configuration"]).ok_or("no `architecture` column")?;
    let accuracy = column(&["accuracy"]).ok_or("no `accuracy` column")?;
    let (strategy, seed, search) = (
        column(&["strategy"]),
        column(&["seed"]),
        column(&["search"]),
    );
    let (reward, beta, loss) = (column(&["reward"]), column(&["beta"]), column(&["loss"]));
    let (epochs, seconds, diverged) = (
        column(&["epochs"]),
        column(&["seconds"]),
        column(&["diverged"]),
    );
    let mut keys: Vec<(String, u64)> = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let get = |i: usize| -> Result<&str, String> {
            row.get(i)
                .ok_or_else(|| format!("line {line}: missing fields"))
        };
        let num = |i: usize| -> Result<f64, String> {
            let v = get(i)?;
            v.parse()
                .map_err(|_| format!("line {line}: `{v}` is not a number"))
        };
        let opt = |i: Option<usize>| -> Result<Option<f64>, String> {
            match i.map(|i| get(i)).transpose()? {
                None | Some("") => Ok(None),
                Some(_) => num(i.unwrap_or_default()).map(Some),
            }
        };
        let whole = |i: usize| -> Result<u64, String> {
            let v = get(i)?;
            v.parse()
                .map_err(|_| format!("line {line}: `{v}` is not a whole number"))
        };
        let strategy = match strategy {
            Some(i) => get(i)?.to_string(),
            None => "reinforce".to_string(),
        };
        let seed = match (seed, search) {
            (Some(i), _) | (None, Some(i)) => whole(i)?,
            (None, None) => 0,
        };
        let key = (strategy.clone(), seed);
        let index = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                keys.len() - 1
            }
        };
        let accuracy = num(accuracy)?;
        out.push(Record {
            search: index,
            strategy,
            seed,
            rollout: whole(rollout)? as usize,
            architecture: get(architecture)?.to_string(),
            accuracy,
            reward: opt(reward)?.unwrap_or(accuracy),
            beta: opt(beta)?,
            loss: opt(loss)?,
            epochs: epochs.map(whole).transpose()?.unwrap_or(0) as usize,
            seconds: opt(seconds)?.unwrap_or(0.0),
            diverged: diverged.map(get).transpose()? == Some("1"),
            details: serde_json::Value::Null,
        });
    }
    Ok(out)
}

/// rollouts.csv as a resume keeps it: the records of each search up to rollout `done`, and the
/// file's text with only those rows.
#[derive(Debug)]
pub struct Resumed {
    pub records: Vec<Record>,
    pub text: Vec<u8>,
}

/// On resume: reads rollouts.csv back, drops a partial last line and every row after rollout
/// `done` (those rollouts are redone), and checks that each search of `searches` (strategy and
/// seed, in the loop's order) holds its rollouts 1..=done in order. Writes nothing: the caller
/// writes `text` once every other check passed too.
pub fn resume(path: &Path, done: usize, searches: &[(String, u64)]) -> Result<Resumed> {
    let bad = |why: String| -> anyhow::Error {
        UsageError::new(format!(
            "{}: {why}; the run cannot be resumed as it is",
            path.display()
        ))
        .into()
    };
    let header = rows::read(path).map_err(bad)?.0;
    if header != StringRecord::from(COLUMNS.to_vec()) {
        return Err(bad(format!("the header is not `{}`", COLUMNS.join(","))));
    }
    let mut records = Vec::new();
    let mut next = vec![1usize; searches.len()];
    for mut r in read(path).map_err(bad)? {
        let Some(s) = searches
            .iter()
            .position(|(name, seed)| *name == r.strategy && *seed == r.seed)
        else {
            return Err(bad(format!(
                "a row of {} seed {}, a search this run does not have",
                r.strategy, r.seed
            )));
        };
        if r.rollout > done {
            continue;
        }
        if r.rollout != next[s] {
            return Err(bad(format!(
                "{} seed {} has rollout {} where rollout {} was expected (a row is missing, repeated or out of order)",
                r.strategy, r.seed, r.rollout, next[s]
            )));
        }
        next[s] += 1;
        r.search = s;
        records.push(r);
    }
    if let Some(s) = next.iter().position(|&n| n != done + 1) {
        return Err(bad(format!(
            "{} seed {} holds {} rows up to rollout {done}, the checkpoint expects {done}",
            searches[s].0,
            searches[s].1,
            next[s] - 1
        )));
    }
    let text = text(&records);
    Ok(Resumed { records, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rollout: usize, arch: &str, accuracy: f64) -> Record {
        Record {
            search: 0,
            strategy: "reinforce".into(),
            seed: 3,
            rollout,
            architecture: arch.into(),
            accuracy,
            reward: accuracy - 0.1,
            beta: Some(0.01),
            loss: Some(-0.5),
            epochs: 12,
            seconds: 0.25,
            diverged: false,
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn records_round_trip_with_quotes_commas_and_absent_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollouts.csv");
        let mut a = record(1, "[8, Tanh, EOS]", 0.93);
        a.reward = 0.1 + 0.2; // not a short decimal: must survive exactly
        let mut b = record(
            2,
            r#"{"hidden":[{"width":8,"activation":"ReLU"}],"lr":"1e-3, x"}"#,
            0.5,
        );
        b.strategy = "evolution".into();
        b.beta = None;
        b.loss = None;
        let mut csv = RecordCsv::create(&path).unwrap();
        csv.append(&[a.clone(), b.clone()]).unwrap();
        let back = read(&path).unwrap();
        b.search = 1; // the second (strategy, seed) met
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn files_of_earlier_versions_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollouts.csv");
        std::fs::write(
            &path,
            "rollout,architecture,accuracy,reward,beta,loss,epochs,seconds,diverged\n\
             1,\"[8, Sigmoid, EOS]\",0.89,0.79,0.01,-0.023,29,0.0351,0\n",
        )
        .unwrap();
        let r = &read(&path).unwrap()[0];
        assert_eq!(
            (r.strategy.as_str(), r.seed, r.rollout),
            ("reinforce", 0, 1)
        );
        assert_eq!((r.reward, r.beta, r.epochs), (0.79, Some(0.01), 29));
        std::fs::write(
            &path,
            "strategy,seed,evaluation,configuration,accuracy,reward,epochs,seconds,diverged\n\
             random,4,7,\"{\"\"a\"\":1}\",0.5,0.5,3,0.1,1\n",
        )
        .unwrap();
        let r = &read(&path).unwrap()[0];
        assert_eq!((r.strategy.as_str(), r.seed, r.rollout), ("random", 4, 7));
        assert_eq!(
            (r.architecture.as_str(), r.beta, r.diverged),
            ("{\"a\":1}", None, true)
        );
    }

    #[test]
    fn a_resume_keeps_rows_up_to_the_checkpoint_and_refuses_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollouts.csv");
        let searches = vec![("reinforce".to_string(), 3u64)];
        let rs: Vec<Record> = (1..=5).map(|i| record(i, "[4, EOS]", 0.5)).collect();
        std::fs::write(&path, text(&rs)).unwrap();
        let kept = resume(&path, 3, &searches).unwrap();
        assert_eq!(kept.records, rs[..3].to_vec());
        assert_eq!(kept.text, text(&rs[..3]));
        let mut gap = rs.clone();
        gap.remove(1);
        std::fs::write(&path, text(&gap)).unwrap();
        let err = resume(&path, 3, &searches).unwrap_err().to_string();
        assert!(err.contains("rollout 3 where rollout 2"), "{err}");
        std::fs::write(&path, text(&rs[..2])).unwrap();
        assert!(resume(&path, 3, &searches).is_err(), "too few rows");
        let other = vec![("random".to_string(), 3u64)];
        std::fs::write(&path, text(&rs)).unwrap();
        assert!(
            resume(&path, 3, &other).is_err(),
            "a search it does not have"
        );
    }
}
