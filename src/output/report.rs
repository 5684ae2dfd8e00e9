//! What a search writes: rollouts.csv row by row, summary.json, and the statistics they quote
//! (moving averages, mean and sd; the best architecture is chosen in `selection.rs`).

use std::path::Path;

use anyhow::Result;

use crate::output::rows::{self, RowWriter};
use crate::search::RolloutRecord;

/// The CSV header; with several searches a leading `search` column is added.
pub const CSV_COLUMNS: [&str; 9] = [
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

/// The header of the default search's rollouts.csv.
pub fn header(with_search: bool) -> Vec<&'static str> {
    if with_search {
        std::iter::once("search").chain(CSV_COLUMNS).collect()
    } else {
        CSV_COLUMNS.to_vec()
    }
}

/// rollouts.csv of the default search, appended and flushed one complete row at a time.
pub struct RolloutCsv {
    rows: RowWriter,
    with_search: bool,
}

impl RolloutCsv {
    /// Creates the file with its header.
    pub fn create(path: &Path, with_search: bool) -> Result<Self> {
        Ok(RolloutCsv {
            rows: RowWriter::create(path, &header(with_search))?,
            with_search,
        })
    }

    /// Opens an existing file to append to.
    pub fn append_to(path: &Path, with_search: bool) -> Result<Self> {
        Ok(RolloutCsv {
            rows: RowWriter::append_to(path)?,
            with_search,
        })
    }

    /// Writes each record as one line in a single write, then flushes to the OS.
    pub fn append(&mut self, records: &[RolloutRecord]) -> Result<()> {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| fields(r, self.with_search))
            .collect();
        self.rows.append(&rows)
    }

    /// Forces what was written onto the disk.
    pub fn sync(&self) -> Result<()> {
        self.rows.sync()
    }
}

/// rollouts.csv as a resume keeps it: the records up to the checkpoint, and the file's text
/// with only those rows.
pub struct ResumedCsv {
    pub records: Vec<RolloutRecord>,
    pub text: Vec<u8>,
}

/// On resume: reads rollouts.csv back, drops a partial last line and every row after rollout
/// `done` (those rollouts are redone), and checks the rest. Writes nothing: the caller writes
/// `text` once every other check passed too.
pub fn resume_csv(
    path: &Path,
    with_search: bool,
    done: usize,
    searches: usize,
    space: &dyn crate::space::SearchSpace,
) -> Result<ResumedCsv> {
    let bad = |why: String| -> anyhow::Error {
        crate::error::UsageError::new(format!(
            "{}: {why}; the run cannot be resumed as it is",
            path.display()
        ))
        .into()
    };
    let (found, rows) = rows::read(path).map_err(bad)?;
    let offset = usize::from(with_search);
    let expected = header(with_search);
    if found.iter().collect::<Vec<_>>() != expected {
        return Err(bad(format!("the header is not `{}`", expected.join(","))));
    }
    let mut records = Vec::new();
    for row in rows {
        let line = row.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| {
            row.get(i + offset)
                .ok_or_else(|| bad(format!("line {line}: missing fields")))
        };
        let num = |i: usize| -> Result<f64> {
            field(i)?.parse().map_err(|_| {
                bad(format!(
                    "line {line}: `{}` is not a number",
                    field(i).unwrap_or("")
                ))
            })
        };
        let rollout = num(0)? as usize;
        if rollout > done {
            continue;
        }
        let architecture = field(1)?.to_string();
        let decisions = space
            .parse(&architecture)
            .ok_or_else(|| bad(format!("line {line}: unknown architecture {architecture}")))?;
        records.push(RolloutRecord {
            search: match with_search {
                true => row
                    .get(0)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| bad(format!("line {line}: bad search number")))?,
                false => 0,
            },
            rollout,
            decisions,
            architecture,
            accuracy: num(2)?,
            reward: num(3)?,
            beta: num(4)?,
            loss: num(5)?,
            epochs: num(6)? as usize,
            seconds: num(7)?,
            diverged: field(8)? == "1",
        });
    }
    if records.len() != done * searches {
        return Err(bad(format!(
            "it holds {} rows up to rollout {done}, the checkpoint expects {}",
            records.len(),
            done * searches
        )));
    }
    // Each search's rows are its rollouts 1, 2, ..., done, in order.
    let mut next = vec![1usize; searches];
    for r in &records {
        match next.get_mut(r.search) {
            Some(n) if *n == r.rollout => *n += 1,
            Some(n) => {
                return Err(bad(format!(
                    "search {} has rollout {} where rollout {} was expected (a row is missing, repeated or out of order)",
                    r.search, r.rollout, n
                )))
            }
            None => {
                return Err(bad(format!(
                    "a row of search {} where the checkpoint has {searches} searches",
                    r.search
                )))
            }
        }
    }
    let lines: Vec<Vec<String>> = records.iter().map(|r| fields(r, with_search)).collect();
    let text = rows::text(&expected, &lines);
    Ok(ResumedCsv { records, text })
}

/// The fields of one record's CSV row.
pub fn fields(r: &RolloutRecord, with_search: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(CSV_COLUMNS.len() + 1);
    if with_search {
        out.push(r.search.to_string());
    }
    out.extend([
        r.rollout.to_string(),
        r.architecture.clone(),
        r.accuracy.to_string(),
        r.reward.to_string(),
        r.beta.to_string(),
        r.loss.to_string(),
        r.epochs.to_string(),
        format!("{:.4}", r.seconds),
        u8::from(r.diverged).to_string(),
    ]);
    out
}

/// Trailing moving average: point `i` is the mean of the last `window` values up to `i`.
pub fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let mut out = Vec::with_capacity(values.len());
    let mut sum = 0.0;
    for (i, v) in values.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= values[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The 1-based rollout at which the trailing moving average (over a full window) first reaches
/// `level`.
pub fn first_reaching(values: &[f64], window: usize, level: f64) -> Option<usize> {
    moving_average(values, window)
        .iter()
        .enumerate()
        .skip(window.saturating_sub(1))
        .find(|(_, &m)| m >= level)
        .map(|(i, _)| i + 1)
}

/// Number of different architectures among the records.
pub fn distinct_architectures(records: &[RolloutRecord]) -> usize {
    records
        .iter()
        .map(|r| r.architecture.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rollout: usize, arch: &str, accuracy: f64) -> RolloutRecord {
        RolloutRecord {
            search: 0,
            rollout,
            decisions: vec![rollout],
            architecture: arch.into(),
            accuracy,
            reward: accuracy,
            beta: 0.01,
            loss: 0.5,
            epochs: 12,
            seconds: 0.25,
            diverged: false,
        }
    }

    #[test]
    fn moving_average_by_hand() {
        let ma = moving_average(&[1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!(ma, vec![1.0, 1.5, 2.5, 3.5]);
        assert_eq!(first_reaching(&[0.0, 1.0, 1.0, 1.0], 2, 1.0), Some(3));
        assert_eq!(first_reaching(&[1.0, 0.0, 0.0], 2, 0.9), None);
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, s) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn distinct_architectures_are_counted_once() {
        let rs = vec![
            record(1, "[A]", 0.9),
            record(2, "[B]", 0.95),
            record(3, "[C]", 0.95),
            record(4, "[C]", 0.8),
        ];
        assert_eq!(distinct_architectures(&rs), 3);
    }

    #[test]
    fn csv_rows_parse_back_with_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollouts.csv");
        let mut csv = RolloutCsv::create(&path, false).unwrap();
        csv.append(&[record(1, "[8, Tanh, EOS]", 0.93)]).unwrap();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            CSV_COLUMNS.to_vec()
        );
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "[8, Tanh, EOS]");
        assert_eq!(&row[2], "0.93");
    }
}
