//! Image datasets: the 8x8 handwritten digits bundled with archsearch (UCI, Alpaydin and Kaynak
//! 1998, the copy scikit-learn ships), and MNIST (LeCun et al. 1998), Fashion-MNIST (Xiao et al.
//! 2017) and CIFAR-10 (Krizhevsky 2009) read from their standard files in a folder the user
//! gives. Nothing is downloaded. An image is stored as one point of the `Dataset`, its pixels
//! flattened channel by channel and row by row (C, H, W order) and scaled to [0, 1];
//! `Splits::image` keeps its shape, so a network can see `[N, C, H, W]` tensors and the MLP path
//! the flattened pixels.

pub mod cifar;
pub mod digits;
pub mod idx;

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{split, Dataset, Source, Splits};
use crate::config::{DataSettings, IMAGE_DEV_FRACTION, MAX_DATA_FILE_BYTES};
use crate::error::UsageError;

/// The image datasets `--dataset` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageDataset {
    Digits,
    Mnist,
    FashionMnist,
    Cifar10,
}

/// The shape of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Values per image.
    pub fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// An image dataset and, for those not bundled, the folder holding its files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSource {
    pub dataset: ImageDataset,
    pub dir: Option<PathBuf>,
}

/// The IDX files of MNIST and Fashion-MNIST: train images, train labels, test images, labels.
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// The binary batches of CIFAR-10: five training batches, then the test batch.
const CIFAR_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

impl ImageDataset {
    pub const ALL: [ImageDataset; 4] = [
        ImageDataset::Digits,
        ImageDataset::Mnist,
        ImageDataset::FashionMnist,
        ImageDataset::Cifar10,
    ];

    /// The name `--dataset` takes.
    pub fn name(self) -> &'static str {
        match self {
            ImageDataset::Digits => "digits",
            ImageDataset::Mnist => "mnist",
            ImageDataset::FashionMnist => "fashion-mnist",
            ImageDataset::Cifar10 => "cifar10",
        }
    }

    pub fn from_name(name: &str) -> Option<ImageDataset> {
        ImageDataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Classes of every image dataset here: ten digits, ten garments, ten object kinds.
    pub fn classes(self) -> usize {
        10
    }

    /// The files `--data-dir` must hold (each may also end in `.gz`); none for the digits.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            ImageDataset::Digits => &[],
            ImageDataset::Mnist | ImageDataset::FashionMnist => &IDX_FILES,
            ImageDataset::Cifar10 => &CIFAR_FILES,
        }
    }

    /// What the files are and where they come from, for error messages.
    fn origin(self) -> &'static str {
        match self {
            ImageDataset::Digits => "bundled with archsearch",
            ImageDataset::Mnist => {
                "the four IDX files of the MNIST database, from the MNIST page of Yann LeCun, \
                 Corinna Cortes and Christopher Burges or a mirror of it"
            }
            ImageDataset::FashionMnist => {
                "the four IDX files of Fashion-MNIST, from Zalando Research's fashion-mnist \
                 repository on GitHub"
            }
            ImageDataset::Cifar10 => {
                "the binary batches of CIFAR-10, in the folder cifar-10-batches-bin unpacked from \
                 cifar-10-binary.tar.gz of Alex Krizhevsky's CIFAR page at the University of Toronto"
            }
        }
    }
}

/// The data source of `--dataset NAME` with `--data-dir` (if given): a named linfa dataset or an
/// image dataset. A folder where none is needed, or none where one is, is a usage error.
pub fn source_for(name: &str, dir: Option<&Path>) -> Result<Source, UsageError> {
    let Some(dataset) = ImageDataset::from_name(name) else {
        if dir.is_some() {
            return Err(UsageError::new(format!(
                "--dataset {name} ships inside archsearch and reads no files; drop --data-dir \
                 (it is for --dataset mnist, fashion-mnist and cifar10)"
            )));
        }
        return Ok(Source::Named(name.to_string()));
    };
    match (dataset, dir) {
        (ImageDataset::Digits, Some(_)) => Err(UsageError::new(
            "--dataset digits ships inside archsearch and reads no files; drop --data-dir \
             (it is for --dataset mnist, fashion-mnist and cifar10)",
        )),
        (_, None) if !dataset.files().is_empty() => Err(needs_a_folder(dataset)),
        (_, dir) => Ok(Source::Images(ImageSource {
            dataset,
            dir: dir.map(Path::to_path_buf),
        })),
    }
}

/// The error for a dataset read from files given without `--data-dir`.
fn needs_a_folder(dataset: ImageDataset) -> UsageError {
    UsageError::new(format!(
        "--dataset {} needs --data-dir DIR, a folder holding {} (each may also be gzipped, \
         ending in .gz): {}; archsearch downloads nothing",
        dataset.name(),
        dataset.files().join(", "),
        dataset.origin()
    ))
}

/// The paths of `dataset`'s files in `dir`, each plain or with `.gz` added (plain first); a
/// usage error naming every missing file and where such files come from.
pub fn locate(dataset: ImageDataset, dir: &Path) -> Result<Vec<PathBuf>, UsageError> {
    if !dir.is_dir() {
        return Err(UsageError::new(format!(
            "--data-dir {} is not a folder; give the folder holding {}",
            dir.display(),
            dataset.origin()
        )));
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in dataset.files() {
        let plain = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        if plain.is_file() {
            found.push(plain);
        } else if gz.is_file() {
            found.push(gz);
        } else {
            missing.push(*name);
        }
    }
    if !missing.is_empty() {
        return Err(UsageError::new(format!(
            "--data-dir {} lacks {} (each may also be gzipped, ending in .gz), needed by \
             --dataset {}, whose folder holds {}; archsearch downloads nothing",
            dir.display(),
            missing.join(", "),
            dataset.name(),
            dataset.origin()
        )));
    }
    Ok(found)
}

/// The bytes of a data file, gunzipped when they start with gzip's magic number. A file that
/// cannot be read, is not valid gzip, or exceeds `MAX_DATA_FILE_BYTES` is a usage error.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, UsageError> {
    let bad = |msg: String| UsageError::new(format!("{}: {msg}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut raw = Vec::new();
    file.take(MAX_DATA_FILE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_DATA_FILE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("not a valid gzip file: {e}")))?;
        out
    } else {
        raw
    };
    if bytes.len() as u64 > MAX_DATA_FILE_BYTES {
        return Err(bad(format!(
            "larger than {} MiB; is it the right file?",
            MAX_DATA_FILE_BYTES >> 20
        )));
    }
    Ok(bytes)
}

/// The official training set split into train and dev (its last IMAGE_DEV_FRACTION), with the
/// official test set as test.
pub fn official_splits(train: &Dataset, test: Dataset, shape: ImageShape) -> Splits {
    let n = train.len();
    let train_end = ((n as f64 * (1.0 - IMAGE_DEV_FRACTION)) + 1e-9).floor() as usize;
    Splits {
        train: train.slice(0..train_end),
        dev: train.slice(train_end..n),
        test,
        image: Some(shape),
    }
}

/// Loads an image dataset split into train, dev and test: the digits shuffled with the data
/// seed and split like every other dataset, the others by their official split.
pub fn load(source: &ImageSource, settings: &DataSettings) -> Result<Splits> {
    let files = match (source.dataset, &source.dir) {
        (ImageDataset::Digits, _) => Vec::new(),
        (dataset, Some(dir)) => locate(dataset, dir)?,
        (dataset, None) => return Err(needs_a_folder(dataset).into()),
    };
    let splits = match source.dataset {
        ImageDataset::Digits => {
            let data = digits::load()?.shuffled(settings.seed);
            Splits {
                image: Some(digits::SHAPE),
                ..split(&data, settings.train_fraction, settings.dev_fraction)
            }
        }
        ImageDataset::Mnist | ImageDataset::FashionMnist => {
            let (train, test, shape) = idx::load(&files, source.dataset.classes())?;
            official_splits(&train, test, shape)
        }
        ImageDataset::Cifar10 => {
            let (train, test) = cifar::load(&files, source.dataset.classes())?;
            official_splits(&train, test, cifar::SHAPE)
        }
    };
    for (part, what) in [
        (&splits.train, "train"),
        (&splits.dev, "dev"),
        (&splits.test, "test"),
    ] {
        if part.is_empty() {
            return Err(UsageError::new(format!(
                "--dataset {}: the {what} split is empty ({} train, {} dev, {} test images); \
                 the files hold too few images",
                source.dataset.name(),
                splits.train.len(),
                splits.dev.len(),
                splits.test.len()
            ))
            .into());
        }
    }
    Ok(splits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_round_trip_and_match_the_cli_list() {
        for d in ImageDataset::ALL {
            assert_eq!(ImageDataset::from_name(d.name()), Some(d));
            assert!(crate::data::DATASETS.contains(&d.name()));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
        }
        for name in crate::data::NAMED_DATASETS {
            assert!(crate::data::DATASETS.contains(&name));
        }
        assert_eq!(
            crate::data::DATASETS.len(),
            ImageDataset::ALL.len() + crate::data::NAMED_DATASETS.len()
        );
    }

    #[test]
    fn sources_need_a_folder_exactly_when_files_are_read() {
        let dir = Path::new("/some/dir");
        assert_eq!(source_for("iris", None), Ok(Source::Named("iris".into())));
        assert!(source_for("iris", Some(dir))
            .unwrap_err()
            .0
            .contains("drop --data-dir"));
        assert!(source_for("digits", Some(dir))
            .unwrap_err()
            .0
            .contains("drop --data-dir"));
        assert!(matches!(
            source_for("digits", None),
            Ok(Source::Images(ImageSource {
                dataset: ImageDataset::Digits,
                dir: None
            }))
        ));
        let err = source_for("mnist", None).unwrap_err().0;
        assert!(
            err.contains("--data-dir") && err.contains("t10k-labels-idx1-ubyte"),
            "{err}"
        );
        let err = source_for("cifar10", None).unwrap_err().0;
        assert!(
            err.contains("test_batch.bin") && err.contains("Krizhevsky"),
            "{err}"
        );
        assert!(matches!(
            source_for("fashion-mnist", Some(dir)),
            Ok(Source::Images(ImageSource {
                dataset: ImageDataset::FashionMnist,
                dir: Some(_)
            }))
        ));
    }

    #[test]
    fn missing_files_are_named_with_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), b"").unwrap();
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), b"").unwrap();
        let err = locate(ImageDataset::Mnist, dir.path()).unwrap_err().0;
        assert!(
            err.contains("lacks train-labels-idx1-ubyte, t10k-labels-idx1-ubyte (each"),
            "{err}"
        );
        assert!(
            err.contains("MNIST page") && err.contains("downloads nothing"),
            "{err}"
        );
        let err = locate(ImageDataset::Cifar10, &dir.path().join("nowhere"))
            .unwrap_err()
            .0;
        assert!(err.contains("is not a folder"), "{err}");
    }

    #[test]
    fn plain_and_gzipped_files_read_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, &bytes).unwrap();
        let gz = dir.path().join("packed.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(&bytes).unwrap();
        enc.finish().unwrap();
        assert_eq!(read_bytes(&plain).unwrap(), bytes);
        assert_eq!(read_bytes(&gz).unwrap(), bytes);
        // A truncated gzip stream is a usage error naming the file.
        let cut = dir.path().join("cut.gz");
        let packed = std::fs::read(&gz).unwrap();
        std::fs::write(&cut, &packed[..packed.len() / 2]).unwrap();
        let err = read_bytes(&cut).unwrap_err().0;
        assert!(err.contains("cut.gz") && err.contains("gzip"), "{err}");
    }

    #[test]
    fn the_official_split_keeps_the_order_and_puts_the_last_tenth_in_dev() {
        let train = Dataset {
            features: (0..40).map(|v| v as f32).collect(),
            labels: (0..20).map(|i| i % 10).collect(),
            n_features: 2,
            n_classes: 10,
        };
        let test = train.slice(0..5);
        let shape = ImageShape {
            channels: 1,
            height: 1,
            width: 2,
        };
        let s = official_splits(&train, test.clone(), shape);
        assert_eq!((s.train.len(), s.dev.len()), (18, 2));
        assert_eq!(s.train, train.slice(0..18));
        assert_eq!(s.dev, train.slice(18..20));
        assert_eq!((s.test, s.image), (test, Some(shape)));
    }
}
