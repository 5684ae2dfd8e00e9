//! End-to-end tests of the image datasets: the bundled digits, and MNIST, Fashion-MNIST and
//! CIFAR-10 from tiny files written here byte by byte (gzipped and not), searched with the
//! default MLP space; a folder missing files exits 2 before anything is written.

mod common;
use common::*;

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path`, gzipped when `gzip`.
fn write(path: &Path, bytes: &[u8], gzip: bool) {
    if gzip {
        let file = std::fs::File::create(path).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// An IDX file of unsigned bytes: 0, 0, type 0x08, the dimension count, big-endian dimensions.
fn idx(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(values);
    b
}

/// `n` 6x6 images of two classes: class 1 bright on the left half, class 0 on the right.
fn two_class_images(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let class = (i % 2) as u8;
        for _row in 0..6 {
            for col in 0..6 {
                let left = col < 3;
                pixels.push(if left == (class == 1) {
                    200 + (i % 50) as u8
                } else {
                    (i % 30) as u8
                });
            }
        }
        labels.push(class);
    }
    (pixels, labels)
}

/// The four MNIST files for 40 training and 12 test images.
fn write_mnist(dir: &Path, gzip: bool) {
    let ext = if gzip { ".gz" } else { "" };
    let (train, train_labels) = two_class_images(40);
    let (test, test_labels) = two_class_images(12);
    write(
        &dir.join(format!("train-images-idx3-ubyte{ext}")),
        &idx(&[40, 6, 6], &train),
        gzip,
    );
    write(
        &dir.join(format!("train-labels-idx1-ubyte{ext}")),
        &idx(&[40], &train_labels),
        gzip,
    );
    write(
        &dir.join(format!("t10k-images-idx3-ubyte{ext}")),
        &idx(&[12, 6, 6], &test),
        gzip,
    );
    write(
        &dir.join(format!("t10k-labels-idx1-ubyte{ext}")),
        &idx(&[12], &test_labels),
        gzip,
    );
}

fn search(args: &[&str], out: &Path) -> serde_json::Value {
    let mut all = vec!["--rollouts", "3", "--out", out.to_str().unwrap(), "--quiet"];
    all.extend_from_slice(args);
    let o = archsearch_quick(&all);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    summary(out)
}

#[test]
fn a_search_runs_on_the_bundled_digits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("digits");
    let o = archsearch_quick(&[
        "--dataset",
        "digits",
        "--rollouts",
        "20",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    assert_eq!(s["rollouts_done"], 20);
    assert_eq!(s["data"]["features"], 64);
    assert_eq!(s["data"]["classes"], 10);
    // 1797 images split 70/10/20.
    assert_eq!(
        (
            s["data"]["train"].as_u64(),
            s["data"]["dev"].as_u64(),
            s["data"]["test"].as_u64()
        ),
        (Some(1257), Some(180), Some(360))
    );
    assert_eq!(csv_without_seconds(&out).len(), 20);
    // Ten classes: a retrained best network does far better than guessing (10 %).
    let mean = s["final_test_accuracy_mean"].as_f64().unwrap();
    assert!(mean > 0.5, "test accuracy {mean}");
    assert!(out.join("accuracy.png").is_file());
    assert!(!out.join("halfmoon.png").exists() && !out.join("boundary.png").exists());
}

#[test]
fn mnist_and_fashion_mnist_run_from_tiny_idx_files_gzipped_or_not() {
    for (dataset, gzip) in [("mnist", false), ("fashion-mnist", true)] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("files");
        std::fs::create_dir(&data).unwrap();
        write_mnist(&data, gzip);
        let out = dir.path().join("run");
        let s = search(
            &["--dataset", dataset, "--data-dir", data.to_str().unwrap()],
            &out,
        );
        // The official test set is the test split; dev is the last 10 % of the training set.
        assert_eq!(
            (
                s["data"]["train"].as_u64(),
                s["data"]["dev"].as_u64(),
                s["data"]["test"].as_u64()
            ),
            (Some(36), Some(4), Some(12))
        );
        assert_eq!(s["data"]["features"], 36);
        assert_eq!(s["data"]["classes"], 10);
        assert_eq!(s["data"]["source"]["Images"]["dataset"], dataset);
        assert_eq!(s["rollouts_done"], 3);
    }
}

#[test]
fn cifar10_runs_from_tiny_binary_batches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&data).unwrap();
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (b, name) in names.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..4 {
            let label = ((b + i) % 10) as u8;
            bytes.push(label);
            bytes.extend((0..3072).map(|p| ((p * (label as usize + 1)) % 256) as u8));
        }
        write(&data.join(name), &bytes, b % 2 == 0);
    }
    let out = dir.path().join("run");
    let s = search(
        &["--dataset", "cifar10", "--data-dir", data.to_str().unwrap()],
        &out,
    );
    assert_eq!(
        (
            s["data"]["train"].as_u64(),
            s["data"]["dev"].as_u64(),
            s["data"]["test"].as_u64()
        ),
        (Some(18), Some(2), Some(4))
    );
    assert_eq!(s["data"]["features"], 3072);
}

#[test]
fn missing_or_misplaced_image_files_exit_2_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let out_s = out.to_str().unwrap();
    let data = dir.path().join("partial");
    std::fs::create_dir(&data).unwrap();
    write_mnist(&data, false);
    std::fs::remove_file(data.join("t10k-images-idx3-ubyte")).unwrap();
    std::fs::remove_file(data.join("train-labels-idx1-ubyte")).unwrap();
    let data_s = data.to_str().unwrap();
    let check = |args: &[&str], expected: &[&str]| {
        let o = archsearch(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for e in expected {
            assert!(err.contains(e), "{args:?}: expected `{e}` in: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !out.exists(),
            "nothing is written before the input is checked"
        );
    };
    check(
        &["--dataset", "mnist", "--data-dir", data_s, "--out", out_s],
        &[
            "lacks train-labels-idx1-ubyte, t10k-images-idx3-ubyte",
            "MNIST page",
            "downloads nothing",
        ],
    );
    check(
        &["--dataset", "cifar10", "--data-dir", data_s, "--out", out_s],
        &["data_batch_1.bin", "test_batch.bin", "CIFAR"],
    );
    check(
        &["--dataset", "fashion-mnist", "--out", out_s],
        &["needs --data-dir", "Fashion-MNIST"],
    );
    check(
        &["--dataset", "digits", "--data-dir", data_s, "--out", out_s],
        &["drop --data-dir"],
    );
    check(&["--data-dir", data_s, "--out", out_s], &["--dataset"]);
    // A damaged file: named, with what is wrong.
    write_mnist(&data, false);
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), idx(&[12], &[0; 11])).unwrap();
    check(
        &["--dataset", "mnist", "--data-dir", data_s, "--out", out_s],
        &["t10k-labels-idx1-ubyte", "12 values, but 11 follow"],
    );
}
