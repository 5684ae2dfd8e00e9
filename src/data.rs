//! The data children learn: sklearn `make_moons` (docs/algorithms.md §1), points read from a
//! CSV file, the iris and winequality datasets of linfa-datasets, or images (`images`); split
//! 70/10/20 in order.

pub mod images;

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64;
use tch::{Device, Kind, Tensor};

use crate::config::{
    DataSettings, DATA_BYTES_MAX, DATA_FEATURES_MAX, DATA_POINTS_MAX, DATA_VALUES_MAX, LABEL_MAX,
};
use crate::error::UsageError;

/// Points with `n_features` coordinates each and an integer class label.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Row-major, `len() * n_features` values.
    pub features: Vec<f32>,
    pub labels: Vec<i64>,
    pub n_features: usize,
    pub n_classes: usize,
}

/// The three parts of a dataset: train (fits the weights), dev (gives the reward), test.
#[derive(Clone, Debug)]
pub struct Splits {
    pub train: Dataset,
    pub dev: Dataset,
    pub test: Dataset,
    /// Images: the shape of one, whose pixels each point holds flattened (C, H, W order).
    pub image: Option<images::ImageShape>,
}

/// Where the points come from, as the user asked on the command line.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    Moons,
    Csv(std::path::PathBuf),
    Named(String),
    Images(images::ImageSource),
}

/// The named datasets of linfa-datasets.
pub const NAMED_DATASETS: [&str; 2] = ["iris", "winequality"];

/// Every dataset `--dataset` accepts: linfa's, then the images.
pub const DATASETS: [&str; 6] = [
    "iris",
    "winequality",
    "digits",
    "mnist",
    "fashion-mnist",
    "cifar10",
];

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The coordinates of point `i`.
    pub fn point(&self, i: usize) -> &[f32] {
        &self.features[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Points `range` as a new dataset with the same class count.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        Dataset {
            features: self.features[range.start * self.n_features..range.end * self.n_features]
                .to_vec(),
            labels: self.labels[range].to_vec(),
            n_features: self.n_features,
            n_classes: self.n_classes,
        }
    }

    /// Reorders the points by a seeded shuffle.
    pub fn shuffled(&self, seed: u64) -> Dataset {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut Pcg64::seed_from_u64(seed));
        let mut features = Vec::with_capacity(self.features.len());
        for &i in &order {
            features.extend_from_slice(self.point(i));
        }
        let labels = order.iter().map(|&i| self.labels[i]).collect();
        Dataset {
            features,
            labels,
            n_features: self.n_features,
            n_classes: self.n_classes,
        }
    }

    /// Features as a `[n, n_features]` float tensor and labels as `[n]` int64, on `device`.
    pub fn tensors(&self, device: Device) -> (Tensor, Tensor) {
        let x = Tensor::from_slice(&self.features)
            .view([self.len() as i64, self.n_features as i64])
            .to_device(device);
        let y = Tensor::from_slice(&self.labels)
            .to_kind(Kind::Int64)
            .to_device(device);
        (x, y)
    }
}

/// sklearn's `make_moons`: half the points on the outer moon `(cos t, sin t)` (label 0), half on
/// the inner moon `(1 - cos t, 1 - sin t - 0.5)` (label 1), `t` evenly spaced over `[0, pi]`,
/// Gaussian noise of sd `noise` on both coordinates, then shuffled.
pub fn make_moons(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = Pcg64::seed_from_u64(seed);
    let n_out = n / 2;
    let n_in = n - n_out;
    let spaced = |k: usize, i: usize| {
        if k > 1 {
            std::f64::consts::PI * i as f64 / (k - 1) as f64
        } else {
            0.0
        }
    };
    let mut points: Vec<([f64; 2], i64)> = Vec::with_capacity(n);
    for i in 0..n_out {
        let t = spaced(n_out, i);
        points.push(([t.cos(), t.sin()], 0));
    }
    for i in 0..n_in {
        let t = spaced(n_in, i);
        points.push(([1.0 - t.cos(), 1.0 - t.sin() - 0.5], 1));
    }
    points.shuffle(&mut rng);
    let normal = Normal::new(0.0, noise.max(0.0)).expect("noise is validated to be finite");
    let mut features = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for (p, label) in points {
        features.push((p[0] + normal.sample(&mut rng)) as f32);
        features.push((p[1] + normal.sample(&mut rng)) as f32);
        labels.push(label);
    }
    Dataset {
        features,
        labels,
        n_features: 2,
        n_classes: 2,
    }
}

/// Points along each moon's arc used to integrate the Bayes classifier's likelihoods.
const ARC_POINTS: usize = 4000;

/// The Bayes-optimal classifier of `make_moons` data with noise sd `noise`: class 1 where the
/// inner moon's likelihood (a Gaussian around a uniformly placed arc point, integrated
/// numerically over the arc) beats the outer moon's. Returns the fraction of `data` it gets
/// right: the best any classifier can do on those points on average.
pub fn moons_bayes_accuracy(data: &Dataset, noise: f64) -> f64 {
    let arc = |inner: bool| -> Vec<(f64, f64)> {
        (0..ARC_POINTS)
            .map(|i| {
                let t = std::f64::consts::PI * i as f64 / (ARC_POINTS - 1) as f64;
                if inner {
                    (1.0 - t.cos(), 1.0 - t.sin() - 0.5)
                } else {
                    (t.cos(), t.sin())
                }
            })
            .collect()
    };
    let (outer, inner) = (arc(false), arc(true));
    let likelihood = |p: &[f32], arc: &[(f64, f64)]| -> f64 {
        let (x, y) = (p[0] as f64, p[1] as f64);
        arc.iter()
            .map(|(ax, ay)| (-((x - ax).powi(2) + (y - ay).powi(2)) / (2.0 * noise * noise)).exp())
            .sum()
    };
    let correct = (0..data.len())
        .filter(|&i| {
            let p = data.point(i);
            i64::from(likelihood(p, &inner) > likelihood(p, &outer)) == data.labels[i]
        })
        .count();
    correct as f64 / data.len().max(1) as f64
}

/// Splits in order: the first `train_fraction` train, the next `dev_fraction` dev, the rest test.
pub fn split(data: &Dataset, train_fraction: f64, dev_fraction: f64) -> Splits {
    let n = data.len();
    // The epsilon keeps 1000 * 0.7 at 700 whatever the rounding of 0.7.
    let train_end = ((n as f64 * train_fraction) + 1e-9).floor() as usize;
    let dev_end = ((n as f64 * (train_fraction + dev_fraction)) + 1e-9)
        .floor()
        .min(n as f64) as usize;
    Splits {
        train: data.slice(0..train_end),
        dev: data.slice(train_end..dev_end),
        test: data.slice(dev_end..n),
        image: None,
    }
}

/// Loads the points a search runs on, split and, for named datasets, standardised.
pub fn load(source: &Source, settings: &DataSettings) -> Result<Splits> {
    let data = match source {
        Source::Moons => make_moons(settings.n_points, settings.noise, settings.seed),
        Source::Csv(path) => read_csv(path)?,
        Source::Named(name) => named(name)?.shuffled(settings.seed),
        Source::Images(images) => return images::load(images, settings),
    };
    let mut splits = split(&data, settings.train_fraction, settings.dev_fraction);
    if let Some(warning) = missing_classes(&splits) {
        // Best effort: a closed or full stderr must not stop the search.
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
    for (part, what) in [
        (&splits.train, "train"),
        (&splits.dev, "dev"),
        (&splits.test, "test"),
    ] {
        if part.is_empty() {
            return Err(UsageError::new(format!(
                "the data has {} points, too few for a non-empty {what} split; give at least 10 points",
                data.len()
            ))
            .into());
        }
    }
    if matches!(source, Source::Named(_)) {
        standardise(&mut splits);
    }
    Ok(splits)
}

/// Points per class in each split.
fn class_counts(d: &Dataset) -> Vec<usize> {
    let mut counts = vec![0; d.n_classes];
    for &l in &d.labels {
        counts[l as usize] += 1;
    }
    counts
}

/// A warning when a class of the data is absent from a split (points sorted by label, say),
/// with the points per class of every split.
pub fn missing_classes(splits: &Splits) -> Option<String> {
    let parts = [
        ("train", class_counts(&splits.train)),
        ("dev", class_counts(&splits.dev)),
        ("test", class_counts(&splits.test)),
    ];
    let present: Vec<usize> = (0..splits.train.n_classes)
        .filter(|&c| parts.iter().any(|(_, n)| n[c] > 0))
        .collect();
    let missing: Vec<String> = parts
        .iter()
        .flat_map(|(name, n)| {
            present
                .iter()
                .filter(move |&&c| n[c] == 0)
                .map(move |c| format!("class {c} from {name}"))
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    let table: Vec<String> = parts
        .iter()
        .map(|(name, n)| {
            let cells: Vec<String> = present.iter().map(|&c| format!("{c}: {}", n[c])).collect();
            format!("{name} {{{}}}", cells.join(", "))
        })
        .collect();
    Some(format!(
        "the splits (first 70 % train, next 10 % dev, rest test, in file order) miss {}; points per class: {}. Are the points sorted by label? Shuffle the rows to give every split every class",
        missing.join(", "),
        table.join("; ")
    ))
}

/// Scales every feature to mean 0 and sd 1 using the train split's statistics only.
fn standardise(splits: &mut Splits) {
    let d = splits.train.n_features;
    let n = splits.train.len() as f64;
    for j in 0..d {
        let values = (0..splits.train.len()).map(|i| splits.train.point(i)[j] as f64);
        let mean = values.clone().sum::<f64>() / n;
        let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        for part in [&mut splits.train, &mut splits.dev, &mut splits.test] {
            for i in 0..part.len() {
                let v = &mut part.features[i * d + j];
                *v = ((*v as f64 - mean) / sd) as f32;
            }
        }
    }
}

/// A dataset shipped by linfa-datasets, labels renumbered 0.. in sorted order.
pub fn named(name: &str) -> Result<Dataset> {
    let ds = match name {
        "iris" => linfa_datasets::iris(),
        "winequality" => linfa_datasets::winequality(),
        other => {
            return Err(UsageError::new(format!(
                "unknown dataset `{other}`; choose one of: {}",
                NAMED_DATASETS.join(", ")
            ))
            .into())
        }
    };
    let mut classes: Vec<usize> = ds.targets.iter().copied().collect();
    classes.sort_unstable();
    classes.dedup();
    let labels = ds
        .targets
        .iter()
        .map(|t| classes.binary_search(t).expect("present") as i64)
        .collect();
    let features = ds.records.iter().map(|&v| v as f32).collect();
    Ok(Dataset {
        features,
        labels,
        n_features: ds.records.ncols(),
        n_classes: classes.len(),
    })
}

/// Reads `x1,...,xd,label` rows (a header line first). Errors name the line.
pub fn read_csv(path: &Path) -> Result<Dataset> {
    let bad = |msg: String| -> anyhow::Error {
        UsageError::new(format!("{}: {msg}", path.display())).into()
    };
    let file =
        std::fs::File::open(path).map_err(|e| bad(format!("cannot open the data file: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(format!("cannot read the data file: {e}")))?;
    if !meta.is_file() {
        // A device such as /dev/zero would be read for ever; a pipe could not be read again
        // on --resume.
        bail!(bad("not a regular file; give a CSV file".into()));
    }
    if meta.len() > DATA_BYTES_MAX {
        bail!(bad(format!(
            "the file has {} bytes, above the limit of {DATA_BYTES_MAX} (DATA_BYTES_MAX in src/config.rs)",
            meta.len()
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::Read::take(file, DATA_BYTES_MAX));
    let header = reader
        .headers()
        .map_err(|e| bad(format!("line 1: cannot read the header: {e}")))?
        .clone();
    let names: Vec<&str> = header.iter().collect();
    let d = names.len().saturating_sub(1);
    if d > DATA_FEATURES_MAX {
        bail!(bad(format!(
            "line 1: {d} features, above the limit of {DATA_FEATURES_MAX} (DATA_FEATURES_MAX in src/config.rs)"
        )));
    }
    let expected: Vec<String> = (1..=d)
        .map(|i| format!("x{i}"))
        .chain(["label".to_string()])
        .collect();
    if d == 0 || names != expected {
        bail!(bad(format!(
            "line 1: the header must be `x1,x2,label` (or x1,...,xd,label), found `{}`",
            names.join(",")
        )));
    }
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(format!("line {line}: {}", csv_error_text(&e)))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if labels.len() >= DATA_POINTS_MAX || features.len() + d > DATA_VALUES_MAX {
            bail!(bad(format!(
                "line {line}: more than {} points of {d} features, above the limits of {DATA_POINTS_MAX} points and {DATA_VALUES_MAX} values (DATA_POINTS_MAX, DATA_VALUES_MAX in src/config.rs)",
                labels.len(),
            )));
        }
        for (j, field) in record.iter().take(d).enumerate() {
            let v: f64 = field.parse().map_err(|_| {
                bad(format!(
                    "line {line}: x{} must be a number, found `{field}`",
                    j + 1
                ))
            })?;
            // Children train in f32: a value beyond its range (about 3.4e38) would become
            // infinite there.
            if !(v as f32).is_finite() {
                bail!(bad(format!(
                    "line {line}: x{} must be a finite number within the 32-bit float range (about ±3.4e38) children train in, found `{field}`",
                    j + 1
                )));
            }
            features.push(v as f32);
        }
        let field = &record[d];
        let label: i64 = field
            .parse()
            .ok()
            .filter(|l: &i64| (0..=LABEL_MAX).contains(l))
            .ok_or_else(|| {
                bad(format!(
                    "line {line}: label must be a class number 0, 1, ... up to {LABEL_MAX} (LABEL_MAX in src/config.rs), found `{field}`"
                ))
            })?;
        labels.push(label);
    }
    if labels.is_empty() {
        bail!(bad("the file has a header but no points".into()));
    }
    let n_classes = *labels.iter().max().expect("non-empty") as usize + 1;
    let first = labels[0];
    if labels.iter().all(|&l| l == first) {
        bail!(bad(format!(
            "every point has label {first}; a classifier needs at least two classes"
        )));
    }
    Ok(Dataset {
        features,
        labels,
        n_features: d,
        n_classes,
    })
}

fn csv_error_text(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields like the header, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the line is not valid UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// Writes the points as `x1,...,xd,label` with a header, readable by `read_csv`.
pub fn write_csv(data: &Dataset, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let header: Vec<String> = (1..=data.n_features)
        .map(|i| format!("x{i}"))
        .chain(["label".into()])
        .collect();
    w.write_record(&header)?;
    for i in 0..data.len() {
        let mut row: Vec<String> = data.point(i).iter().map(|v| v.to_string()).collect();
        row.push(data.labels[i].to_string());
        w.write_record(&row)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moons() -> Dataset {
        make_moons(1000, 0.2, 0)
    }

    #[test]
    fn moons_have_the_right_counts_and_balance() {
        let d = moons();
        assert_eq!(d.len(), 1000);
        assert_eq!(d.features.len(), 2000);
        assert_eq!(d.labels.iter().filter(|&&l| l == 1).count(), 500);
        let s = split(&d, 0.7, 0.1);
        assert_eq!((s.train.len(), s.dev.len(), s.test.len()), (700, 100, 200));
        // Shuffled: each split holds both classes in roughly equal numbers.
        let ones = s.train.labels.iter().filter(|&&l| l == 1).count();
        assert!((300..400).contains(&ones), "train has {ones} of class 1");
    }

    #[test]
    fn moons_noise_is_about_the_requested_sd() {
        // Distance from each point to the nearest point of its noiseless moon: for a small noise
        // sd s the radial component is roughly N(0, s), so its RMS is about s.
        let d = make_moons(4000, 0.2, 7);
        let mut sq = 0.0;
        for i in 0..d.len() {
            let p = d.point(i);
            let (x, y) = (p[0] as f64, p[1] as f64);
            let (cx, cy) = if d.labels[i] == 0 {
                (0.0, 0.0)
            } else {
                (1.0, 0.5)
            };
            let r = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            sq += (r - 1.0).powi(2);
        }
        let rms = (sq / d.len() as f64).sqrt();
        assert!((0.17..0.23).contains(&rms), "radial rms {rms}");
    }

    #[test]
    fn noiseless_moons_lie_on_their_arcs() {
        let d = make_moons(10, 0.0, 1);
        for i in 0..d.len() {
            let p = d.point(i);
            let (cx, cy) = if d.labels[i] == 0 {
                (0.0, 0.0)
            } else {
                (1.0, 0.5)
            };
            let r = ((p[0] as f64 - cx).powi(2) + (p[1] as f64 - cy).powi(2)).sqrt();
            assert!((r - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn the_bayes_classifier_scores_the_published_rate() {
        // docs/algorithms.md §1.1: 97.1 % for noise 0.2 (numerical integration, 200 000 samples). Here
        // 20 000 fresh points: standard error about 0.12 points.
        let d = make_moons(20_000, 0.2, 99);
        let rate = moons_bayes_accuracy(&d, 0.2);
        assert!((rate - 0.971).abs() < 0.005, "Bayes rate {rate}");
        // Nearly noiseless moons are separated perfectly.
        assert_eq!(moons_bayes_accuracy(&make_moons(500, 0.02, 1), 0.02), 1.0);
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        assert_eq!(moons(), moons());
        assert_ne!(moons(), make_moons(1000, 0.2, 1));
    }

    #[test]
    fn csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moons.csv");
        let d = make_moons(50, 0.2, 3);
        write_csv(&d, &path).unwrap();
        assert_eq!(read_csv(&path).unwrap(), d);
    }

    fn csv_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, text).unwrap();
        let err = read_csv(&path).unwrap_err();
        assert!(
            err.downcast_ref::<UsageError>().is_some(),
            "a user error: {err}"
        );
        format!("{err:#}")
    }

    #[test]
    fn csv_errors_name_the_line() {
        assert!(csv_error("a,b,c\n1,2,0\n").contains("line 1: the header"));
        assert!(csv_error("x1,x2,label\n1,2,0\n1,oops,1\n").contains("line 3: x2 must be a number"));
        assert!(csv_error("x1,x2,label\n1,2,0\n1,2\n").contains("line 3: expected 3 fields"));
        assert!(csv_error("x1,x2,label\n1,2,0\n1,2,-1\n").contains("line 3: label"));
        assert!(csv_error("x1,x2,label\n1,NaN,0\n").contains("line 2: x2 must be a finite number"));
        assert!(csv_error("x1,x2,label\n").contains("no points"));
        assert!(csv_error("x1,x2,label\n1,2,0\n3,4,0\n").contains("two classes"));
    }

    #[test]
    fn values_beyond_f32_are_refused_by_line_and_column() {
        // 1e39 and 1e308 are finite as f64 but infinite as f32, the type children train in.
        for big in ["1e39", "-1e308", "3.5e38"] {
            let e = csv_error(&format!("x1,x2,label\n1,2,0\n3,{big},1\n"));
            assert!(
                e.contains("line 3: x2 must be a finite number within the 32-bit"),
                "{e}"
            );
        }
        // The largest f32 itself is accepted.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("max.csv");
        std::fs::write(&path, "x1,x2,label\n3.4e38,0,0\n1,2,1\n").unwrap();
        assert_eq!(read_csv(&path).unwrap().features[0], 3.4e38f32);
    }

    #[test]
    fn a_device_is_refused_not_read_for_ever() {
        let err = read_csv(Path::new("/dev/zero")).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_single_class_is_refused_whatever_its_label() {
        assert!(csv_error("x1,x2,label\n1,2,1\n3,4,1\n").contains("every point has label 1"));
        assert!(csv_error("x1,label\n1,7\n3,7\n").contains("at least two classes"));
    }

    #[test]
    fn too_many_features_are_refused_by_the_named_limit() {
        let header: Vec<String> = (1..=DATA_FEATURES_MAX + 1)
            .map(|i| format!("x{i}"))
            .collect();
        let e = csv_error(&format!("{},label\n", header.join(",")));
        assert!(e.contains("DATA_FEATURES_MAX"), "{e}");
    }

    #[test]
    fn a_class_missing_from_a_split_is_named_with_the_counts() {
        // 10 points sorted by label: train 0..7 holds classes 0 and 1, dev (7) and test (8, 9)
        // only class 2.
        let labels = vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        let d = Dataset {
            features: (0..10).map(|i| i as f32).collect(),
            labels,
            n_features: 1,
            n_classes: 3,
        };
        let w = missing_classes(&split(&d, 0.7, 0.1)).expect("a warning");
        assert!(w.contains("class 2 from train"), "{w}");
        assert!(
            w.contains("class 0 from dev") && w.contains("class 1 from test"),
            "{w}"
        );
        assert!(
            w.contains("train {0: 4, 1: 3, 2: 0}; dev {0: 0, 1: 0, 2: 1}; test {0: 0, 1: 0, 2: 2}"),
            "{w}"
        );
        // The shuffled moons: no warning.
        assert_eq!(missing_classes(&split(&moons(), 0.7, 0.1)), None);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_as_a_csv_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("random.csv");
            std::fs::write(&path, &bytes).unwrap();
            if let Err(e) = read_csv(&path) {
                proptest::prop_assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
            }
        }

        #[test]
        fn random_text_after_a_valid_header_never_panics(body in "[0-9.,eE+\\-\na-z\"]{0,200}") {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("random.csv");
            std::fs::write(&path, format!("x1,x2,label\n{body}")).unwrap();
            if let Err(e) = read_csv(&path) {
                proptest::prop_assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
            }
        }
    }

    #[test]
    fn named_datasets_have_their_known_shapes() {
        let iris = named("iris").unwrap();
        assert_eq!((iris.len(), iris.n_features, iris.n_classes), (150, 4, 3));
        let wine = named("winequality").unwrap();
        assert_eq!((wine.len(), wine.n_features), (1599, 11));
        assert!(wine.n_classes >= 6);
        assert!(named("mnist").is_err());
    }

    #[test]
    fn standardised_train_split_has_mean_zero() {
        let splits = load(&Source::Named("iris".into()), &DataSettings::default()).unwrap();
        let n = splits.train.len() as f64;
        let mean: f64 = (0..splits.train.len())
            .map(|i| splits.train.point(i)[0] as f64)
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 1e-5);
        assert_eq!(
            splits.train.len() + splits.dev.len() + splits.test.len(),
            150
        );
    }
}
