//! CIFAR-10 (Krizhevsky 2009) from its binary batches: each record is one label byte, then the
//! 1024 red, the 1024 green and the 1024 blue pixel bytes of a 32x32 image, row by row, which is
//! already the (C, H, W) order kept here. Plain or gzipped; any number of records per file, so
//! tests can write tiny batches (tch's loader expects exactly 10 000).

use std::path::PathBuf;

use anyhow::Result;

use super::{read_bytes, ImageShape};
use crate::data::Dataset;
use crate::error::UsageError;

/// Three colour channels of 32 by 32 pixels.
pub const SHAPE: ImageShape = ImageShape {
    channels: 3,
    height: 32,
    width: 32,
};

/// Bytes of one record: the label, then the pixels.
pub const RECORD: usize = 1 + 3 * 32 * 32;

/// Parses one batch; the error says what is wrong (without the file name).
pub fn parse(bytes: &[u8], classes: usize) -> Result<Dataset, String> {
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(format!(
            "{} bytes, not a whole number of {RECORD}-byte CIFAR-10 records (a label byte and \
             3x32x32 pixels)",
            bytes.len()
        ));
    }
    let n = bytes.len() / RECORD;
    let mut features = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] as usize >= classes {
            return Err(format!(
                "record {i} has label {}, not a class 0 to {}",
                record[0],
                classes - 1
            ));
        }
        labels.push(record[0] as i64);
        features.extend(record[1..].iter().map(|&p| p as f32 / 255.0));
    }
    Ok(Dataset {
        features,
        labels,
        n_features: RECORD - 1,
        n_classes: classes,
    })
}

/// The official training set (the five batches in order) and test set, from the files in
/// `CIFAR_FILES` order.
pub fn load(files: &[PathBuf], classes: usize) -> Result<(Dataset, Dataset)> {
    let mut batches = Vec::with_capacity(files.len());
    for path in files {
        let bytes = read_bytes(path)?;
        batches.push(
            parse(&bytes, classes)
                .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?,
        );
    }
    let Some(test) = batches.pop() else {
        anyhow::bail!("no CIFAR-10 files given");
    };
    let mut train = Dataset {
        features: Vec::new(),
        labels: Vec::new(),
        n_features: RECORD - 1,
        n_classes: classes,
    };
    for batch in batches {
        train.features.extend_from_slice(&batch.features);
        train.labels.extend_from_slice(&batch.labels);
    }
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::{locate, ImageDataset};
    use std::io::Write;

    /// A record whose pixels follow a formula of (image, channel, row, column).
    fn record(label: u8, image: usize) -> Vec<u8> {
        let mut r = vec![label];
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    r.push(((image * 7 + c * 50 + y * 3 + x) % 256) as u8);
                }
            }
        }
        r
    }

    #[test]
    fn tiny_batches_read_back_exactly_plain_and_gzipped() {
        for gzip in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            // Batch b holds two images numbered 2b and 2b + 1, labelled by their number mod 10.
            for (b, name) in ImageDataset::Cifar10.files().iter().enumerate() {
                let bytes = [
                    record((2 * b % 10) as u8, 2 * b),
                    record(((2 * b + 1) % 10) as u8, 2 * b + 1),
                ]
                .concat();
                if gzip {
                    let f = std::fs::File::create(dir.path().join(format!("{name}.gz"))).unwrap();
                    let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
                    enc.write_all(&bytes).unwrap();
                    enc.finish().unwrap();
                } else {
                    std::fs::write(dir.path().join(name), &bytes).unwrap();
                }
            }
            let files = locate(ImageDataset::Cifar10, dir.path()).unwrap();
            let (train, test) = load(&files, 10).unwrap();
            assert_eq!((train.len(), test.len(), train.n_features), (10, 2, 3072));
            assert_eq!(train.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
            assert_eq!(test.labels, [0, 1]);
            // Pixel (channel c, row y, column x) of image k sits at c*1024 + y*32 + x.
            for (data, first) in [(&train, 0), (&test, 10)] {
                for k in 0..data.len() {
                    for (c, y, x) in [(0, 0, 0), (1, 5, 31), (2, 31, 7)] {
                        let expected = ((first + k) * 7 + c * 50 + y * 3 + x) % 256;
                        assert_eq!(
                            data.point(k)[c * 1024 + y * 32 + x],
                            expected as f32 / 255.0
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_batches_say_what_is_wrong() {
        assert!(parse(&[0; 100], 10).unwrap_err().contains("100 bytes"));
        assert!(parse(&[], 10).unwrap_err().contains("0 bytes"));
        let bad = [record(3, 0), record(12, 1)].concat();
        assert!(parse(&bad, 10)
            .unwrap_err()
            .contains("record 1 has label 12"));
    }
}
