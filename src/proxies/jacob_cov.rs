//! `jacob_cov` (Mellor et al. 2020, the first version of "Neural Architecture Search without
//! Training"): the Jacobian of the summed outputs with respect to each input of the batch, the
//! correlation matrix of those per-sample Jacobians, and the score
//! `-sum_i (log(lambda_i + k) + 1 / (lambda_i + k))` over its eigenvalues, `k = 1e-5`: high when
//! the samples' Jacobians are uncorrelated.

use tch::nn::{self, ModuleT};
use tch::Kind;

use super::{fresh, Batch};

/// Added to every eigenvalue (Mellor et al.'s `k`).
const K: f64 = 1e-5;

/// The score of the eigenvalues of a correlation matrix.
pub fn eigen_score(eigenvalues: &[f64]) -> f64 {
    -eigenvalues
        .iter()
        .map(|&v| (v + K).ln() + 1.0 / (v + K))
        .sum::<f64>()
}

/// The score of the network `build` makes with `seed`, on `batch`, in train mode.
pub fn jacob_cov<M: ModuleT>(build: &dyn Fn(&nn::Path) -> M, seed: u64, batch: &Batch) -> f64 {
    let (_vs, model) = fresh(build, seed, batch.device());
    let x = batch.x.detach().copy().set_requires_grad(true);
    let out = model.forward_t(&x, true);
    out.sum(Kind::Float).backward();
    let grad = x.grad();
    if !grad.defined() {
        return f64::NAN; // the output does not depend on the input: no Jacobian to correlate
    }
    let jacobians = grad.flatten(1, -1).to_kind(Kind::Double);
    let centred = &jacobians - jacobians.mean_dim(1, true, Kind::Double);
    let norms = centred.norm_scalaropt_dim(2.0, [1i64].as_slice(), true);
    let unit = centred / norms;
    let correlation = unit.matmul(&unit.tr());
    if correlation.isnan().any().int64_value(&[]) != 0 {
        return f64::NAN; // a sample whose Jacobian is constant has no correlation
    }
    let eigenvalues = Vec::<f64>::try_from(correlation.linalg_eigvalsh("L")).unwrap_or_default();
    eigen_score(&eigenvalues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncorrelated_jacobians_score_higher() {
        // The identity (independent samples) against two perfectly correlated samples.
        let identity = eigen_score(&[1.0, 1.0]);
        let correlated = eigen_score(&[2.0, 0.0]);
        assert!((identity - -2.0 * ((1.0 + K).ln() + 1.0 / (1.0 + K))).abs() < 1e-12);
        assert!(identity > correlated);
    }
}
