//! The discrete network of a genotype (DARTS, Liu, Simonyan & Yang 2019, its evaluation
//! network without the auxiliary head and drop path): the supernet's stem, cells and
//! classifier, each node summing its two chosen operations, batch norm with learnt scale and
//! shift. A `tch` module, so the general trainer and the final-training protocol train it.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::genotype::{CellGenes, Genotype};
use super::ops::{Bn, Builder, Ctx, Op, ReluConvBn};
use super::supernet::{layout, Pre};
use crate::error::UsageError;

#[derive(Debug)]
struct Cell {
    pre0: Pre,
    pre1: ReluConvBn,
    /// Per node its operations and their inputs.
    nodes: Vec<Vec<(Op, usize)>>,
}

impl Cell {
    fn forward(&self, ctx: &Ctx, s0: &Tensor, s1: &Tensor) -> Tensor {
        let mut states = vec![self.pre0.forward(ctx, s0), self.pre1.forward(ctx, s1)];
        for node in &self.nodes {
            let mut sum: Option<Tensor> = None;
            for (op, j) in node {
                let out = op.forward(ctx, &states[*j]);
                sum = Some(match sum {
                    Some(s) => s + out,
                    None => out,
                });
            }
            states.push(sum.unwrap_or_else(|| states[1].zeros_like()));
        }
        Tensor::cat(&states[2..], 1)
    }
}

/// A network of `num_layers` cells of a genotype.
#[derive(Debug)]
pub struct DiscreteNet {
    params: Vec<Tensor>,
    buffers: Vec<Tensor>,
    stem: usize,
    stem_bn: Bn,
    cells: Vec<Cell>,
    head: (usize, usize),
}

impl DiscreteNet {
    /// Refuses a genotype without a reduction cell for a network that has reduction cells.
    pub fn check(genotype: &Genotype, num_layers: usize) -> Result<(), UsageError> {
        let (_, shapes, _) = layout(num_layers, 2, 1, genotype.num_nodes());
        if shapes.iter().any(|s| s.reduction) && genotype.reduce.is_empty() {
            return Err(UsageError::new(format!(
                "the genotype has no reduction cell (reduce=[]), but {num_layers} cells place reduction cells; use --num-layers 1"
            )));
        }
        Ok(())
    }

    /// Builds the network in `p` (a genotype `check` refuses uses its normal cell throughout).
    pub fn new(
        p: &nn::Path,
        genotype: &Genotype,
        num_layers: usize,
        init_channels: usize,
        stem_multiplier: usize,
        in_channels: i64,
        classes: i64,
    ) -> DiscreteNet {
        let nodes = genotype.num_nodes();
        let (stem_c, shapes, c_out) = layout(num_layers, init_channels, stem_multiplier, nodes);
        let mut b = Builder::new(p.clone());
        let stem = b.conv(stem_c, in_channels, 3);
        let stem_bn = b.bn(stem_c, true);
        let mut cells = Vec::new();
        for shape in &shapes {
            let genes: &CellGenes = if shape.reduction && !genotype.reduce.is_empty() {
                &genotype.reduce
            } else {
                &genotype.normal
            };
            let pre0 = Pre::new(&mut b, shape, true);
            let pre1 = ReluConvBn::new(&mut b, shape.c_p, shape.c, true);
            let nodes = genes
                .iter()
                .map(|edges| {
                    edges
                        .iter()
                        .map(|&(prim, j)| {
                            let stride = if shape.reduction && j < 2 { 2 } else { 1 };
                            (prim.build(&mut b, shape.c, stride, true), j)
                        })
                        .collect()
                })
                .collect();
            cells.push(Cell { pre0, pre1, nodes });
        }
        let head = b.linear(c_out, classes);
        DiscreteNet {
            params: b.params,
            buffers: b.buffers,
            stem,
            stem_bn,
            cells,
            head,
        }
    }

    /// Trainable values in the network.
    pub fn parameter_count(&self) -> i64 {
        self.params.iter().map(|p| p.numel() as i64).sum()
    }
}

impl ModuleT for DiscreteNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let ctx = Ctx {
            w: &self.params,
            bufs: Some(&self.buffers),
            train,
        };
        let h = x.conv2d(
            &self.params[self.stem],
            None::<&Tensor>,
            [1, 1],
            [1, 1],
            [1, 1],
            1,
        );
        let mut s1 = self.stem_bn.forward(&ctx, &h);
        let mut s0 = s1.shallow_clone();
        for cell in &self.cells {
            let out = cell.forward(&ctx, &s0, &s1);
            s0 = s1;
            s1 = out;
        }
        s1.mean_dim([2i64, 3].as_slice(), false, s1.kind())
            .linear(&self.params[self.head.0], Some(&self.params[self.head.1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_hand_written_genotype_builds_and_maps_images_to_logits() {
        let g = Genotype::parse(
            "Genotype(normal=[[('separable_convolution_3x3',0),('skip_connection',1)],[('max_pooling_3x3',2),('dilated_convolution_5x5',0)]],normal_concat=range(2,4),reduce=[[('avg_pooling_3x3',0),('skip_connection',1)],[('separable_convolution_5x5',2),('dilated_convolution_3x3',1)]],reduce_concat=range(2,4))",
        )
        .unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        DiscreteNet::check(&g, 3).unwrap();
        let net = DiscreteNet::new(&vs.root(), &g, 3, 4, 2, 1, 10);
        let x = Tensor::randn([5, 1, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, true).size(), [5, 10]);
        assert_eq!(net.forward_t(&x, false).size(), [5, 10]);
        assert_eq!(
            net.parameter_count(),
            vs.trainable_variables()
                .iter()
                .map(|t| t.numel() as i64)
                .sum::<i64>()
        );
        // Without a reduction cell, only one cell fits.
        let one = Genotype::parse("Genotype(normal=[[('max_pooling_3x3',0),('max_pooling_3x3',1)]],normal_concat=range(2,3),reduce=[],reduce_concat=range(2,3))").unwrap();
        assert!(DiscreteNet::check(&one, 1).is_ok());
        let single = DiscreteNet::new(&(vs.root() / "b"), &one, 1, 4, 1, 1, 10);
        assert_eq!(single.forward_t(&x, false).size(), [5, 10]);
        let e = DiscreteNet::check(&one, 2).unwrap_err();
        assert!(e.0.contains("--num-layers 1"));
    }
}
