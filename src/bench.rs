//! `archsearch bench`: child-training speed on a device, single child and population, each
//! figure the median of several repetitions after a warm-up.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;

use crate::child::{Child, TensorData};
use crate::cli::{device_name, parse_device};
use crate::config::{ChildSettings, DataSettings, TORCH_THREADS};
use crate::data::{self, Source};
use crate::mlp::{Activation, Layer, MlpSpec};

/// Flags of `archsearch bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Device to measure: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// Timed repetitions per figure (the median is reported)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub repeats: u64,
}

/// The benchmark's child: the reference's example architecture, 2-8-8-4-2.
pub fn bench_spec() -> MlpSpec {
    use Activation::*;
    MlpSpec {
        n_in: 2,
        n_out: 2,
        layers: vec![
            Layer::Linear(8),
            Layer::Act(Tanh),
            Layer::Linear(8),
            Layer::Act(ReLU),
            Layer::Linear(4),
            Layer::Act(ReLU),
        ],
    }
}

#[derive(Serialize)]
pub struct SingleFigures {
    pub us_per_step: f64,
    pub rollouts_per_s: f64,
}

#[derive(Serialize)]
pub struct BenchReport {
    pub device: String,
    pub threads: i32,
    pub single: SingleFigures,
}

/// Median of measured values.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Steps of one epoch over the moons' train split.
const STEPS: usize = 22;

pub fn run(args: &BenchArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    tch::set_num_threads(TORCH_THREADS);
    let splits = data::load(&Source::Moons, &DataSettings::default())?;
    let tensors = TensorData::new(&splits, device);
    let settings = ChildSettings::default();
    let spec = bench_spec();

    // Single child: microseconds per training step over whole epochs.
    let mut child = Child::new(&spec, device, &mut Pcg64::seed_from_u64(0));
    let one_epoch = ChildSettings {
        max_epochs: 1,
        patience: usize::MAX,
        ..settings.clone()
    };
    let mut rng = Pcg64::seed_from_u64(1);
    for _ in 0..5 {
        crate::child::train(&mut child, &tensors, &one_epoch, &mut rng);
    }
    let epochs = 20;
    let per_step: Vec<f64> = (0..args.repeats)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..epochs {
                crate::child::train(&mut child, &tensors, &one_epoch, &mut rng);
            }
            t.elapsed().as_secs_f64() * 1e6 / (epochs * STEPS) as f64
        })
        .collect();
    let us_per_step = median(per_step);
    // A typical child runs about 30 epochs before early stopping.
    let rollouts_per_s = 1e6 / (us_per_step * (30 * STEPS) as f64);
    let report = BenchReport {
        device: device_name(device),
        threads: tch::get_num_threads(),
        single: SingleFigures {
            us_per_step,
            rollouts_per_s,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("device {}  threads {}", report.device, report.threads);
        println!(
            "single child: {:.1} us per step, about {:.1} rollouts/s",
            us_per_step, rollouts_per_s
        );
    }
    Ok(())
}
