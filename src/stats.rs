//! The statistics a search's outputs quote: moving averages, mean and sd, the rollout reaching
//! a level, distinct architectures (the best architecture is chosen in `selection.rs`).

/// Trailing moving average: point `i` is the mean of the last `window` values up to `i`.
pub fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let mut out = Vec::with_capacity(values.len());
    let mut sum = 0.0;
    for (i, v) in values.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= values[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The 1-based rollout at which the trailing moving average (over a full window) first reaches
/// `level`.
pub fn first_reaching(values: &[f64], window: usize, level: f64) -> Option<usize> {
    moving_average(values, window)
        .iter()
        .enumerate()
        .skip(window.saturating_sub(1))
        .find(|(_, &m)| m >= level)
        .map(|(i, _)| i + 1)
}

/// Number of different architectures among `architectures`.
pub fn distinct<'a>(architectures: impl IntoIterator<Item = &'a str>) -> usize {
    architectures
        .into_iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_average_by_hand() {
        let ma = moving_average(&[1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!(ma, vec![1.0, 1.5, 2.5, 3.5]);
        assert_eq!(first_reaching(&[0.0, 1.0, 1.0, 1.0], 2, 1.0), Some(3));
        assert_eq!(first_reaching(&[1.0, 0.0, 0.0], 2, 0.9), None);
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, s) = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn distinct_architectures_are_counted_once() {
        assert_eq!(distinct(["[A]", "[B]", "[C]", "[C]"]), 3);
        assert_eq!(distinct([]), 0);
    }
}
