//! What a run writes and reads back: rollouts.csv rows (`rows.rs`, through the `csv` crate).
pub mod rows;
