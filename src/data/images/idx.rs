//! MNIST and Fashion-MNIST from their IDX files (the format of LeCun et al.'s MNIST database:
//! two zero bytes, a type byte, the number of dimensions, each dimension as a big-endian u32,
//! then the values), plain or gzipped. Unsigned-byte images and labels only, as both datasets
//! ship them; every header is checked against the bytes that follow it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{read_bytes, ImageShape};
use crate::data::Dataset;
use crate::error::UsageError;

/// The IDX type byte of unsigned bytes.
const UNSIGNED_BYTE: u8 = 0x08;

/// An IDX file's dimensions and values.
#[derive(Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub values: Vec<u8>,
}

/// Parses an IDX file of unsigned bytes; the error says what is wrong (without the file name).
pub fn parse(mut bytes: Vec<u8>) -> Result<Idx, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (it must start with two zero bytes)".into());
    }
    if bytes[2] != UNSIGNED_BYTE {
        return Err(format!(
            "IDX values of type 0x{:02x}; only unsigned bytes (0x08) are read",
            bytes[2]
        ));
    }
    let n_dims = bytes[3] as usize;
    let header = 4 + 4 * n_dims;
    if bytes.len() < header {
        return Err(format!(
            "the header announces {n_dims} dimensions but the file ends inside it"
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("the header's dimensions overflow")?;
    let found = bytes.len() - header;
    if found != expected {
        return Err(format!(
            "the header announces dimensions {dims:?}, {expected} values, but {found} follow"
        ));
    }
    bytes.drain(..header);
    Ok(Idx {
        dims,
        values: bytes,
    })
}

/// Reads and parses one IDX file; errors name it.
fn read(path: &Path) -> Result<Idx, UsageError> {
    parse(read_bytes(path)?).map_err(|e| UsageError::new(format!("{}: {e}", path.display())))
}

/// Images of an `images` file with the labels of a `labels` file, pixels scaled to [0, 1].
fn images_with_labels(
    images: &Path,
    labels: &Path,
    classes: usize,
) -> Result<(Dataset, ImageShape)> {
    let bad = |path: &Path, msg: String| -> anyhow::Error {
        UsageError::new(format!("{}: {msg}", path.display())).into()
    };
    let img = read(images)?;
    let lab = read(labels)?;
    let [n, height, width] = img.dims[..] else {
        return Err(bad(
            images,
            format!(
                "expected 3 dimensions (images, rows, columns), found {:?}",
                img.dims
            ),
        ));
    };
    let [n_labels] = lab.dims[..] else {
        return Err(bad(
            labels,
            format!("expected 1 dimension (labels), found {:?}", lab.dims),
        ));
    };
    if n_labels != n {
        return Err(bad(
            labels,
            format!(
                "{n_labels} labels, but {} holds {n} images",
                images.display()
            ),
        ));
    }
    if let Some(i) = lab.values.iter().position(|&l| l as usize >= classes) {
        return Err(bad(
            labels,
            format!(
                "label {} of image {i} is not a class 0 to {}",
                lab.values[i],
                classes - 1
            ),
        ));
    }
    let shape = ImageShape {
        channels: 1,
        height,
        width,
    };
    let data = Dataset {
        features: img.values.iter().map(|&p| p as f32 / 255.0).collect(),
        labels: lab.values.iter().map(|&l| l as i64).collect(),
        n_features: shape.pixels(),
        n_classes: classes,
    };
    Ok((data, shape))
}

/// The official training and test sets from the four files, in `IDX_FILES` order.
pub fn load(files: &[PathBuf], classes: usize) -> Result<(Dataset, Dataset, ImageShape)> {
    let [train_images, train_labels, test_images, test_labels] = files else {
        anyhow::bail!("four IDX files expected, {} given", files.len());
    };
    let (train, shape) = images_with_labels(train_images, train_labels, classes)?;
    let (test, test_shape) = images_with_labels(test_images, test_labels, classes)?;
    if test_shape != shape {
        return Err(UsageError::new(format!(
            "{} holds {}x{} images, but {} holds {}x{}; both must come from the same dataset",
            test_images.display(),
            test_shape.height,
            test_shape.width,
            train_images.display(),
            shape.height,
            shape.width
        ))
        .into());
    }
    Ok((train, test, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An IDX file of unsigned bytes, written out byte by byte.
    fn idx_bytes(dims: &[u32], values: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(values);
        b
    }

    fn write(path: &Path, bytes: &[u8], gzip: bool) {
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(
                std::fs::File::create(path).unwrap(),
                flate2::Compression::fast(),
            );
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap();
        } else {
            std::fs::write(path, bytes).unwrap();
        }
    }

    /// Writes a tiny MNIST-like folder: 3 training images of 2x3 pixels, 2 test images.
    fn tiny_set(dir: &Path, gzip: bool) -> (Vec<u8>, Vec<u8>) {
        let train: Vec<u8> = (0..18).map(|i| (i * 15) as u8).collect();
        let test: Vec<u8> = vec![255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 128];
        let ext = if gzip { ".gz" } else { "" };
        let files = [
            ("train-images-idx3-ubyte", idx_bytes(&[3, 2, 3], &train)),
            ("train-labels-idx1-ubyte", idx_bytes(&[3], &[7, 0, 9])),
            ("t10k-images-idx3-ubyte", idx_bytes(&[2, 2, 3], &test)),
            ("t10k-labels-idx1-ubyte", idx_bytes(&[2], &[3, 3])),
        ];
        for (name, bytes) in files {
            write(&dir.join(format!("{name}{ext}")), &bytes, gzip);
        }
        (train, test)
    }

    #[test]
    fn tiny_files_read_back_exactly_plain_and_gzipped() {
        for gzip in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (train_px, test_px) = tiny_set(dir.path(), gzip);
            let files =
                super::super::locate(super::super::ImageDataset::Mnist, dir.path()).unwrap();
            let (train, test, shape) = load(&files, 10).unwrap();
            assert_eq!(
                shape,
                ImageShape {
                    channels: 1,
                    height: 2,
                    width: 3
                }
            );
            let scaled = |px: &[u8]| px.iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>();
            assert_eq!(train.features, scaled(&train_px));
            assert_eq!(train.labels, [7, 0, 9]);
            assert_eq!(test.features, scaled(&test_px));
            assert_eq!(test.labels, [3, 3]);
            assert_eq!((train.n_features, test.n_classes), (6, 10));
            assert_eq!(test.point(0)[0], 1.0);
        }
    }

    #[test]
    fn uncompressed_files_read_as_tch_reads_them() {
        // tch's own MNIST loader is the oracle for the uncompressed format.
        let dir = tempfile::tempdir().unwrap();
        tiny_set(dir.path(), false);
        let files = super::super::locate(super::super::ImageDataset::Mnist, dir.path()).unwrap();
        let (train, test, _) = load(&files, 10).unwrap();
        let theirs = tch::vision::mnist::load_dir(dir.path()).unwrap();
        let ours = |d: &Dataset| d.tensors(tch::Device::Cpu);
        let (x, y) = ours(&train);
        assert!(x.equal(&theirs.train_images) && y.equal(&theirs.train_labels));
        let (x, y) = ours(&test);
        assert!(x.equal(&theirs.test_images) && y.equal(&theirs.test_labels));
    }

    #[test]
    fn bad_files_are_usage_errors_naming_the_file_and_the_fault() {
        let err = |dims: &[u32], values: &[u8]| parse(idx_bytes(dims, values)).unwrap_err();
        assert!(err(&[2, 2], &[1, 2, 3]).contains("4 values, but 3 follow"));
        assert!(err(&[2], &[1, 2, 3]).contains("2 values, but 3 follow"));
        assert!(err(&[u32::MAX, u32::MAX, u32::MAX], &[]).contains("overflow"));
        assert!(parse(vec![0, 0, 0x0d, 1, 0, 0, 0, 0])
            .unwrap_err()
            .contains("0x0d"));
        assert!(parse(b"PK\x03\x04".to_vec())
            .unwrap_err()
            .contains("not an IDX file"));
        assert!(parse(vec![0, 0, 8, 3, 0, 0])
            .unwrap_err()
            .contains("ends inside"));

        let dir = tempfile::tempdir().unwrap();
        tiny_set(dir.path(), false);
        let labels = dir.path().join("t10k-labels-idx1-ubyte");
        std::fs::write(&labels, idx_bytes(&[2], &[3, 10])).unwrap();
        let files = super::super::locate(super::super::ImageDataset::Mnist, dir.path()).unwrap();
        let e = load(&files, 10).unwrap_err();
        let text = e
            .downcast_ref::<UsageError>()
            .expect("a usage error")
            .0
            .clone();
        assert!(
            text.contains("t10k-labels-idx1-ubyte: label 10 of image 1"),
            "{text}"
        );
        std::fs::write(&labels, idx_bytes(&[1], &[3])).unwrap();
        let text = format!("{:#}", load(&files, 10).unwrap_err());
        assert!(
            text.contains("1 labels, but") && text.contains("2 images"),
            "{text}"
        );
        std::fs::write(&labels, idx_bytes(&[2], &[3, 3])).unwrap();
        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte"),
            idx_bytes(&[2, 3, 2], &[0; 12]),
        )
        .unwrap();
        let text = format!("{:#}", load(&files, 10).unwrap_err());
        assert!(
            text.contains("3x2 images") && text.contains("2x3"),
            "{text}"
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_after_an_idx_prefix_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse([vec![0, 0, 0x08], bytes].concat());
        }
    }
}
