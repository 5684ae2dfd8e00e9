//! An MLP child of the half-moon and choice-list spaces (`nn::mlp::MlpSpec`) in the form the
//! proxies read (Abdelfattah et al. 2021 sum over the weight matrices of linear layers; Mellor
//! et al. 2021 read one binary code per hidden unit): one `[fan_in, fan_out]` weight and one
//! bias variable per linear layer, drawn exactly as the child's training draws its flat
//! weights (`MlpSpec::init_params`), and the input of every activation recorded as NASWOT's
//! code. The function is the child's (`nn::mlp_net::MlpNet`) at initialisation (tested).

use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::relu_codes::code;
use crate::nn::mlp::{Layer, MlpSpec};

/// An MLP child with one variable per weight matrix and bias, for scoring.
#[derive(Debug)]
pub struct ProxyMlp {
    spec: MlpSpec,
    /// Per linear layer, the output layer last: weight `[fan_in, fan_out]` and bias.
    linears: Vec<(Tensor, Tensor)>,
}

impl ProxyMlp {
    /// The child of `spec` whose weights the generator seeded with `seed` draws (the same
    /// values `MlpNet::new` takes from `Pcg64::seed_from_u64(seed)`).
    pub fn new(p: &nn::Path, spec: &MlpSpec, seed: u64) -> ProxyMlp {
        let flat = spec.init_params(&mut Pcg64::seed_from_u64(seed));
        let mut offset = 0usize;
        let mut linears = Vec::new();
        for (k, (i, o)) in spec.linear_shapes().into_iter().enumerate() {
            let w = Tensor::from_slice(&flat[offset..offset + i * o]).view([i as i64, o as i64]);
            let b = Tensor::from_slice(&flat[offset + i * o..offset + i * o + o]);
            offset += i * o + o;
            // Zero-padded names keep the layers in order when proxies sort variables by name.
            linears.push((
                p.var_copy(&format!("linear{k:03}_weight"), &w),
                p.var_copy(&format!("linear{k:03}_bias"), &b),
            ));
        }
        ProxyMlp {
            spec: spec.clone(),
            linears,
        }
    }
}

impl ModuleT for ProxyMlp {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        // Images are flattened, as the child sees them; dropout is off at initialisation.
        let mut h = xs.flatten(1, -1);
        let mut k = 0;
        for layer in &self.spec.layers {
            h = match *layer {
                Layer::Linear(_) => {
                    let (w, b) = &self.linears[k];
                    k += 1;
                    b.addmm(&h, w)
                }
                Layer::Act(a) => {
                    code(&h);
                    a.apply(&h)
                }
            };
        }
        let (w, b) = &self.linears[k];
        b.addmm(&h, w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::Activation::*;
    use crate::nn::mlp_net::MlpNet;
    use crate::proxies::{naswot, relu_codes, score, weights, Batch};
    use tch::{Device, Kind};

    fn spec() -> MlpSpec {
        MlpSpec {
            n_in: 2,
            n_out: 2,
            layers: vec![
                Layer::Linear(32),
                Layer::Act(Tanh),
                Layer::Linear(16),
                Layer::Act(ReLU),
                Layer::Linear(8),
                Layer::Act(Sigmoid),
            ],
        }
    }

    /// Eight samples: few enough that no two share all 56 hidden units' codes (K is regular).
    fn batch() -> Batch {
        tch::manual_seed(7);
        Batch {
            x: Tensor::randn([8, 2], (Kind::Float, Device::Cpu)),
            y: Tensor::randint(2, [8], (Kind::Int64, Device::Cpu)),
        }
    }

    /// The child's own module from the same seed: the oracle for the function and gradients.
    fn child(seed: u64) -> (nn::VarStore, MlpNet) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = MlpNet::new(&vs.root(), &spec(), 0.0, &mut Pcg64::seed_from_u64(seed));
        (vs, net)
    }

    #[test]
    fn it_computes_the_childs_function_from_the_same_seed() {
        let b = batch();
        let vs = nn::VarStore::new(Device::Cpu);
        let probe = ProxyMlp::new(&vs.root(), &spec(), 11);
        let (_cvs, net) = child(11);
        let diff = (probe.forward_t(&b.x, false) - net.forward_t(&b.x, false))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-6, "max difference {diff}");
        // Every linear layer's weight is a matrix the proxies sum over; biases are not.
        assert_eq!(weights(&vs).len(), 4);
    }

    #[test]
    fn snip_equals_the_childs_flat_gradient_over_its_weight_entries() {
        let b = batch();
        let seed = 3;
        let scores = score(&|p: &nn::Path| ProxyMlp::new(p, &spec(), seed), 0, &b);
        // Independent: the child's one flat variable, its gradient masked to the weights.
        let (cvs, net) = child(seed);
        let loss = net.forward_t(&b.x, true).cross_entropy_for_logits(&b.y);
        loss.backward();
        let flat = &cvs.trainable_variables()[0];
        let prod = Vec::<f32>::try_from((flat * flat.grad()).abs()).unwrap();
        let mut expected = 0.0f64;
        let mut offset = 0;
        for (i, o) in spec().linear_shapes() {
            expected += prod[offset..offset + i * o]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>();
            offset += i * o + o;
        }
        assert!(
            (scores.snip - expected).abs() <= 1e-5 * expected,
            "snip {} vs {expected}",
            scores.snip
        );
        for v in [scores.synflow, scores.grad_norm, scores.naswot] {
            assert!(v.is_finite() && v != 0.0, "{scores:?}");
        }
    }

    #[test]
    fn naswot_reads_one_code_per_hidden_unit() {
        let b = batch();
        let vs = nn::VarStore::new(Device::Cpu);
        let probe = ProxyMlp::new(&vs.root(), &spec(), 5);
        let (_, codes) = relu_codes::record(|| probe.forward_t(&b.x, false));
        let widths: Vec<i64> = codes.iter().map(|c| c.size()[1]).collect();
        assert_eq!(widths, [32, 16, 8]);
        // The score is the log-determinant of K built from exactly these codes.
        let direct = naswot::log_abs_det(&naswot::kernel(&Tensor::cat(&codes, 1)));
        let scored = naswot::naswot(&|p: &nn::Path| ProxyMlp::new(p, &spec(), 5), 0, &b);
        assert!(direct.is_finite(), "{direct}");
        assert!((direct - scored).abs() < 1e-9, "{direct} vs {scored}");
    }
}
