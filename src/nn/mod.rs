//! Networks and their training. The fast path of the half-moon space: the MLP description
//! (`mlp`), Adam written out (`adam`), one child trained on the CPU without autograd (`child`,
//! `cpu_mlp`), many children trained as one batched network (`population`), and the choice among
//! them (`trainer`). Beyond MLPs: the data as tensors in the shape a network takes (`tensors`),
//! one general trainer for any tch module (`train`), an MLP as a tch module for it (`mlp_net`),
//! the final training of a chosen architecture (`final_training`, on a CPU through `cpu_fit`), and a fixed baseline CNN
//! (`cnn`).

pub mod adam;
pub mod child;
pub mod cnn;
pub mod cpu_fit;
pub mod cpu_mlp;
pub mod evaluator;
pub mod final_training;
pub mod mlp;
pub mod mlp_net;
pub mod population;
pub mod tensors;
pub mod train;
pub mod trainer;
