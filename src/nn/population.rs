//! Training K children of different architectures as one batched tensor program: every child
//! is padded to the widest layer and the deepest action list, with masks that keep padded
//! units at exactly zero and give them no gradient, so each child computes the same function,
//! with the same initial weights and batch order, as when trained alone (`child.rs`).

use rand::SeedableRng;
use rand_pcg::Pcg64;
use tch::{Kind, Tensor};

use crate::config::ChildSettings;
use crate::nn::adam::Adam;
use crate::nn::child::{permutation, EarlyStopping, TensorData, TrainOutcome};
use crate::nn::mlp::{Activation, Layer, MlpSpec, ACTIVATIONS};
use crate::outdir::Stop;

/// What one slot of the padded network does for one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind6 {
    Linear,
    Act(Activation),
    Identity,
}

/// Where each child's layers sit in the padded `[k, p]` parameter matrix, and the masks.
struct Layout {
    k: i64,
    slots: usize,
    h: i64,                 // padded width
    c: i64,                 // classes
    p: i64,                 // parameters per child, padded
    kinds: Vec<Vec<Kind6>>, // [slot][child]
}

impl Layout {
    fn new(specs: &[MlpSpec]) -> Layout {
        let slots = specs.iter().map(|s| s.layers.len()).max().unwrap_or(0);
        let h = specs.iter().map(MlpSpec::max_width).max().unwrap_or(1) as i64;
        let c = specs[0].n_out as i64;
        let p = slots as i64 * (h * h + h) + h * c + c;
        let kinds = (0..slots)
            .map(|s| {
                specs
                    .iter()
                    .map(|spec| match spec.layers.get(s) {
                        Some(Layer::Linear(_)) => Kind6::Linear,
                        Some(Layer::Act(a)) => Kind6::Act(*a),
                        None => Kind6::Identity,
                    })
                    .collect()
            })
            .collect();
        Layout {
            k: specs.len() as i64,
            slots,
            h,
            c,
            p,
            kinds,
        }
    }

    /// The same padded shape for a subset of the children (after others stopped).
    fn subset(&self, keep: &[usize]) -> Layout {
        Layout {
            k: keep.len() as i64,
            kinds: self
                .kinds
                .iter()
                .map(|slot| keep.iter().map(|&j| slot[j]).collect())
                .collect(),
            ..*self
        }
    }

    /// Offset of slot `s`'s weight `[h, h]` (its bias `[h]` follows); `s == slots` is the output
    /// layer, weight `[h, c]` then bias `[c]`.
    fn offset(&self, s: usize) -> i64 {
        s as i64 * (self.h * self.h + self.h)
    }

    /// Padded initial weights and the mask of real weights, both `[k * p]` row-major. Each
    /// child's values come from its own generator, in `MlpSpec::init_params` order.
    fn init(&self, specs: &[MlpSpec], rngs: &mut [Pcg64]) -> (Vec<f32>, Vec<f32>) {
        let (h, p) = (self.h as usize, self.p as usize);
        let mut values = vec![0f32; specs.len() * p];
        let mut mask = vec![0f32; specs.len() * p];
        for (j, (spec, rng)) in specs.iter().zip(rngs.iter_mut()).enumerate() {
            let init = spec.init_params(rng);
            let mut src = 0;
            // Slots holding this child's linear layers, the output layer last.
            let linear_slots = spec
                .layers
                .iter()
                .enumerate()
                .filter(|(_, l)| matches!(l, Layer::Linear(_)))
                .map(|(s, _)| s)
                .chain([self.slots]);
            for (slot, (fan_in, fan_out)) in linear_slots.zip(spec.linear_shapes()) {
                let cols = if slot == self.slots {
                    self.c as usize
                } else {
                    h
                };
                let base = j * p + self.offset(slot) as usize;
                for r in 0..fan_in {
                    for col in 0..fan_out {
                        values[base + r * cols + col] = init[src];
                        mask[base + r * cols + col] = 1.0;
                        src += 1;
                    }
                }
                let bias = base + h * cols;
                for col in 0..fan_out {
                    values[bias + col] = init[src];
                    mask[bias + col] = 1.0;
                    src += 1;
                }
            }
        }
        (values, mask)
    }
}

/// Per slot, the selection masks of the kinds present: `(kind, [k, 1, h] or [k, 1, 1] mask,
/// whether every child has this kind)`.
type SlotPlan = Vec<(Kind6, Tensor, bool)>;

/// Selection masks of every slot for `specs` (the children of `layout`, in order).
fn plans(layout: &Layout, specs: &[MlpSpec], device: tch::Device) -> Vec<SlotPlan> {
    // Width of each child's units entering each slot, for masking sigmoid(0) = 0.5.
    let mut width: Vec<usize> = specs.iter().map(|s| s.n_in).collect();
    let h = layout.h as usize;
    let mut plans = Vec::with_capacity(layout.slots);
    for s in 0..layout.slots {
        let kinds = &layout.kinds[s];
        let all = [Kind6::Linear, Kind6::Identity]
            .into_iter()
            .chain(ACTIVATIONS.map(Kind6::Act));
        let mut plan = SlotPlan::new();
        for kind in all {
            let members: Vec<bool> = kinds.iter().map(|k| *k == kind).collect();
            if !members.contains(&true) {
                continue;
            }
            let sigmoid = kind == Kind6::Act(Activation::Sigmoid);
            let sel = if sigmoid {
                let mut v = vec![0f32; specs.len() * h];
                for (j, &m) in members.iter().enumerate() {
                    for u in 0..width[j] {
                        v[j * h + u] = f32::from(u8::from(m));
                    }
                }
                Tensor::from_slice(&v).view([layout.k, 1, layout.h])
            } else {
                let v: Vec<f32> = members.iter().map(|&m| f32::from(u8::from(m))).collect();
                Tensor::from_slice(&v).view([layout.k, 1, 1])
            };
            // Sigmoid always needs its unit mask, even when every child has it.
            let skip_mul = members.iter().all(|&m| m) && !sigmoid;
            plan.push((kind, sel.to_device(device), skip_mul));
        }
        plans.push(plan);
        for (j, spec) in specs.iter().enumerate() {
            if let Some(Layer::Linear(w)) = spec.layers.get(s) {
                width[j] = *w;
            }
        }
    }
    plans
}

/// The batched network of a population.
struct Batched {
    layout: Layout,
    params: Tensor, // [k, p], leaf
    mask: Tensor,   // [k, p]
    plans: Vec<SlotPlan>,
}

impl Batched {
    fn new(specs: &[MlpSpec], rngs: &mut [Pcg64], device: tch::Device) -> Batched {
        let layout = Layout::new(specs);
        let (values, mask) = layout.init(specs, rngs);
        let shape = [layout.k, layout.p];
        let params = Tensor::from_slice(&values)
            .view(shape)
            .to_device(device)
            .set_requires_grad(true);
        let mask = Tensor::from_slice(&mask).view(shape).to_device(device);
        let plans = plans(&layout, specs, device);
        Batched {
            layout,
            params,
            mask,
            plans,
        }
    }

    /// Keeps only children `keep` (indices into this population), weights and shape unchanged.
    fn subset(&self, keep: &[usize], specs: &[MlpSpec]) -> Batched {
        let device = self.params.device();
        let index = Tensor::from_slice(&keep.iter().map(|&j| j as i64).collect::<Vec<_>>())
            .to_device(device);
        let layout = self.layout.subset(keep);
        let plans = plans(&layout, specs, device);
        Batched {
            params: self
                .params
                .detach()
                .index_select(0, &index)
                .set_requires_grad(true),
            mask: self.mask.index_select(0, &index),
            layout,
            plans,
        }
    }

    /// Logits `[k, n, c]` for inputs `[k, n, h]` (features padded with zeros to `h`).
    fn forward(&self, x: &Tensor) -> Tensor {
        let l = &self.layout;
        let p = &self.params * &self.mask; // padded weights are 0 and get no gradient
        let mut h = x.shallow_clone();
        for (s, plan) in self.plans.iter().enumerate() {
            let mut out: Option<Tensor> = None;
            for (kind, sel, everyone) in plan {
                let branch = match kind {
                    Kind6::Linear => {
                        let w = p.narrow(1, l.offset(s), l.h * l.h).view([l.k, l.h, l.h]);
                        let b = p
                            .narrow(1, l.offset(s) + l.h * l.h, l.h)
                            .view([l.k, 1, l.h]);
                        b.baddbmm(&h, &w, 1.0, 1.0)
                    }
                    Kind6::Act(a) => a.apply(&h),
                    Kind6::Identity => h.shallow_clone(),
                };
                let branch = if *everyone { branch } else { branch * sel };
                out = Some(match out {
                    None => branch,
                    Some(o) => o + branch,
                });
            }
            h = out.expect("every slot has a kind");
        }
        let off = l.offset(l.slots);
        let w = p.narrow(1, off, l.h * l.c).view([l.k, l.h, l.c]);
        let b = p.narrow(1, off + l.h * l.c, l.c).view([l.k, 1, l.c]);
        b.baddbmm(&h, &w, 1.0, 1.0)
    }
}

/// A split's features padded to width `h` and repeated for `k` children: `[k, n, h]`.
fn padded(x: &Tensor, k: i64, h: i64) -> Tensor {
    let (n, d) = (x.size()[0], x.size()[1]);
    x.constant_pad_nd([0, h - d])
        .unsqueeze(0)
        .expand([k, n, h], false)
        .contiguous()
}

/// Trains `specs[j]` seeded `seeds[j]` for every j together; the same outcomes, up to float
/// rounding, as `child::train_child` one at a time. Like it, returns at once when `stop` is
/// set, with incomplete outcomes the caller drops.
pub fn train_population(
    specs: &[MlpSpec],
    seeds: &[u64],
    data: &TensorData,
    settings: &ChildSettings,
    stop: &Stop,
) -> Vec<TrainOutcome> {
    assert_eq!(specs.len(), seeds.len());
    if specs.is_empty() {
        return Vec::new();
    }
    let device = data.device;
    let mut rngs: Vec<Pcg64> = seeds.iter().map(|&s| Pcg64::seed_from_u64(s)).collect();
    let mut net = Batched::new(specs, &mut rngs, device);
    let (h, c) = (net.layout.h, net.layout.c);
    let k_all = net.layout.k;
    let mut adam = Adam::new(&net.params);
    let n = data.train.x.size()[0];
    let x_train = data
        .train
        .x
        .constant_pad_nd([0, h - data.n_features as i64]);
    let train_all = padded(&data.train.x, k_all, h);
    let train_one_hot = data.train.one_hot.unsqueeze(0).expand([k_all, n, c], false);
    let dev_all = padded(&data.dev.x, k_all, h);
    let n_dev = data.dev.y.size()[0];

    let mut stopping: Vec<EarlyStopping> = specs
        .iter()
        .map(|_| EarlyStopping::new(settings.patience))
        .collect();
    let mut outcomes: Vec<TrainOutcome> = specs
        .iter()
        .map(|_| TrainOutcome {
            accuracy: 0.0,
            epochs: 0,
            diverged: false,
            history: Vec::new(),
        })
        .collect();
    // Children still training, as indices into `specs`; stopped ones leave the batch.
    let mut alive: Vec<usize> = (0..specs.len()).collect();
    for _epoch in 0..settings.max_epochs {
        let k = alive.len() as i64;
        let orders: Vec<Tensor> = alive
            .iter()
            .map(|&j| permutation(n as usize, &mut rngs[j], device))
            .collect();
        let order = Tensor::stack(&orders, 0).view([-1]); // [k * n]
        let xs = x_train
            .index_select(0, &order)
            .view([k, n, h])
            .split(settings.batch_size as i64, 1);
        let ys = data
            .train
            .one_hot
            .index_select(0, &order)
            .view([k, n, c])
            .split(settings.batch_size as i64, 1);
        for (x, y) in xs.iter().zip(&ys) {
            if stop.requested() {
                return outcomes;
            }
            let b = x.size()[1] as f64;
            // Sum over children of each child's mean loss: each gets its own gradient.
            let loss = -(net.forward(x).log_softmax(2, Kind::Float) * y).sum(Kind::Float) / b;
            net.params.zero_grad();
            loss.backward();
            let grads = net.params.grad();
            adam.step(&mut net.params, &grads, settings.lr);
        }
        let _guard = tch::no_grad_guard();
        let train_all = train_all.narrow(0, 0, k);
        let train_one_hot = train_one_hot.narrow(0, 0, k);
        let losses: Vec<f64> = Vec::try_from(
            (-(net.forward(&train_all).log_softmax(2, Kind::Float) * &train_one_hot)
                .sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float)
                / n as f64)
                .to_kind(Kind::Double),
        )
        .expect("losses");
        let correct: Vec<i64> = Vec::try_from(
            net.forward(&dev_all.narrow(0, 0, k))
                .argmax(2, false)
                .eq_tensor(&data.dev.y.unsqueeze(0))
                .sum_dim_intlist(1, false, Kind::Int64),
        )
        .expect("accuracies");
        let mut keep = Vec::with_capacity(alive.len());
        for (local, &j) in alive.iter().enumerate() {
            let o = &mut outcomes[j];
            let stop = if !losses[local].is_finite() {
                o.diverged = true;
                o.accuracy = 0.0;
                o.history.push((losses[local], 0.0));
                true
            } else {
                let acc = correct[local] as f64 / n_dev as f64;
                o.accuracy = acc;
                o.history.push((losses[local], acc));
                stopping[j].should_stop(acc)
            };
            o.epochs = o.history.len();
            if !stop {
                keep.push(local);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < alive.len() {
            let kept_specs: Vec<MlpSpec> = keep.iter().map(|&l| specs[alive[l]].clone()).collect();
            net = net.subset(&keep, &kept_specs);
            let index = Tensor::from_slice(&keep.iter().map(|&l| l as i64).collect::<Vec<_>>())
                .to_device(device);
            adam.m = adam.m.index_select(0, &index);
            adam.v = adam.v.index_select(0, &index);
            alive = keep.iter().map(|&l| alive[l]).collect();
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{make_moons, split};
    use crate::nn::child::train_child;
    use crate::space::{MlpSpace, SearchSpace};
    use tch::Device;

    fn data() -> TensorData {
        TensorData::new(&split(&make_moons(1000, 0.2, 0), 0.7, 0.1), Device::Cpu)
    }

    /// The children of the equivalence test: every kind of action in every slot, EOS early and
    /// late, and a logistic regression.
    fn specs() -> Vec<MlpSpec> {
        let space = MlpSpace::new(&crate::config::Settings::default());
        [
            "[8, Tanh, 8, ReLU, 4, ReLU]",
            "[Sigmoid, 16, LeakyReLU, Sigmoid, EOS]",
            "[EOS]",
            "[4, 2, Tanh, 16, Sigmoid, 1]",
            "[ReLU, Tanh, EOS]",
            "[16, Sigmoid, EOS]",
            "[2, LeakyReLU, 16, 16, ReLU, 8]",
        ]
        .iter()
        .map(|t| crate::space::halfmoon::mlp_spec(&space.parse(t).unwrap(), 2, 2))
        .collect()
    }

    #[test]
    fn the_population_trains_each_child_as_if_alone() {
        let data = data();
        let settings = ChildSettings {
            max_epochs: 25,
            ..ChildSettings::default()
        };
        let specs = specs();
        let seeds: Vec<u64> = (0..specs.len() as u64).map(|s| 100 + s).collect();
        let together = train_population(&specs, &seeds, &data, &settings, &Stop::new());
        for (j, (spec, &seed)) in specs.iter().zip(&seeds).enumerate() {
            let (_, alone) = train_child(spec, &data, &settings, seed, &Stop::new());
            assert_eq!(together[j].epochs, alone.epochs, "child {j}: epochs");
            assert_eq!(together[j].diverged, alone.diverged);
            for (e, (a, b)) in together[j].history.iter().zip(&alone.history).enumerate() {
                assert!(
                    (a.0 - b.0).abs() < 1e-4,
                    "child {j} epoch {e}: loss {} vs {}",
                    a.0,
                    b.0
                );
                assert!(
                    (a.1 - b.1).abs() < 1e-4,
                    "child {j} epoch {e}: dev accuracy {} vs {}",
                    a.1,
                    b.1
                );
            }
            assert!((together[j].accuracy - alone.accuracy).abs() < 1e-4);
        }
    }

    #[test]
    fn padded_weights_stay_exactly_zero() {
        let data = data();
        let specs = specs();
        let mut rngs: Vec<Pcg64> = (0..specs.len() as u64).map(Pcg64::seed_from_u64).collect();
        let mut net = Batched::new(&specs, &mut rngs, Device::Cpu);
        let mut adam = Adam::new(&net.params);
        let x = padded(&data.train.x.narrow(0, 0, 32), net.layout.k, net.layout.h);
        let y = data
            .train
            .one_hot
            .narrow(0, 0, 32)
            .unsqueeze(0)
            .expand([net.layout.k, 32, 2], false);
        for _ in 0..5 {
            let loss = -(net.forward(&x).log_softmax(2, Kind::Float) * &y).sum(Kind::Float);
            net.params.zero_grad();
            loss.backward();
            let g = net.params.grad();
            let leaked = (&g * net.mask.ones_like().g_sub(&net.mask))
                .abs()
                .sum(Kind::Float)
                .double_value(&[]);
            assert_eq!(leaked, 0.0);
            adam.step(&mut net.params, &g, 0.01);
        }
        let padded_values = (&net.params * net.mask.ones_like().g_sub(&net.mask))
            .abs()
            .sum(Kind::Float);
        assert_eq!(padded_values.double_value(&[]), 0.0);
    }

    #[test]
    fn a_stopped_child_keeps_its_result() {
        // Patience 1 stops most children after a couple of epochs while others go on.
        let data = data();
        let settings = ChildSettings {
            patience: 1,
            max_epochs: 30,
            ..ChildSettings::default()
        };
        let specs = specs();
        let seeds: Vec<u64> = (0..specs.len() as u64).collect();
        let together = train_population(&specs, &seeds, &data, &settings, &Stop::new());
        for (j, spec) in specs.iter().enumerate() {
            let (_, alone) = train_child(spec, &data, &settings, seeds[j], &Stop::new());
            assert_eq!(together[j].epochs, alone.epochs);
            assert!((together[j].accuracy - alone.accuracy).abs() < 1e-4);
        }
        assert!(
            together
                .iter()
                .map(|o| o.epochs)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        );
    }
}
