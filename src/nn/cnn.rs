//! The fixed baseline CNN: three 3x3 convolutions, each followed by batch norm (Ioffe & Szegedy
//! 2015) and ReLU, then global average pooling and a linear layer, the all-convolutional shape
//! of Network in Network (Lin et al. 2014). It checks the general trainer and the image data
//! before any conv search runs on them; `archsearch bench --cnn` measures it on the digits.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::tensors::TrainData;
use super::train::{test_accuracy, train_new, Ending};
use crate::config::{DataSettings, TrainerSettings, CNN_CHANNELS, CNN_KERNEL, CNN_STRIDES};
use crate::data::images::{ImageDataset, ImageSource};
use crate::data::{self, Source};

/// Conv, batch norm, ReLU three times; global average pooling; linear.
#[derive(Debug)]
pub struct BaselineCnn {
    layers: Vec<(nn::Conv2D, nn::BatchNorm)>,
    head: nn::Linear,
}

impl BaselineCnn {
    /// For images of `in_channels` channels (any height and width) and `classes` classes.
    pub fn new(p: &nn::Path, in_channels: i64, classes: i64) -> BaselineCnn {
        let mut layers = Vec::new();
        let mut channels = in_channels;
        for (i, (&out, &stride)) in CNN_CHANNELS.iter().zip(&CNN_STRIDES).enumerate() {
            let conv = nn::conv2d(
                p / format!("conv{i}"),
                channels,
                out,
                CNN_KERNEL,
                nn::ConvConfig {
                    stride,
                    padding: CNN_KERNEL / 2,
                    bias: false, // batch norm's shift replaces it
                    ..Default::default()
                },
            );
            let bn = nn::batch_norm2d(
                p / format!("bn{i}"),
                out,
                nn::BatchNormConfig {
                    ws_init: nn::Init::Const(1.0),
                    ..Default::default()
                },
            );
            layers.push((conv, bn));
            channels = out;
        }
        let head = nn::linear(p / "head", channels, classes, Default::default());
        BaselineCnn { layers, head }
    }
}

impl ModuleT for BaselineCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = xs.shallow_clone();
        for (conv, bn) in &self.layers {
            h = h.apply(conv).apply_t(bn, train).relu();
        }
        h.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
            .apply(&self.head)
    }
}

/// One training of the baseline CNN on the digits.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineRun {
    pub seed: u64,
    pub test_accuracy: f64,
    pub best_dev_accuracy: f64,
    pub epochs: usize,
    pub seconds_per_epoch: f64,
    pub ending: Ending,
}

/// Trains the baseline CNN on the bundled digits (the default 70/10/20 split) with `settings`
/// and tests it once.
pub fn train_on_digits(
    settings: &TrainerSettings,
    seed: u64,
    device: Device,
    stop: &AtomicBool,
) -> Result<BaselineRun> {
    let source = Source::Images(ImageSource {
        dataset: ImageDataset::Digits,
        dir: None,
    });
    let splits = data::load(&source, &DataSettings::default())?;
    let data = TrainData::new(&splits, device);
    let in_channels = data.input_shape()[0];
    let classes = data.n_classes as i64;
    let started = Instant::now();
    let build = |p: &nn::Path| BaselineCnn::new(p, in_channels, classes);
    let (_vs, model, outcome) = train_new(build, &data, settings, seed, stop)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(BaselineRun {
        seed,
        test_accuracy: test_accuracy(&model, &data, settings),
        best_dev_accuracy: outcome.best_dev_accuracy,
        epochs: outcome.epochs.len(),
        seconds_per_epoch: seconds / outcome.epochs.len().max(1) as f64,
        ending: outcome.ending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cnn_maps_any_image_size_to_class_logits() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cnn = BaselineCnn::new(&vs.root(), 3, 10);
        for side in [8, 28, 32] {
            let x = Tensor::rand([4, 3, side, side], (Kind::Float, Device::Cpu));
            assert_eq!(cnn.forward_t(&x, true).size(), [4, 10]);
            assert_eq!(cnn.forward_t(&x, false).size(), [4, 10]);
        }
    }

    #[test]
    fn the_baseline_cnn_learns_the_digits() {
        tch::set_num_threads(crate::config::TORCH_THREADS);
        let stop = AtomicBool::new(false);
        let run = train_on_digits(&TrainerSettings::default(), 0, Device::Cpu, &stop).unwrap();
        assert_eq!(run.ending, Ending::Completed);
        assert!(
            run.test_accuracy >= 0.97,
            "test accuracy {} (best dev {})",
            run.test_accuracy,
            run.best_dev_accuracy
        );
    }
}
