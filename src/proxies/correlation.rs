//! Rank correlations, as proxies are judged (Abdelfattah et al. 2021): Spearman's rho (Pearson's
//! correlation of the ranks, ties given their mean rank) and Kendall's tau-b (concordant minus
//! discordant pairs over the pairs not tied, Kendall 1945). NaN and infinite scores rank below
//! every finite one, as the worst: a proxy that fails on a network is never silently dropped.

/// Ranks from 1 (smallest), ties sharing their mean rank; non-finite values rank lowest.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let key = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| key(values[a]).total_cmp(&key(values[b])));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && key(values[order[j + 1]]) == key(values[order[i]]) {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = mean;
        }
        i = j + 1;
    }
    ranks
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Spearman's rho of `a` and `b` (NaN when either is constant or fewer than two values).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || a.len() != b.len() {
        return f64::NAN;
    }
    pearson(&ranks(a), &ranks(b))
}

/// Kendall's tau-b of `a` and `b`.
pub fn kendall(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || a.len() != b.len() {
        return f64::NAN;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let (mut concordant, mut discordant, mut tied_a, mut tied_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..ra.len() {
        for j in i + 1..ra.len() {
            let (da, db) = (ra[i] - ra[j], rb[i] - rb[j]);
            if da == 0.0 && db == 0.0 {
                continue;
            } else if da == 0.0 {
                tied_a += 1;
            } else if db == 0.0 {
                tied_b += 1;
            } else if (da > 0.0) == (db > 0.0) {
                concordant += 1;
            } else {
                discordant += 1;
            }
        }
    }
    let n1 = (concordant + discordant + tied_a) as f64;
    let n2 = (concordant + discordant + tied_b) as f64;
    (concordant - discordant) as f64 / (n1 * n2).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_mean_rank_and_failures_rank_last() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        assert_eq!(
            ranks(&[0.5, f64::NAN, -1.0, f64::INFINITY]),
            [4.0, 1.5, 3.0, 1.5]
        );
    }

    #[test]
    fn hand_computed_correlations() {
        // x = 1..5, y = 2 1 4 3 5: d = -1 1 -1 1 0, sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 1.0, 4.0, 3.0, 5.0];
        assert!((spearman(&x, &y) - 0.8).abs() < 1e-12);
        // 10 pairs, 2 discordant ((1,2) and (3,4)): tau = (8 - 2) / 10.
        assert!((kendall(&x, &y) - 0.6).abs() < 1e-12);
        let reversed: Vec<f64> = x.iter().rev().copied().collect();
        assert!((spearman(&x, &reversed) + 1.0).abs() < 1e-12);
        assert!((kendall(&x, &reversed) + 1.0).abs() < 1e-12);
        // tau-b with a tie in y: x = 1 2 3, y = 1 1 2: C = 2, D = 0, tied in y 1:
        // tau_b = 2 / sqrt(3 * 2).
        assert!((kendall(&[1.0, 2.0, 3.0], &[1.0, 1.0, 2.0]) - 2.0 / 6f64.sqrt()).abs() < 1e-12);
    }
}
