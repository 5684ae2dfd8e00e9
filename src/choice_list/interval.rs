//! The Interval parameter `{lower, upper, int, log}` of hannah's parametrization (docs/algorithms.md
//! §2): a scalar in `[lower, upper)`, its sampling, its Gaussian mutation, and its
//! discretisation into bins for a controller that only makes categorical decisions.
//!
//! All three work in the "uniform space": the logarithm for a log interval, the value itself
//! otherwise. An int interval covers the unit cells `[k, k+1)` of its integers
//! `ceil(lower) ..= ceil(upper) - 1`, and a point maps to the integer whose cell holds it.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde_json::Value;

/// Integers beyond this lose precision as f64; int bounds must stay inside it.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// `{lower, upper, int, log}`: a scalar in `[lower, upper)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub(super) lower: f64,
    pub(super) upper: f64,
    pub(super) int: bool,
    pub(super) log: bool,
}

impl Interval {
    /// Checks `lower < upper`, `lower > 0` when `log`, and an integer inside when `int`.
    pub fn new(lower: f64, upper: f64, int: bool, log: bool) -> Result<Interval, String> {
        if !lower.is_finite() || !upper.is_finite() {
            return Err(format!(
                "bounds must be finite numbers, found {lower} and {upper}"
            ));
        }
        if lower >= upper {
            return Err(format!("lower ({lower}) must be below upper ({upper})"));
        }
        if log && lower <= 0.0 {
            return Err(format!(
                "a log interval needs lower > 0 (found {lower}); raise lower or drop `log: true`"
            ));
        }
        if int && (lower.abs() > MAX_EXACT || upper.abs() > MAX_EXACT) {
            return Err(format!(
                "int bounds must lie within ±2^53, found {lower} and {upper}"
            ));
        }
        if int && lower.ceil() >= upper {
            return Err(format!(
                "no integer lies in [{lower}, {upper}); widen the interval"
            ));
        }
        Ok(Interval {
            lower,
            upper,
            int,
            log,
        })
    }
    /// Lower bound (inclusive).
    pub fn lower(&self) -> f64 {
        self.lower
    }
    /// Upper bound (exclusive).
    pub fn upper(&self) -> f64 {
        self.upper
    }
    /// Whether values are integers.
    pub fn is_int(&self) -> bool {
        self.int
    }
    /// Whether values are uniform in log space.
    pub fn is_log(&self) -> bool {
        self.log
    }

    /// Smallest and largest value of an int interval.
    pub(super) fn int_bounds(&self) -> (i64, i64) {
        (self.lower.ceil() as i64, self.upper.ceil() as i64 - 1)
    }

    /// The covered range: the integers' cells for an int interval.
    fn span(&self) -> (f64, f64) {
        match self.int {
            true => {
                let (lo, hi) = self.int_bounds();
                (lo as f64, hi as f64 + 1.0)
            }
            false => (self.lower, self.upper),
        }
    }

    fn to_uniform(&self, x: f64) -> f64 {
        if self.log {
            x.ln()
        } else {
            x
        }
    }

    fn out_of_uniform(&self, y: f64) -> f64 {
        if self.log {
            y.exp()
        } else {
            y
        }
    }

    /// The covered range in uniform space.
    fn uniform_span(&self) -> (f64, f64) {
        let (lo, hi) = self.span();
        (self.to_uniform(lo), self.to_uniform(hi))
    }

    /// The value at point `x` of the covered range: its integer, or `x` kept inside
    /// `[lower, upper)` (exp(ln x) can land an ulp outside).
    fn value_at(&self, x: f64) -> Value {
        if self.int {
            let (lo, hi) = self.int_bounds();
            return Value::from((x.floor() as i64).clamp(lo, hi));
        }
        Value::from(x.clamp(self.lower, largest_below(self.upper)))
    }

    /// The smallest and the largest value the interval gives (every value lies between).
    pub(super) fn ends(&self) -> (Value, Value) {
        if self.int {
            let (lo, hi) = self.int_bounds();
            return (Value::from(lo), Value::from(hi));
        }
        (
            Value::from(self.lower),
            Value::from(largest_below(self.upper)),
        )
    }

    /// Why `v` is not a value of this interval, if it is not.
    pub(super) fn contains(&self, v: &Value) -> Result<(), String> {
        if self.int {
            let (lo, hi) = self.int_bounds();
            return match v.as_i64() {
                Some(k) if (lo..=hi).contains(&k) => Ok(()),
                _ => Err(format!("expected an integer in {lo}..={hi}, found {v}")),
            };
        }
        match v.as_f64() {
            Some(x) if self.lower <= x && x < self.upper => Ok(()),
            _ => Err(format!(
                "expected a number in [{}, {}), found {v}",
                self.lower, self.upper
            )),
        }
    }

    /// A uniform draw (uniform in log space when `log`).
    pub(super) fn sample(&self, rng: &mut (impl Rng + ?Sized)) -> Value {
        let (a, b) = self.uniform_span();
        self.value_at(self.out_of_uniform(rng.random_range(a..b)))
    }

    /// Hannah's mutation: a Gaussian step with sd a sixth of the range, clipped into it. For a
    /// log interval the step is taken on the logarithm and exponentiated back; the reference
    /// forgets the exponentiation and returns a logarithm (a known bug, fixed here).
    pub(super) fn step(&self, v: &Value, rng: &mut (impl Rng + ?Sized)) -> Value {
        let x = match self.int {
            true => v.as_i64().unwrap_or(self.int_bounds().0) as f64 + 0.5, // its cell's centre
            false => v.as_f64().unwrap_or(self.lower),
        };
        let (a, b) = self.uniform_span();
        let z: f64 = rng.sample(StandardNormal);
        let y = (self.to_uniform(x) + z * (b - a) / 6.0).clamp(a, b);
        self.value_at(self.out_of_uniform(y))
    }

    /// Centre of bin `i` of `bins` equal bins of the uniform space.
    fn centre(&self, i: usize, bins: usize) -> f64 {
        let (a, b) = self.uniform_span();
        self.out_of_uniform(a + (b - a) * (i as f64 + 0.5) / bins as f64)
    }

    /// The integers the bins decode to: the one under each bin centre, repeats removed, so
    /// that each option is a different integer (small intervals get one option per integer).
    fn int_levels(&self, bins: usize) -> Vec<i64> {
        let mut levels: Vec<i64> = (0..bins)
            .filter_map(|i| self.value_at(self.centre(i, bins)).as_i64())
            .collect();
        levels.dedup();
        levels
    }

    /// Options of this interval's decision when discretised into `bins` bins.
    pub(super) fn options(&self, bins: usize) -> usize {
        match self.int {
            true => self.int_levels(bins).len(),
            false => bins,
        }
    }

    /// The value option `i` decodes to: its bin's centre (the integer under it when `int`).
    pub(super) fn level(&self, i: usize, bins: usize) -> Value {
        match self.int {
            true => Value::from(self.int_levels(bins)[i]),
            false => self.value_at(self.centre(i, bins)),
        }
    }

    /// The option whose bin holds `v` (for an int: the largest level not above `v`).
    pub(super) fn bin_of(&self, v: &Value, bins: usize) -> usize {
        if self.int {
            let k = v.as_i64().unwrap_or(i64::MIN);
            return self
                .int_levels(bins)
                .partition_point(|&l| l <= k)
                .saturating_sub(1);
        }
        let (a, b) = self.uniform_span();
        let x = self.to_uniform(v.as_f64().unwrap_or(self.lower));
        let t = ((x - a) / (b - a) * bins as f64).floor();
        (t.max(0.0) as usize).min(bins - 1)
    }
}

/// The largest f64 below `x`, so that an exclusive upper bound can be clipped to.
fn largest_below(x: f64) -> f64 {
    match x {
        x if x > 0.0 => f64::from_bits(x.to_bits() - 1),
        x if x < 0.0 => f64::from_bits(x.to_bits() + 1),
        _ => -f64::from_bits(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    fn draws(iv: &Interval, n: usize) -> Vec<f64> {
        let mut rng = Pcg64::seed_from_u64(7);
        (0..n)
            .map(|_| iv.sample(&mut rng).as_f64().unwrap())
            .collect()
    }

    #[test]
    fn log_interval_is_uniform_in_log_space() {
        let iv = Interval::new(1e-4, 1e-1, false, true).unwrap();
        let xs = draws(&iv, 20_000);
        let below = |t: f64| xs.iter().filter(|&&x| x < t).count() as f64 / xs.len() as f64;
        // Log-uniform: half below the geometric mean; ln(0.05005/1e-4)/ln(1000) = 0.8998 below
        // the arithmetic midpoint (a linear draw would give 0.5 there). sd of a fraction: 0.0035.
        assert!((below((1e-4f64 * 1e-1).sqrt()) - 0.5).abs() < 0.02);
        assert!((below(0.05005) - 0.8998).abs() < 0.02);
        assert!((below(1e-3) - 1.0 / 3.0).abs() < 0.02); // one decade of three
        assert!(xs.iter().all(|&x| (1e-4..1e-1).contains(&x)));
    }

    #[test]
    fn int_interval_gives_each_integer_of_the_half_open_range() {
        let iv = Interval::new(-1.5, 3.0, true, false).unwrap(); // integers -1, 0, 1, 2
        let xs = draws(&iv, 8000);
        for k in -1..=2 {
            let f = xs.iter().filter(|&&x| x == k as f64).count() as f64 / 8000.0;
            assert!((f - 0.25).abs() < 0.03, "{k}: {f}");
        }
        assert_eq!(
            xs.iter().filter(|&&x| !(-1.0..=2.0).contains(&x)).count(),
            0
        );
        assert!(Interval::new(0.2, 0.9, true, false).is_err()); // no integer inside
    }

    #[test]
    fn gaussian_step_has_a_sixth_of_the_range_as_sd() {
        let iv = Interval::new(0.0, 6.0, false, false).unwrap(); // sd = 1
        let mut rng = Pcg64::seed_from_u64(3);
        let steps: Vec<f64> = (0..5000)
            .map(|_| iv.step(&Value::from(3.0), &mut rng).as_f64().unwrap() - 3.0)
            .collect();
        let mean_abs = steps.iter().map(|s| s.abs()).sum::<f64>() / 5000.0;
        let expected = (2.0 / std::f64::consts::PI).sqrt(); // E|N(0,1)|
        assert!((mean_abs - expected).abs() < 0.03, "{mean_abs}");
        // Log interval: the step is symmetric in log space with sd ln(1000)/6 = 1.15, so half
        // land below 1e-2 and P(z > -2) = 0.977 stay above 1e-3 (two sds down). Without the
        // exponentiation every value would be a negative log, clipped to 1e-4.
        let lg = Interval::new(1e-4, 1e-1, false, true).unwrap();
        let xs: Vec<f64> = (0..4000)
            .map(|_| lg.step(&Value::from(1e-2), &mut rng).as_f64().unwrap())
            .collect();
        assert!(xs.iter().all(|x| (1e-4..1e-1).contains(x)));
        let share = |f: &dyn Fn(f64) -> bool| xs.iter().filter(|&&x| f(x)).count() as f64 / 4000.0;
        assert!((share(&|x| x < 1e-2) - 0.5).abs() < 0.03);
        assert!((share(&|x| x >= 1e-3) - 0.977).abs() < 0.015);
        let x = lg.step(&Value::from(1e-4), &mut rng).as_f64().unwrap();
        assert!((1e-4..1e-1).contains(&x));
    }

    #[test]
    fn bins_decode_to_centres_and_back() {
        let lg = Interval::new(1e-4, 1e-1, false, true).unwrap();
        let centres: Vec<f64> = (0..3).map(|i| lg.level(i, 3).as_f64().unwrap()).collect();
        for (c, want) in centres
            .iter()
            .zip([10f64.powf(-3.5), 10f64.powf(-2.5), 10f64.powf(-1.5)])
        {
            assert!((c / want - 1.0).abs() < 1e-12, "{c} vs {want}");
        }
        for i in 0..3 {
            assert_eq!(lg.bin_of(&lg.level(i, 3), 3), i);
        }
        // Int: 4 integers and 10 bins give 4 options; 100 integers and 4 bins give 4.
        let small = Interval::new(0.0, 4.0, true, false).unwrap();
        assert_eq!(small.int_levels(10), vec![0, 1, 2, 3]);
        let big = Interval::new(0.0, 100.0, true, false).unwrap();
        assert_eq!(big.int_levels(4), vec![12, 37, 62, 87]);
        assert_eq!(big.bin_of(&Value::from(36), 4), 0);
        // Log int: low bins are narrower than one integer; repeats are merged.
        let lgi = Interval::new(1.0, 10.0, true, true).unwrap();
        let levels = lgi.int_levels(8);
        assert!(
            levels.windows(2).all(|w| w[0] < w[1]) && levels[0] == 1,
            "{levels:?}"
        );
    }
}
