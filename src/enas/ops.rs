//! The operations of Kubeflow Katib's ENAS trial (its `op_library`): ReLU, then a convolution,
//! a separable convolution (depthwise then pointwise) or a depthwise convolution with `same`
//! padding as TensorFlow computes it (asymmetric at stride 2), then batch norm; or max/average
//! pooling with `valid` padding and a stride equal to the pool size unless one is given. A
//! layer's inputs are zero-padded to the largest and concatenated on the channel axis, as
//! Katib's trial does. Weights are passed in, so the standalone network and the shared supernet
//! run the very same arithmetic.

use tch::Tensor;

use crate::proxies::relu_codes::relu; // records NASWOT's codes while a proxy scores

use super::config::{
    BN_EPS, BN_MOMENTUM, CHANNELS_MAX, DEPTH_MULTIPLIER_MAX, FILTER_SIZE_MAX, STRIDE_MAX,
};
use super::space::Operation;

/// An operation with its parameters read (Katib's trial defaults where one is absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Conv {
        k: i64,
        filters: i64,
        stride: i64,
    },
    Separable {
        k: i64,
        filters: i64,
        stride: i64,
        multiplier: i64,
    },
    Depthwise {
        k: i64,
        stride: i64,
        multiplier: i64,
    },
    Pool {
        max: bool,
        size: i64,
        stride: i64,
    },
}

impl OpKind {
    /// Reads an operation as Katib's trial does (`int(value)`, defaults 3x3, 64 filters,
    /// stride 1, multiplier 1, max pooling of 2); the message names the bad parameter.
    pub fn from_operation(op: &Operation) -> Result<OpKind, String> {
        let int = |name: &str, default: i64, max: i64| -> Result<i64, String> {
            match op.param(name) {
                None => Ok(default),
                Some(v) => match v.as_int() {
                    Some(i) if (1..=max).contains(&i) => Ok(i),
                    _ => Err(format!(
                        "parameter `{name}` must be a whole number from 1 to {max}, found `{}`",
                        v.as_str()
                    )),
                },
            }
        };
        let odd = |k: i64| -> Result<i64, String> {
            if k % 2 == 1 {
                Ok(k)
            } else {
                Err(format!(
                    "parameter `filter_size` must be odd (a centred kernel), found {k}"
                ))
            }
        };
        Ok(match op.op_type.as_str() {
            "convolution" => OpKind::Conv {
                k: odd(int("filter_size", 3, FILTER_SIZE_MAX)?)?,
                filters: int("num_filter", 64, CHANNELS_MAX)?,
                stride: int("stride", 1, STRIDE_MAX)?,
            },
            "separable_convolution" => OpKind::Separable {
                k: odd(int("filter_size", 3, FILTER_SIZE_MAX)?)?,
                filters: int("num_filter", 64, CHANNELS_MAX)?,
                stride: int("stride", 1, STRIDE_MAX)?,
                multiplier: int("depth_multiplier", 1, DEPTH_MULTIPLIER_MAX)?,
            },
            "depthwise_convolution" => OpKind::Depthwise {
                k: odd(int("filter_size", 3, FILTER_SIZE_MAX)?)?,
                stride: int("stride", 1, STRIDE_MAX)?,
                multiplier: int("depth_multiplier", 1, DEPTH_MULTIPLIER_MAX)?,
            },
            "reduction" => {
                let max = match op.param("reduction_type").map(|v| v.as_str()) {
                    None => true,
                    Some(t) if t == "max_pooling" => true,
                    Some(t) if t == "avg_pooling" => false,
                    Some(t) => {
                        return Err(format!(
                            "parameter `reduction_type` must be max_pooling or avg_pooling, found `{t}`"
                        ))
                    }
                };
                let size = int("pool_size", 2, FILTER_SIZE_MAX)?;
                OpKind::Pool {
                    max,
                    size,
                    stride: int("stride", size, STRIDE_MAX)?,
                }
            }
            other => return Err(format!("unknown operation type `{other}`")),
        })
    }

    /// Output channels for `cin` input channels.
    pub fn out_channels(self, cin: i64) -> i64 {
        match self {
            OpKind::Conv { filters, .. } | OpKind::Separable { filters, .. } => filters,
            OpKind::Depthwise { multiplier, .. } => cin * multiplier,
            OpKind::Pool { .. } => cin,
        }
    }

    /// The shapes of this operation's weights for `cin` input channels: (main kernel, pointwise
    /// kernel, batch-norm channels).
    pub fn weight_shapes(self, cin: i64) -> (Option<Vec<i64>>, Option<Vec<i64>>, Option<i64>) {
        match self {
            OpKind::Conv { k, filters, .. } => {
                (Some(vec![filters, cin, k, k]), None, Some(filters))
            }
            OpKind::Separable {
                k,
                filters,
                multiplier,
                ..
            } => (
                Some(vec![cin * multiplier, 1, k, k]),
                Some(vec![filters, cin * multiplier, 1, 1]),
                Some(filters),
            ),
            OpKind::Depthwise { k, multiplier, .. } => (
                Some(vec![cin * multiplier, 1, k, k]),
                None,
                Some(cin * multiplier),
            ),
            OpKind::Pool { .. } => (None, None, None),
        }
    }
}

/// The weights of one layer's operation (absent parts are `None`).
#[derive(Debug)]
pub struct LayerWeights {
    pub kernel: Option<Tensor>,
    pub pointwise: Option<Tensor>,
    pub bn_weight: Option<Tensor>,
    pub bn_bias: Option<Tensor>,
}

/// TensorFlow's `same` padding of one axis: (before, after).
pub fn same_padding(size: i64, k: i64, stride: i64) -> (i64, i64) {
    let out = (size + stride - 1) / stride;
    let total = ((out - 1) * stride + k - size).max(0);
    (total / 2, total - total / 2)
}

fn conv_same(x: &Tensor, w: &Tensor, stride: i64, groups: i64) -> Tensor {
    let size = x.size();
    let k = w.size()[2];
    let (t, b) = same_padding(size[2], k, stride);
    let (l, r) = same_padding(size[3], k, stride);
    if t == b && l == r {
        x.conv2d(w, None::<Tensor>, [stride, stride], [t, l], [1, 1], groups)
    } else {
        x.constant_pad_nd([l, r, t, b]).conv2d(
            w,
            None::<Tensor>,
            [stride, stride],
            [0, 0],
            [1, 1],
            groups,
        )
    }
}

/// Zero-pads every input to the largest height and width (half before, the rest after, as
/// Katib's trial does) and concatenates them on the channel axis, in the given order.
pub fn concat_padded(inputs: &[&Tensor]) -> Tensor {
    if inputs.len() == 1 {
        return inputs[0].shallow_clone();
    }
    let h = inputs.iter().map(|x| x.size()[2]).max().unwrap_or(0);
    let w = inputs.iter().map(|x| x.size()[3]).max().unwrap_or(0);
    let padded: Vec<Tensor> = inputs
        .iter()
        .map(|x| {
            let s = x.size();
            let (dh, dw) = (h - s[2], w - s[3]);
            if dh == 0 && dw == 0 {
                x.shallow_clone()
            } else {
                x.constant_pad_nd([dw / 2, dw - dw / 2, dh / 2, dh - dh / 2])
            }
        })
        .collect();
    Tensor::cat(&padded, 1)
}

/// Batch norm over channels; with `running`, eval mode uses (and train mode updates) the
/// running statistics, without it the batch's statistics are used always (the supernet).
fn batch_norm(
    x: &Tensor,
    w: &LayerWeights,
    running: Option<(&Tensor, &Tensor)>,
    train: bool,
) -> Tensor {
    let (mean, var) = match running {
        Some((m, v)) => (Some(m), Some(v)),
        None => (None, None),
    };
    x.batch_norm(
        w.bn_weight.as_ref(),
        w.bn_bias.as_ref(),
        mean,
        var,
        train || running.is_none(),
        BN_MOMENTUM,
        BN_EPS,
        false,
    )
}

/// Runs `op` on `x` stored channels-last when `channels_last` (the same values, another order
/// in memory) and returns its result in the usual order. oneDNN's CPU kernels for pooling and
/// for depthwise convolutions wider than 3x3 are 2 to 5 times faster, backward included, on
/// channels-last maps of the digits' size than on the default layout (BENCHMARKS.md,
/// 2026-11-24); every other operation is as fast or faster in the default layout.
fn in_fast_layout(x: &Tensor, channels_last: bool, op: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    if !channels_last || x.dim() != 4 {
        return op(x);
    }
    op(&crate::nn::tensors::channels_last(x)).contiguous()
}

/// Whether a depthwise kernel runs faster channels-last (wider than 3x3; see `in_fast_layout`).
fn depthwise_prefers_channels_last(kernel: &Tensor) -> bool {
    let s = kernel.size();
    s.len() == 4 && (s[2] > 3 || s[3] > 3)
}

/// One operation on its (already concatenated) input.
pub fn apply(
    kind: OpKind,
    x: &Tensor,
    w: &LayerWeights,
    running: Option<(&Tensor, &Tensor)>,
    train: bool,
) -> Tensor {
    let kernel = |w: &LayerWeights| w.kernel.as_ref().map(Tensor::shallow_clone);
    match kind {
        OpKind::Conv { stride, .. } => {
            let y = conv_same(&relu(x), &kernel(w).expect("conv kernel"), stride, 1);
            batch_norm(&y, w, running, train)
        }
        OpKind::Separable { stride, .. } => {
            let cin = x.size()[1];
            let k = kernel(w).expect("depthwise kernel");
            let y = in_fast_layout(&relu(x), depthwise_prefers_channels_last(&k), |x| {
                conv_same(x, &k, stride, cin)
            });
            let pw = w.pointwise.as_ref().expect("pointwise kernel");
            let y = y.conv2d(pw, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
            batch_norm(&y, w, running, train)
        }
        OpKind::Depthwise { stride, .. } => {
            let cin = x.size()[1];
            let k = kernel(w).expect("depthwise kernel");
            let y = in_fast_layout(&relu(x), depthwise_prefers_channels_last(&k), |x| {
                conv_same(x, &k, stride, cin)
            });
            batch_norm(&y, w, running, train)
        }
        OpKind::Pool { max, size, stride } => {
            let s = x.size();
            // Katib's trial passes a 1-pixel map through; one smaller than the pool (where
            // Keras would fail) is passed through too.
            if s[2] < size.max(2) || s[3] < size.max(2) {
                return x.shallow_clone();
            }
            in_fast_layout(x, true, |x| {
                if max {
                    x.max_pool2d([size, size], [stride, stride], [0, 0], [1, 1], false)
                } else {
                    x.avg_pool2d(
                        [size, size],
                        [stride, stride],
                        [0, 0],
                        false,
                        true,
                        None::<i64>,
                    )
                }
            })
        }
    }
}

/// Global average pooling then the linear layer.
pub fn head(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    x.mean_dim([2i64, 3].as_slice(), false, x.kind()) // in the input's precision (a proxy scores in double)
        .linear(weight, Some(bias))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn same_padding_is_tensorflows() {
        // out = ceil(n / s); total = (out - 1) s + k - n, the extra pixel after.
        assert_eq!(same_padding(8, 3, 1), (1, 1));
        assert_eq!(same_padding(8, 3, 2), (0, 1));
        assert_eq!(same_padding(7, 3, 2), (1, 1));
        assert_eq!(same_padding(32, 7, 2), (2, 3));
        assert_eq!(same_padding(1, 5, 2), (2, 2));
    }

    #[test]
    fn smaller_maps_are_padded_half_before_and_concatenated() {
        let a = Tensor::ones([1, 1, 4, 4], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([1, 2, 1, 1], (Kind::Float, Device::Cpu)) * 2.0;
        let c = concat_padded(&[&a, &b]);
        assert_eq!(c.size(), [1, 3, 4, 4]);
        // diff 3: one row/column before, two after.
        let ch = Vec::<f32>::try_from(c.get(0).get(1).flatten(0, 1)).unwrap();
        let mut expected = vec![0f32; 16];
        expected[5] = 2.0;
        assert_eq!(ch, expected);
    }

    #[test]
    fn the_channels_last_layout_changes_no_value_or_gradient() {
        // Oracle: the same operation in the default layout, forward and backward. Inputs are
        // fixed numbers (not the global generator, which tests running beside share).
        let fixed = |shape: &[i64], step: f64| {
            let n: i64 = shape.iter().product();
            (Tensor::arange(n, (Kind::Float, Device::Cpu)) * step)
                .sin()
                .view(shape)
        };
        let x0 = fixed(&[4, 6, 8, 8], 0.37);
        let k5 = fixed(&[6, 1, 5, 5], 1.3);
        let run = |channels_last: bool, op: &dyn Fn(&Tensor) -> Tensor| {
            let x = x0.copy().set_requires_grad(true);
            let y = in_fast_layout(&x, channels_last, op);
            assert!(
                y.is_contiguous(),
                "the result comes back in the default layout"
            );
            let g = fixed(&y.size(), 0.71);
            let dx = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&x], false, false);
            (y.detach(), dx[0].shallow_clone())
        };
        let depthwise = |x: &Tensor| conv_same(x, &k5, 1, 6);
        let max = |x: &Tensor| x.max_pool2d([3, 3], [1, 1], [0, 0], [1, 1], false);
        let avg = |x: &Tensor| x.avg_pool2d([3, 3], [1, 1], [0, 0], false, true, None::<i64>);
        for op in [&depthwise as &dyn Fn(&Tensor) -> Tensor, &max, &avg] {
            let (y0, dx0) = run(false, op);
            let (y1, dx1) = run(true, op);
            let gap = |a: &Tensor, b: &Tensor| {
                f64::try_from((a - b).abs().max() / (a.abs().max() + 1e-12)).unwrap()
            };
            // Only the order of summation may differ.
            assert!(gap(&y0, &y1) < 1e-6, "values: {}", gap(&y0, &y1));
            assert!(gap(&dx0, &dx1) < 1e-6, "gradients: {}", gap(&dx0, &dx1));
            assert!(f64::try_from(dx0.abs().sum(Kind::Float)).unwrap() > 1.0);
        }
        assert!(depthwise_prefers_channels_last(&k5));
        assert!(!depthwise_prefers_channels_last(&fixed(&[6, 1, 3, 3], 1.0)));
    }

    #[test]
    fn output_sizes_follow_katibs_ops() {
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let none = LayerWeights {
            kernel: None,
            pointwise: None,
            bn_weight: None,
            bn_bias: None,
        };
        let pool = |size, stride| {
            apply(
                OpKind::Pool {
                    max: true,
                    size,
                    stride,
                },
                &x,
                &none,
                None,
                true,
            )
        };
        assert_eq!(pool(2, 2).size(), [2, 3, 4, 4]);
        assert_eq!(pool(3, 3).size(), [2, 3, 2, 2]);
        assert_eq!(pool(3, 1).size(), [2, 3, 6, 6]);
        let tiny = Tensor::randn([2, 3, 2, 2], (Kind::Float, Device::Cpu));
        let same = apply(
            OpKind::Pool {
                max: false,
                size: 3,
                stride: 3,
            },
            &tiny,
            &none,
            None,
            true,
        );
        assert_eq!(same.size(), [2, 3, 2, 2]);
        let conv = OpKind::Conv {
            k: 3,
            filters: 5,
            stride: 2,
        };
        let w = LayerWeights {
            kernel: Some(Tensor::randn([5, 3, 3, 3], (Kind::Float, Device::Cpu))),
            pointwise: None,
            bn_weight: Some(Tensor::ones([5], (Kind::Float, Device::Cpu))),
            bn_bias: Some(Tensor::zeros([5], (Kind::Float, Device::Cpu))),
        };
        assert_eq!(apply(conv, &x, &w, None, true).size(), [2, 5, 4, 4]);
        let dw = OpKind::Depthwise {
            k: 5,
            stride: 1,
            multiplier: 2,
        };
        let w = LayerWeights {
            kernel: Some(Tensor::randn([6, 1, 5, 5], (Kind::Float, Device::Cpu))),
            pointwise: None,
            bn_weight: Some(Tensor::ones([6], (Kind::Float, Device::Cpu))),
            bn_bias: Some(Tensor::zeros([6], (Kind::Float, Device::Cpu))),
        };
        assert_eq!(apply(dw, &x, &w, None, true).size(), [2, 6, 8, 8]);
        assert_eq!(dw.out_channels(3), 6);
    }
}
