//! The one writer and reader of rollouts.csv files, for every command, through the `csv` crate:
//! a field with commas, quotes or newlines round-trips. Rows are appended one complete line per
//! write and flushed per batch; a reader ignores a partial last line (what a kill can leave).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use csv::StringRecord;

/// One CSV line of `fields`, with its newline, quoted where a field needs it.
pub fn line<S: AsRef<[u8]>>(fields: &[S]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    // Writing to memory cannot fail; an error would only come from the file below.
    let _ = writer.write_record(fields);
    writer.into_inner().unwrap_or_default()
}

/// The text of a whole file: its header, then its rows.
pub fn text<S: AsRef<[u8]>>(header: &[&str], rows: &[Vec<S>]) -> Vec<u8> {
    let mut out = line(header);
    for row in rows {
        out.extend(line(row));
    }
    out
}

/// A rollouts.csv being written, one complete row per write.
pub struct RowWriter {
    file: File,
    path: PathBuf,
}

impl RowWriter {
    /// Creates the file with its header.
    pub fn create(path: &Path, header: &[&str]) -> Result<Self> {
        let mut file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&line(header))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(RowWriter {
            file,
            path: path.to_owned(),
        })
    }

    /// Opens an existing file (header and rows already there) to append to.
    pub fn append_to(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(RowWriter {
            file,
            path: path.to_owned(),
        })
    }

    /// Appends rows, each in a single write, then flushes to the operating system.
    pub fn append<S: AsRef<[u8]>>(&mut self, rows: &[Vec<S>]) -> Result<()> {
        for row in rows {
            self.file
                .write_all(&line(row))
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        self.file
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Forces what was written onto the disk.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .with_context(|| format!("cannot sync {}", self.path.display()))
    }
}

/// A file's header and complete rows (a partial last line, without its newline, is left out).
/// The error says what is wrong, for the caller to put in context.
pub fn read(path: &Path) -> Result<(StringRecord, Vec<StringRecord>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    parse(&bytes)
}

/// `read` of bytes in memory.
pub fn parse(bytes: &[u8]) -> Result<(StringRecord, Vec<StringRecord>), String> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => return Err("the header is missing".into()),
    };
    let mut reader = csv::ReaderBuilder::new().from_reader(complete);
    let header = reader
        .headers()
        .map_err(|e| format!("unreadable header: {e}"))?
        .clone();
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable row: {e}"))?;
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_and_newlines_round_trip() {
        let header = ["rollout", "configuration"];
        let rows = vec![
            vec!["1".to_string(), "[8, Tanh]".to_string()],
            vec!["2".to_string(), r#"{"a": "x,\"y\""}"#.to_string()],
            vec!["3".to_string(), "two\nlines".to_string()],
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollouts.csv");
        let mut w = RowWriter::create(&path, &header).unwrap();
        w.append(&rows[..2]).unwrap();
        drop(w);
        RowWriter::append_to(&path)
            .unwrap()
            .append(&rows[2..])
            .unwrap();
        let (h, read_back) = read(&path).unwrap();
        assert_eq!(h.iter().collect::<Vec<_>>(), header);
        let read_back: Vec<Vec<String>> = read_back
            .iter()
            .map(|r| r.iter().map(String::from).collect())
            .collect();
        assert_eq!(read_back, rows);
        assert_eq!(std::fs::read(&path).unwrap(), text(&header, &rows));
        // Quoted by hand: a comma or a quote needs quotes, quotes inside are doubled.
        assert_eq!(line(&["a,b", "c\"d", "e"]), b"\"a,b\",\"c\"\"d\",e\n");
    }

    #[test]
    fn a_partial_last_line_is_left_out() {
        let (_, rows) = parse(b"a,b\n1,2\n3,").unwrap();
        assert_eq!(rows.len(), 1);
        assert!(parse(b"a,b").is_err());
    }
}
