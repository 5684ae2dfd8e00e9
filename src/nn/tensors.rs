//! A dataset's splits as tensors in the shape a network takes: images as `[N, C, H, W]`, other
//! points as `[N, features]`, labels as `[N]` int64, on one device.

use tch::{Device, Kind, Tensor};

use crate::data::{Dataset, Splits};

/// The inputs and labels of one split.
#[derive(Debug)]
pub struct Part {
    pub x: Tensor,
    pub y: Tensor,
}

impl Part {
    /// Examples in this split.
    pub fn len(&self) -> usize {
        self.y.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Another handle to the same tensors.
    pub fn shallow_clone(&self) -> Part {
        Part {
            x: self.x.shallow_clone(),
            y: self.y.shallow_clone(),
        }
    }
}

/// Train, dev and test splits on one device.
#[derive(Debug)]
pub struct TrainData {
    pub train: Part,
    pub dev: Part,
    pub test: Part,
    pub n_classes: usize,
    pub device: Device,
}

impl TrainData {
    /// The splits as tensors: `[N, C, H, W]` when they hold images, else `[N, features]`.
    pub fn new(splits: &Splits, device: Device) -> TrainData {
        let shape: Vec<i64> = match splits.image {
            Some(s) => vec![s.channels as i64, s.height as i64, s.width as i64],
            None => vec![splits.train.n_features as i64],
        };
        let part = |d: &Dataset| {
            let mut dims = vec![d.len() as i64];
            dims.extend_from_slice(&shape);
            let x = Tensor::from_slice(&d.features).view(dims.as_slice());
            let y = Tensor::from_slice(&d.labels).to_kind(Kind::Int64);
            Part {
                x: x.to_device(device),
                y: y.to_device(device),
            }
        };
        TrainData {
            train: part(&splits.train),
            dev: part(&splits.dev),
            test: part(&splits.test),
            n_classes: splits.train.n_classes,
            device,
        }
    }

    /// The shape of one input, e.g. `[1, 8, 8]` for the digits.
    pub fn input_shape(&self) -> Vec<i64> {
        self.train.x.size()[1..].to_vec()
    }

    /// Another handle to the same tensors, for a worker thread (tensors are `Send`, not `Sync`).
    pub fn shallow_clone(&self) -> TrainData {
        TrainData {
            train: self.train.shallow_clone(),
            dev: self.dev.shallow_clone(),
            test: self.test.shallow_clone(),
            n_classes: self.n_classes,
            device: self.device,
        }
    }
}

/// The same values stored channels-last (NHWC order in memory, still indexed as NCHW), where
/// some of oneDNN's CPU kernels run faster. tch has no memory-format argument: a permuted copy
/// viewed back as NCHW has channels-last strides, which libtorch's kernels recognise.
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DataSettings;
    use crate::data::images::{ImageDataset, ImageSource};
    use crate::data::{load, make_moons, split, Source};
    use tch::IndexOp;

    #[test]
    fn images_become_nchw_and_points_stay_flat() {
        let source = Source::Images(ImageSource {
            dataset: ImageDataset::Digits,
            dir: None,
        });
        let splits = load(&source, &DataSettings::default()).unwrap();
        let data = TrainData::new(&splits, Device::Cpu);
        assert_eq!(data.train.x.size(), [splits.train.len() as i64, 1, 8, 8]);
        assert_eq!(data.input_shape(), [1, 8, 8]);
        assert_eq!(data.n_classes, 10);
        // Pixel (row 2, column 5) of test image 3 is value 2 * 8 + 5 of its flattened point.
        let v = data.test.x.i((3, 0, 2, 5)).double_value(&[]);
        assert_eq!(v as f32, splits.test.point(3)[2 * 8 + 5]);
        assert_eq!(data.test.y.int64_value(&[3]), splits.test.labels[3]);

        let moons = TrainData::new(&split(&make_moons(50, 0.2, 0), 0.7, 0.1), Device::Cpu);
        assert_eq!(moons.train.x.size(), [35, 2]);
        assert_eq!((moons.dev.len(), moons.test.len()), (5, 10));
    }
}
