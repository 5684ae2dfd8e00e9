//! Networks beyond the fast MLP path and their training: the data as tensors in the shape a
//! network takes (`tensors`), one general trainer for any tch module (`train`), and a fixed
//! baseline CNN (`cnn`). The conv-network searches (ENAS, DARTS, a cell benchmark) build on these.

pub mod cnn;
pub mod final_training;
pub mod mlp;
pub mod tensors;
pub mod train;
