//! The ReLU every proxy-aware network calls instead of `Tensor::relu`, so NASWOT (Mellor et al.
//! 2021, "Neural Architecture Search without Training") can read each sample's binary code: one
//! bit per unit, set when the unit's pre-activation is positive. Recording is off (and costs one
//! thread-local look-up) except inside `record`.

use std::cell::RefCell;

use tch::{Kind, Tensor};

thread_local! {
    static CODES: RefCell<Option<Vec<Tensor>>> = const { RefCell::new(None) };
}

/// `x.relu()`, recording `x > 0` per sample (flattened, as f64) while `record` runs.
pub fn relu(x: &Tensor) -> Tensor {
    code(x);
    x.relu()
}

/// Records `x > 0` per sample while `record` runs: the code of an activation's input, for
/// networks whose activations are not all ReLUs (an MLP child's tanh or sigmoid units count as
/// on where their input is positive).
pub fn code(x: &Tensor) {
    CODES.with(|codes| {
        if let Some(codes) = codes.borrow_mut().as_mut() {
            codes.push(x.detach().gt(0.0).flatten(1, -1).to_kind(Kind::Double));
        }
    });
}

/// Runs `f` and returns its value with the codes of every ReLU it passed through, in order.
pub fn record<T>(f: impl FnOnce() -> T) -> (T, Vec<Tensor>) {
    CODES.with(|codes| *codes.borrow_mut() = Some(Vec::new()));
    let value = f();
    let codes = CODES
        .with(|codes| codes.borrow_mut().take())
        .unwrap_or_default();
    (value, codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_recorded_only_inside_record() {
        let x = Tensor::from_slice(&[1.0f32, -2.0, 0.0, 3.0]).view([2, 2]);
        let _ = relu(&x);
        let (y, codes) = record(|| relu(&x));
        assert_eq!(
            Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(),
            [1.0, 0.0, 0.0, 3.0]
        );
        assert_eq!(codes.len(), 1);
        let bits = Vec::<f64>::try_from(codes[0].flatten(0, -1)).unwrap();
        assert_eq!(bits, [1.0, 0.0, 0.0, 1.0]);
        let (_, none) = record(|| x.relu());
        assert!(none.is_empty());
    }
}
