//! The 8x8 handwritten digits (UCI "Optical Recognition of Handwritten Digits", E. Alpaydin and
//! C. Kaynak 1998), compiled into the binary from `data/digits.csv.gz`, the copy scikit-learn
//! bundles (provenance and licence: `data/digits.md`). 1797 images, 10 classes.

use std::io::Read;

use anyhow::{bail, Context, Result};

use super::ImageShape;
use crate::config::DIGITS_PIXEL_MAX;
use crate::data::Dataset;

/// The gzipped CSV: per line 64 pixel values 0 to 16, row by row, then the digit.
const BUNDLED: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// One grey channel of 8 by 8 pixels.
pub const SHAPE: ImageShape = ImageShape {
    channels: 1,
    height: 8,
    width: 8,
};

/// The digits in the file's order, pixels scaled to [0, 1].
pub fn load() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(BUNDLED)
        .read_to_string(&mut text)
        .context("the bundled data/digits.csv.gz does not unpack")?;
    parse(&text)
}

/// Reads `p1,...,p64,label` lines.
fn parse(text: &str) -> Result<Dataset> {
    let pixels = SHAPE.pixels();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != pixels + 1 {
            bail!(
                "data/digits.csv.gz line {}: {} values, expected {}",
                i + 1,
                values.len(),
                pixels + 1
            );
        }
        for v in &values[..pixels] {
            let p: f32 = v
                .trim()
                .parse()
                .ok()
                .filter(|p| (0.0..=DIGITS_PIXEL_MAX).contains(p))
                .with_context(|| format!("data/digits.csv.gz line {}: pixel `{v}`", i + 1))?;
            features.push(p / DIGITS_PIXEL_MAX);
        }
        let label: i64 = values[pixels]
            .trim()
            .parse()
            .ok()
            .filter(|l| (0..10).contains(l))
            .with_context(|| format!("data/digits.csv.gz line {}: label", i + 1))?;
        labels.push(label);
    }
    Ok(Dataset {
        features,
        labels,
        n_features: pixels,
        n_classes: 10,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_digits_are_the_known_dataset() {
        let d = load().unwrap();
        assert_eq!((d.len(), d.n_features, d.n_classes), (1797, 64, 10));
        // Images per digit, as scikit-learn's load_digits().target counts them.
        let counts: Vec<usize> = (0..10)
            .map(|c| d.labels.iter().filter(|&&l| l == c).count())
            .collect();
        assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        // The first image (a 0), its first row read from the file by hand: 0,0,5,13,9,1,0,0.
        let first_row: Vec<f32> = [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]
            .iter()
            .map(|v| v / 16.0)
            .collect();
        assert_eq!(&d.point(0)[..8], first_row.as_slice());
        assert_eq!(d.labels[0], 0);
        assert!(d.features.iter().all(|p| (0.0..=1.0).contains(p)));
        assert_eq!(d.features.iter().copied().fold(0.0f32, f32::max), 1.0);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let err = parse("1,2,3\n").unwrap_err().to_string();
        assert!(err.contains("line 1: 3 values, expected 65"), "{err}");
        let mut line = vec!["0"; 64];
        line.push("3");
        line[5] = "17";
        let err = format!("{:#}", parse(&line.join(",")).unwrap_err());
        assert!(err.contains("line 1: pixel `17`"), "{err}");
    }
}
