//! `archsearch bench`: child-training speed on a device, single child and population, each
//! figure the median of several repetitions after a warm-up.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use rand::SeedableRng;
use rand_pcg::Pcg64;
use serde::Serialize;

use crate::config::{ChildSettings, DataSettings, Settings, TORCH_THREADS};
use crate::data::{self, Source};
use crate::nn::child::TensorData;
use crate::nn::mlp::{Activation, Layer, MlpSpec};
use crate::nn::population::train_population;
use crate::nn::trainer::{cpu_workers, ChildJob, ChildTrainer, ParallelTrainer};
use crate::outdir::{device_name, parse_device};
use crate::space::{MlpSpace, SearchSpace};
use rand::RngExt;

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
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub repeats: u64,
    /// Instead: train the baseline CNN on the digits with seeds 0 to repeats-1 (the general
    /// trainer's defaults) and report test accuracy and seconds per epoch
    #[arg(long)]
    pub cnn: bool,
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

/// The pure-Rust CPU kernel (`cpu_mlp.rs`) on the same child, beside the machine's limits.
#[derive(Serialize)]
pub struct KernelFigures {
    /// µs per training step of `bench_spec` over 10 fixed epochs, the epochs' loss and accuracy
    /// passes included (as `single.us_per_step`).
    pub us_per_step: f64,
    /// Random architectures trained to early stopping, one after another.
    pub rollouts_per_s: f64,
    /// The step's time in tiny libtorch operations: the median, over repetitions, of a step's
    /// time divided by a tiny operation's timed right after it (the goal: at most 2).
    pub tiny_ops_per_step: f64,
    /// The median of those tiny-operation timings, in µs.
    pub us_per_tiny_op_beside: f64,
    /// `single.us_per_step / us_per_step`.
    pub speedup_over_libtorch: f64,
    /// FLOPs of one step of 32 points (`cpu_mlp::step_flops`).
    pub flops_per_step: u64,
    /// FLOPs per step of the timed loop: an epoch's steps and its loss and accuracy passes,
    /// divided by the epoch's steps.
    pub flops_per_timed_step: f64,
    /// `flops_per_timed_step` per `us_per_step`, in GFLOP/s.
    pub gflops: f64,
    /// Single-core peak estimate in GFLOP/s, measured as `peak_method` says.
    pub peak_gflops: f64,
    pub peak_method: String,
    /// Whether the kernel ran its AVX2 loops.
    pub avx2: bool,
}

#[derive(Serialize)]
pub struct PopulationFigures {
    pub k: usize,
    pub us_per_child_step: f64,
    pub rollouts_per_s: f64,
}

#[derive(Serialize)]
pub struct BenchReport {
    pub device: String,
    pub threads: i32,
    /// Microseconds of one tiny libtorch operation (`addmm` of a [32, 8] by [8, 8] batch), the
    /// floor a training step's operation count multiplies.
    pub us_per_tiny_op: f64,
    /// Worker threads of the `parallel` figures.
    pub workers: usize,
    /// The libtorch fast path (`child.rs`).
    pub single: SingleFigures,
    /// CPU only: the pure-Rust kernel (`cpu_mlp.rs`), which CPU runs use.
    pub cpu_kernel: Option<KernelFigures>,
    /// The batched population trainer.
    pub population: Vec<PopulationFigures>,
    /// CPU only: children of a batch side by side on `workers` threads, each in the path runs use
    /// (the kernel, unless `CPU_KERNEL` is off).
    pub parallel: Vec<PopulationFigures>,
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

/// Population sizes measured.
use crate::config::{BENCH_KERNEL_SEEDS, BENCH_PEAK_ITERATIONS, BENCH_TINY_OPS};

pub use crate::config::BENCH_POPULATION_SIZES as POPULATION_SIZES;

/// Architectures drawn uniformly from the default space, as an untrained controller samples.
fn random_specs(n: usize, seed: u64) -> Vec<MlpSpec> {
    let space = MlpSpace::new(&Settings::default());
    let mut rng = Pcg64::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut d = Vec::new();
            while !space.is_complete(&d) {
                d.push(rng.random_range(0..space.vocabulary()));
            }
            crate::space::halfmoon::mlp_spec(&d, 2, 2)
        })
        .collect()
}

/// Median seconds of `f` over `repeats` runs after one warm-up run.
fn timed(repeats: u64, mut f: impl FnMut()) -> f64 {
    f();
    timed_warm(repeats, f)
}

/// Median seconds of `f` over `repeats` runs, the code already warm.
fn timed_warm(repeats: u64, mut f: impl FnMut()) -> f64 {
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// One tiny libtorch operation's µs: 2000 `addmm` of a [32, 8] by [8, 8] batch.
fn tiny_op_us(device: tch::Device) -> f64 {
    let _guard = tch::no_grad_guard();
    let opts = (tch::Kind::Float, device);
    let (b, x, w) = (
        tch::Tensor::zeros([8], opts),
        tch::Tensor::ones([32, 8], opts),
        tch::Tensor::ones([8, 8], opts),
    );
    let n = BENCH_TINY_OPS;
    let t = Instant::now();
    for _ in 0..n {
        let _ = b.addmm(&x, &w);
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// What `kernel_timings` measures.
struct KernelTimes {
    us_per_step: f64,
    rollouts_per_s: f64,
    tiny_ops_per_step: f64,
    us_per_tiny_op_beside: f64,
}

/// The kernel's µs per step of `spec` (10 fixed epochs, 20 seeds per repetition so each
/// repetition lasts milliseconds), each repetition followed by a timing of the tiny libtorch
/// operation so the two see the same machine (this VM's speed drifts); and its rollouts/s over
/// `specs` trained to early stopping. At least 7 repetitions: they are short.
fn kernel_timings(
    repeats: u64,
    spec: &MlpSpec,
    specs: &[MlpSpec],
    tensors: &TensorData,
    epochs: &ChildSettings,
    settings: &ChildSettings,
) -> KernelTimes {
    let host = tensors.host();
    let never = crate::outdir::Stop::new();
    let steps = epochs.max_epochs * host.train.len().div_ceil(epochs.batch_size);
    let seeds = BENCH_KERNEL_SEEDS;
    let run = || {
        for seed in 0..seeds {
            crate::nn::cpu_mlp::train_child(spec, host, epochs, seed, &never);
        }
    };
    run(); // warm-up
    tiny_op_us(tensors.device);
    let (mut steps_us, mut tiny_us, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats.max(7) {
        let t = Instant::now();
        run();
        let us = t.elapsed().as_secs_f64() * 1e6 / (seeds as usize * steps) as f64;
        let tiny = tiny_op_us(tensors.device);
        steps_us.push(us);
        tiny_us.push(tiny);
        ratios.push(us / tiny);
    }
    let secs = timed(repeats, || {
        for (i, s) in specs.iter().enumerate() {
            crate::nn::cpu_mlp::train_child(s, host, settings, i as u64, &never);
        }
    });
    KernelTimes {
        us_per_step: median(steps_us),
        rollouts_per_s: specs.len() as f64 / secs,
        tiny_ops_per_step: median(ratios),
        us_per_tiny_op_beside: median(tiny_us),
    }
}

/// FLOPs of one epoch of `spec` on `splits`: its steps, the loss pass on the train split and
/// the accuracy pass on the dev split.
fn epoch_flops(spec: &MlpSpec, splits: &data::Splits, batch: usize) -> f64 {
    use crate::nn::cpu_mlp::{eval_flops, step_flops};
    let n = splits.train.len();
    let (full, rest) = (n / batch, n % batch);
    let mut flops = full as u64 * step_flops(spec, batch, false);
    if rest > 0 {
        flops += step_flops(spec, rest, false);
    }
    flops += eval_flops(spec, n, true) + eval_flops(spec, splits.dev.len(), false);
    flops as f64
}

/// A single core's peak, estimated by timing 12 independent chains of 8-wide fused
/// multiply-adds (AVX2 and FMA; 2 FLOP per lane each), or of 4-wide multiplies and adds where
/// the CPU lacks them. Returns GFLOP/s and how it was measured.
fn peak_gflops(repeats: u64) -> (f64, String) {
    const ITERATIONS: u64 = BENCH_PEAK_ITERATIONS;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, all `fma_chains` needs.
        let secs = timed(repeats, || {
            std::hint::black_box(unsafe { fma_chains(ITERATIONS) });
        });
        let flops = ITERATIONS * 12 * 8 * 2;
        return (
            flops as f64 / secs / 1e9,
            "12 independent chains of 8-wide AVX2 fused multiply-adds".into(),
        );
    }
    let secs = timed(repeats, || {
        std::hint::black_box(mul_add_chains(ITERATIONS));
    });
    let flops = ITERATIONS * 48 * 2;
    (
        flops as f64 / secs / 1e9,
        "48 independent multiply-then-add chains the compiler vectorises".into(),
    )
}

/// 12 chains `x = x * a + b` of 8 lanes each, `n` times; returns a lane so nothing is skipped.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains(n: u64) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(std::hint::black_box(0.999_999));
    let b = _mm256_set1_ps(std::hint::black_box(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..n {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut sum = _mm256_setzero_ps();
    for x in acc {
        sum = _mm256_add_ps(sum, x);
    }
    _mm256_cvtss_f32(sum)
}

/// 48 chains `x = x * a + b`, `n` times, in whatever vectors the compiler picks.
fn mul_add_chains(n: u64) -> f32 {
    let (a, b) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    let mut acc = [1.0f32; 48];
    for _ in 0..n {
        for x in acc.iter_mut() {
            *x = *x * a + b;
        }
    }
    acc.iter().sum()
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    tch::set_num_threads(TORCH_THREADS);
    if args.cnn {
        return cnn(args, device);
    }
    let splits = data::load(&Source::Moons, &DataSettings::default())?;
    let tensors = TensorData::new(&splits, device);
    let settings = ChildSettings::default();
    let steps_per_epoch = splits.train.len().div_ceil(settings.batch_size);
    // The benchmark keeps the default signal actions: Ctrl-C ends it at once.
    let never = crate::outdir::Stop::new();
    // Fixed-length training (no early stopping) for per-step figures.
    let epochs = ChildSettings {
        max_epochs: 10,
        patience: usize::MAX,
        ..settings.clone()
    };

    // Single child: the reference's example architecture, 10 epochs.
    let spec = bench_spec();
    let mut seed = 0;
    let secs = timed(args.repeats, || {
        seed += 1;
        crate::nn::child::train_child(&spec, &tensors, &epochs, seed, &never);
    });
    let us_per_step = secs * 1e6 / (epochs.max_epochs * steps_per_epoch) as f64;
    // Whole rollouts: random architectures trained to early stopping, one after another.
    let specs = random_specs(16, 1);
    let secs = timed(args.repeats, || {
        for (i, s) in specs.iter().enumerate() {
            crate::nn::child::train_child(s, &tensors, &settings, i as u64, &never);
        }
    });
    let single = SingleFigures {
        us_per_step,
        rollouts_per_s: specs.len() as f64 / secs,
    };
    let kernel = (device == tch::Device::Cpu && settings.cpu_kernel)
        .then(|| kernel_timings(args.repeats, &spec, &specs, &tensors, &epochs, &settings));

    // The batched population (population.rs) and, on a CPU, the single path on every core.
    let short = ChildSettings {
        max_epochs: 2,
        ..epochs.clone()
    };
    let mut population = Vec::new();
    let mut parallel = Vec::new();
    for k in POPULATION_SIZES {
        let specs = random_specs(k, 2);
        let seeds: Vec<u64> = (0..k as u64).collect();
        let per_step = |secs: f64| secs * 1e6 / (short.max_epochs * steps_per_epoch * k) as f64;
        let secs = timed(args.repeats, || {
            train_population(&specs, &seeds, &tensors, &short, &never);
        });
        let us_per_child_step = per_step(secs);
        // Whole trainings to early stopping, warm from the timing above; fewer repetitions for
        // the largest populations so the benchmark stays short.
        let full_repeats = if k >= 64 { 1 } else { args.repeats };
        let secs = timed_warm(full_repeats, || {
            train_population(&specs, &seeds, &tensors, &settings, &never);
        });
        population.push(PopulationFigures {
            k,
            us_per_child_step,
            rollouts_per_s: k as f64 / secs,
        });
        if device == tch::Device::Cpu {
            let jobs = |settings: &ChildSettings| -> Vec<ChildJob> {
                specs
                    .iter()
                    .zip(&seeds)
                    .map(|(s, &seed)| ChildJob {
                        spec: s.clone(),
                        settings: settings.clone(),
                        seed,
                    })
                    .collect()
            };
            let (short_jobs, full_jobs) = (jobs(&short), jobs(&settings));
            let workers = cpu_workers();
            let secs = timed(args.repeats, || {
                ParallelTrainer {
                    data: &tensors,
                    workers,
                    stop: never.clone(),
                }
                .train_batch(&short_jobs);
            });
            let us_per_child_step = per_step(secs);
            let secs = timed_warm(full_repeats, || {
                ParallelTrainer {
                    data: &tensors,
                    workers,
                    stop: never.clone(),
                }
                .train_batch(&full_jobs);
            });
            parallel.push(PopulationFigures {
                k,
                us_per_child_step,
                rollouts_per_s: k as f64 / secs,
            });
        }
    }
    let us_per_tiny_op = {
        tiny_op_us(device); // warm-up
        median((0..args.repeats).map(|_| tiny_op_us(device)).collect())
    };
    let cpu_kernel = kernel.map(|k| {
        let KernelTimes {
            us_per_step,
            rollouts_per_s,
            tiny_ops_per_step,
            us_per_tiny_op_beside,
        } = k;
        let flops_per_timed_step =
            epoch_flops(&spec, &splits, settings.batch_size) / steps_per_epoch as f64;
        let (peak_gflops, peak_method) = peak_gflops(args.repeats);
        KernelFigures {
            us_per_step,
            rollouts_per_s,
            tiny_ops_per_step,
            us_per_tiny_op_beside,
            speedup_over_libtorch: single.us_per_step / us_per_step,
            flops_per_step: crate::nn::cpu_mlp::step_flops(&spec, settings.batch_size, false),
            flops_per_timed_step,
            gflops: flops_per_timed_step / us_per_step / 1e3,
            peak_gflops,
            peak_method,
            avx2: crate::nn::cpu_mlp::uses_avx2(),
        }
    });
    let report = BenchReport {
        us_per_tiny_op,
        cpu_kernel,
        device: device_name(device),
        threads: tch::get_num_threads(),
        workers: cpu_workers(),
        single,
        population,
        parallel,
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string(&report)?);
    } else {
        crate::outln!(
            "device {}, {} intra-op thread(s) per trainer",
            report.device,
            report.threads
        );
        crate::outln!(
            "{:<22} {:>18} {:>14}",
            "path",
            "us per child step",
            "rollouts/s"
        );
        crate::outln!(
            "{:<22} {:>18.1} {:>14.1}",
            "single (libtorch path)",
            report.single.us_per_step,
            report.single.rollouts_per_s
        );
        if let Some(k) = &report.cpu_kernel {
            crate::outln!(
                "{:<22} {:>18.2} {:>14.1}",
                "single (cpu kernel)",
                k.us_per_step,
                k.rollouts_per_s
            );
        }
        for p in &report.population {
            crate::outln!(
                "{:<22} {:>18.1} {:>14.1}",
                format!("population k={}", p.k),
                p.us_per_child_step,
                p.rollouts_per_s
            );
        }
        for p in &report.parallel {
            let label = format!("{} threads k={}", report.workers, p.k);
            crate::outln!(
                "{:<22} {:>18.1} {:>14.1}",
                label,
                p.us_per_child_step,
                p.rollouts_per_s
            );
        }
        crate::outln!("one tiny libtorch op: {:.2} us", report.us_per_tiny_op);
        if let Some(k) = &report.cpu_kernel {
            crate::outln!(
                "cpu kernel: {:.2} us per step = {:.2} tiny libtorch ops ({:.2} us timed beside it), \
                 {:.1}x the libtorch path{}",
                k.us_per_step,
                k.tiny_ops_per_step,
                k.us_per_tiny_op_beside,
                k.speedup_over_libtorch,
                if k.avx2 { " (AVX2 loops)" } else { "" }
            );
            crate::outln!(
                "  {} FLOP per step of 32 points, {:.0} with each epoch's evaluation shared out: \
                 {:.2} GFLOP/s against a single-core peak of {:.1} GFLOP/s ({})",
                k.flops_per_step,
                k.flops_per_timed_step,
                k.gflops,
                k.peak_gflops,
                k.peak_method
            );
        }
    }
    Ok(())
}

/// `archsearch bench --cnn`: the baseline CNN on the digits, one training per seed.
fn cnn(args: &BenchArgs, device: tch::Device) -> Result<()> {
    let settings = crate::config::TrainerSettings::default();
    let never = std::sync::atomic::AtomicBool::new(false);
    let runs = (0..args.repeats)
        .map(|seed| crate::nn::cnn::train_on_digits(&settings, seed, device, &never))
        .collect::<Result<Vec<_>>>()?;
    let accuracies: Vec<f64> = runs.iter().map(|r| r.test_accuracy).collect();
    let (mean, sd) = crate::stats::mean_sd(&accuracies);
    let per_epoch = median(runs.iter().map(|r| r.seconds_per_epoch).collect());
    if args.json {
        let report = serde_json::json!({
            "device": device_name(device),
            "threads": tch::get_num_threads(),
            "settings": settings,
            "runs": runs,
            "test_accuracy_mean": mean,
            "test_accuracy_sd": sd,
            "seconds_per_epoch_median": per_epoch,
        });
        crate::outln!("{report}");
    } else {
        crate::outln!(
            "baseline CNN on the digits, device {}, {} intra-op thread(s), {} epochs",
            device_name(device),
            tch::get_num_threads(),
            settings.epochs
        );
        for r in &runs {
            crate::outln!(
                "seed {}: test accuracy {:.2} %, best dev {:.2} %, {:.3} s per epoch",
                r.seed,
                100.0 * r.test_accuracy,
                100.0 * r.best_dev_accuracy,
                r.seconds_per_epoch
            );
        }
        crate::outln!(
            "test accuracy {:.2} % +- {:.2} (min {:.2} %); median {:.3} s per epoch",
            100.0 * mean,
            100.0 * sd,
            100.0 * accuracies.iter().copied().fold(1.0, f64::min),
            per_epoch
        );
    }
    Ok(())
}
