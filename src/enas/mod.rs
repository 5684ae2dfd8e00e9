//! ENAS macro search with parameter sharing (Pham et al. 2018, "Efficient Neural Architecture
//! Search via Parameter Sharing") in Kubeflow Katib's formats: the space as Katib declares it
//! (`space`, `katib`), Katib's trial operations and network (`ops`, `network`), the shared
//! supernet (`supernet`), the LSTM controller (`controller`) as a strategy of the one search
//! loop (`strategy`), the shared weights as its evaluator (`evaluator`), the search with its
//! checkpoints and final choice (`search`), the commands (`command`) and the DeepCAVE run
//! folder (`deepcave`). Behind the cargo feature `enas`.

pub mod command;
pub mod config;
pub mod controller;
pub mod deepcave;
pub mod evaluator;
pub mod katib;
pub mod network;
pub mod ops;
pub mod plot;
pub mod search;
pub mod space;
pub mod strategy;
pub mod supernet;
