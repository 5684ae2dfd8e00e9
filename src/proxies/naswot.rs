//! NASWOT (Mellor et al. 2021, "Neural Architecture Search without Training"), the hook_logdet
//! score: every ReLU gives each sample a binary code (pre-activation > 0); the kernel
//! `K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T` counts, for each pair of samples, the units
//! on which their codes agree; the score is `log |det K|`. Networks whose units tell the samples
//! of the batch apart score high.

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use super::relu_codes::record;
use super::{fresh, Batch};

/// The kernel of the codes `[B, units]` (values 0 or 1): `C C^T + (1 - C)(1 - C)^T`.
pub fn kernel(codes: &Tensor) -> Tensor {
    let c = codes.to_kind(Kind::Double);
    let flipped = c.ones_like() - &c;
    c.matmul(&c.tr()) + flipped.matmul(&flipped.tr())
}

/// `log |det K|` (minus infinity when `K` is singular).
pub fn log_abs_det(k: &Tensor) -> f64 {
    let (_, logabsdet) = Tensor::linalg_slogdet(k);
    logabsdet.double_value(&[])
}

/// The score of the network `build` makes with `seed`, on `batch`, in train mode.
pub fn naswot<M: ModuleT>(build: &dyn Fn(&nn::Path) -> M, seed: u64, batch: &Batch) -> f64 {
    let (_vs, model) = fresh(build, seed, batch.device());
    let (_, codes) = record(|| {
        let _guard = tch::no_grad_guard();
        model.forward_t(&batch.x, true)
    });
    if codes.is_empty() {
        return f64::NAN; // no ReLU: the score is not defined
    }
    log_abs_det(&kernel(&Tensor::cat(&codes, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_counts_agreements_and_its_log_det_matches_a_direct_one() {
        // Three samples, four units, by hand: agreements between rows.
        let rows = [
            [1.0, 0.0, 1.0, 1.0],
            [1.0, 1.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let codes = Tensor::from_slice(&rows.concat()).view([3, 4]);
        let k = kernel(&codes);
        let agree =
            |a: &[f64; 4], b: &[f64; 4]| a.iter().zip(b).filter(|(x, y)| x == y).count() as f64;
        let mut want = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                want[i][j] = agree(&rows[i], &rows[j]);
                assert_eq!(k.double_value(&[i as i64, j as i64]), want[i][j]);
            }
        }
        // det by the rule of Sarrus: [[4,2,2],[2,4,2],[2,2,4]] has det 32.
        let w = want;
        let det = w[0][0] * (w[1][1] * w[2][2] - w[1][2] * w[2][1])
            - w[0][1] * (w[1][0] * w[2][2] - w[1][2] * w[2][0])
            + w[0][2] * (w[1][0] * w[2][1] - w[1][1] * w[2][0]);
        assert_eq!(det, 32.0);
        assert!((log_abs_det(&k) - det.abs().ln()).abs() < 1e-12);
    }
}
