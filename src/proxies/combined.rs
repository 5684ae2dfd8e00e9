//! `combined`: NASWOT and synflow, each min-max normalised over the candidates scored
//! together, weighted 0.6 and 0.4. A candidate whose naswot or synflow is NaN or infinite gets
//! NaN (ranked last), and is left out of the other candidates' minimum and maximum.

/// Weight of the normalised naswot; synflow's is one minus it.
pub const NASWOT_WEIGHT: f64 = 0.6;

/// Min-max normalised values (finite ones in [0, 1]; all equal gives 0); non-finite stay NaN.
pub fn normalise(values: &[f64]) -> Vec<f64> {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                f64::NAN
            } else if hi > lo {
                (v - lo) / (hi - lo)
            } else {
                0.0
            }
        })
        .collect()
}

/// The combined score of each candidate from its naswot and synflow.
pub fn combined(naswot: &[f64], synflow: &[f64]) -> Vec<f64> {
    normalise(naswot)
        .into_iter()
        .zip(normalise(synflow))
        .map(|(n, s)| NASWOT_WEIGHT * n + (1.0 - NASWOT_WEIGHT) * s)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_candidates_by_hand() {
        // naswot 10, 20, 15 -> 0, 1, 0.5; synflow 100, 300, 500 -> 0, 0.5, 1.
        let c = combined(&[10.0, 20.0, 15.0], &[100.0, 300.0, 500.0]);
        let want = [0.0, 0.6 + 0.4 * 0.5, 0.6 * 0.5 + 0.4];
        for (got, want) in c.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // an infinite synflow leaves its candidate NaN and the others' scale alone.
        let c = combined(&[10.0, 20.0, 15.0], &[100.0, f64::INFINITY, 500.0]);
        assert!(c[1].is_nan());
        assert!((c[2] - (0.3 + 0.4)).abs() < 1e-12);
    }
}
