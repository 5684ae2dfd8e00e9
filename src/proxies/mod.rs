//! Training-free proxies (docs/algorithms.md §8): scores of a network at initialisation, on one
//! batch, that predict how well it would train. `synflow` (Tanaka et al. 2020), `snip` (Lee et
//! al. 2019) and `grad_norm` as Abdelfattah et al. 2021 ("Zero-Cost Proxies for Lightweight
//! NAS") score them, `naswot` (Mellor et al. 2021, the hook_logdet score), `jacob_cov` (Mellor
//! et al.'s first version), and `combined` (min-max normalised naswot and synflow, 0.6 and 0.4).
//!
//! Any tch module can be scored: a table cell (`cells::network`), an ENAS architecture
//! (`enas::network`) and an MLP child through `mlp::ProxyMlp`.
//!
//! Every proxy builds its own copy of the network from `(build, seed)`, with libtorch's
//! generator seeded first: all proxies see the same initial weights, a score never depends on
//! what was scored before, and no network the caller holds is touched.

pub mod combined;
pub mod correlation;
pub mod gradients;
pub mod jacob_cov;
pub mod mlp;
pub mod naswot;
pub mod relu_codes;
pub mod synflow;

use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// A proxy's name, in the order they are reported.
pub const PROXIES: [&str; 6] = [
    "synflow",
    "snip",
    "grad_norm",
    "naswot",
    "jacob_cov",
    "combined",
];

/// The batch a network is scored on: inputs `[B, ...]` (float) and class labels `[B]`.
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
}

impl Batch {
    /// The shape of one input, without the batch dimension.
    pub fn input_shape(&self) -> Vec<i64> {
        self.x.size()[1..].to_vec()
    }

    pub fn device(&self) -> Device {
        self.x.device()
    }
}

/// One network's scores; a proxy that came out NaN or infinite keeps that value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Scores {
    pub synflow: f64,
    pub snip: f64,
    pub grad_norm: f64,
    pub naswot: f64,
    pub jacob_cov: f64,
}

impl Scores {
    /// The score of the proxy named `name` (not `combined`, which needs the other candidates).
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "synflow" => Some(self.synflow),
            "snip" => Some(self.snip),
            "grad_norm" => Some(self.grad_norm),
            "naswot" => Some(self.naswot),
            "jacob_cov" => Some(self.jacob_cov),
            _ => None,
        }
    }
}

/// A fresh network from `build`, its weights drawn after seeding libtorch with `seed`.
pub fn fresh<M: ModuleT>(
    build: &dyn Fn(&nn::Path) -> M,
    seed: u64,
    device: Device,
) -> (nn::VarStore, M) {
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(device);
    let model = build(&vs.root());
    (vs, model)
}

/// The weights that proxies sum over, as Abdelfattah et al. do: those of convolutions and
/// linear layers (every trainable tensor of two or more dimensions), by name, sorted.
pub fn weights(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad() && t.dim() >= 2)
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Every proxy of the network `build` makes with `seed`, on `batch`.
pub fn score<M: ModuleT>(build: &dyn Fn(&nn::Path) -> M, seed: u64, batch: &Batch) -> Scores {
    let (snip, grad_norm) = gradients::snip_and_grad_norm(build, seed, batch);
    Scores {
        synflow: synflow::synflow(build, seed, &batch.input_shape(), batch.device()),
        snip,
        grad_norm,
        naswot: naswot::naswot(build, seed, batch),
        jacob_cov: jacob_cov::jacob_cov(build, seed, batch),
    }
}
