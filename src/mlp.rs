//! A child network as data: a list of linear layers and activations ending in an output layer,
//! as the half-moon demo builds it (docs/algorithms.md §1), with PyTorch's default initialisation.

use rand::RngExt;
use std::fmt;

use crate::config::LEAKY_RELU_SLOPE;

/// The activations of the half-moon search space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    Sigmoid,
    Tanh,
    ReLU,
    LeakyReLU,
}

pub const ACTIVATIONS: [Activation; 4] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::ReLU,
    Activation::LeakyReLU,
];

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::ReLU => "ReLU",
            Activation::LeakyReLU => "LeakyReLU",
        }
    }

    pub fn from_name(name: &str) -> Option<Activation> {
        ACTIVATIONS.into_iter().find(|a| a.name() == name)
    }

    /// The activation applied to a tensor.
    pub fn apply(self, z: &tch::Tensor) -> tch::Tensor {
        match self {
            Activation::Sigmoid => z.sigmoid(),
            Activation::Tanh => z.tanh(),
            Activation::ReLU => z.relu(),
            Activation::LeakyReLU => z.leaky_relu(),
        }
    }

    /// `df/dz` times `grad`, from the activation's input `z` and output `a`.
    pub fn backward(self, grad: &tch::Tensor, z: &tch::Tensor, a: &tch::Tensor) -> tch::Tensor {
        match self {
            Activation::Sigmoid => tch::Tensor::sigmoid_backward(grad, a),
            Activation::Tanh => tch::Tensor::tanh_backward(grad, a),
            Activation::ReLU => a.threshold_backward(grad, 0.0),
            Activation::LeakyReLU => z.leaky_relu_backward(grad, LEAKY_RELU_SLOPE, false),
        }
    }
}

/// One element of a child: a linear layer of the given output width, or an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Layer {
    Linear(usize),
    Act(Activation),
}

/// A child MLP: `layers` in order, then a final `Linear(prev, n_out)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MlpSpec {
    pub n_in: usize,
    pub n_out: usize,
    pub layers: Vec<Layer>,
}

impl MlpSpec {
    /// `(fan_in, fan_out)` of every linear layer, the output layer last.
    pub fn linear_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::new();
        let mut prev = self.n_in;
        for layer in &self.layers {
            if let Layer::Linear(w) = *layer {
                shapes.push((prev, w));
                prev = w;
            }
        }
        shapes.push((prev, self.n_out));
        shapes
    }

    /// Number of trainable values (weights and biases).
    pub fn n_params(&self) -> usize {
        self.linear_shapes().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Width of the widest layer, inputs and outputs included.
    pub fn max_width(&self) -> usize {
        self.linear_shapes()
            .iter()
            .flat_map(|&(i, o)| [i, o])
            .max()
            .unwrap_or(self.n_in)
    }

    /// PyTorch's default `Linear` initialisation, drawn from `rng`: for each linear layer in
    /// order, the weight as `[fan_in, fan_out]` row-major, then the bias, every value uniform in
    /// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`. One flat vector in that order.
    pub fn init_params(&self, rng: &mut impl rand::Rng) -> Vec<f32> {
        let mut values = Vec::with_capacity(self.n_params());
        for (fan_in, fan_out) in self.linear_shapes() {
            let bound = 1.0 / (fan_in as f64).sqrt();
            for _ in 0..fan_in * fan_out + fan_out {
                values.push(rng.random_range(-bound..bound) as f32);
            }
        }
        values
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Linear(w) => write!(f, "{w}"),
            Layer::Act(a) => f.write_str(a.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn spec(layers: Vec<Layer>) -> MlpSpec {
        MlpSpec {
            n_in: 2,
            n_out: 2,
            layers,
        }
    }

    #[test]
    fn the_reference_example_has_the_expected_shapes() {
        use Activation::*;
        let s = spec(vec![
            Layer::Linear(8),
            Layer::Act(Tanh),
            Layer::Linear(8),
            Layer::Act(ReLU),
            Layer::Linear(4),
            Layer::Act(ReLU),
        ]);
        assert_eq!(s.linear_shapes(), vec![(2, 8), (8, 8), (8, 4), (4, 2)]);
        // 2*8+8 + 8*8+8 + 8*4+4 + 4*2+2
        assert_eq!(s.n_params(), 24 + 72 + 36 + 10);
        assert_eq!(s.max_width(), 8);
    }

    #[test]
    fn no_layers_is_logistic_regression() {
        let s = spec(vec![]);
        assert_eq!(s.linear_shapes(), vec![(2, 2)]);
        assert_eq!(s.n_params(), 6);
    }

    #[test]
    fn init_is_within_pytorch_bounds_and_seeded() {
        let s = spec(vec![Layer::Linear(16), Layer::Act(Activation::ReLU)]);
        let a = s.init_params(&mut rand_pcg::Pcg64::seed_from_u64(1));
        let b = s.init_params(&mut rand_pcg::Pcg64::seed_from_u64(1));
        assert_eq!(a, b);
        assert_eq!(a.len(), s.n_params());
        let first = 2 * 16 + 16; // fan_in 2: bound 1/sqrt(2)
        assert!(a[..first].iter().all(|v| v.abs() <= 1.0 / 2f32.sqrt()));
        assert!(a[first..].iter().all(|v| v.abs() <= 0.25)); // fan_in 16
        assert!(
            a[first..].iter().any(|v| v.abs() > 0.2),
            "uses the whole range"
        );
    }

    #[test]
    fn activation_names_round_trip() {
        for a in ACTIVATIONS {
            assert_eq!(Activation::from_name(a.name()), Some(a));
        }
        assert_eq!(Activation::from_name("Softmax"), None);
    }
}
