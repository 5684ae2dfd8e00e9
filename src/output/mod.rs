//! What a run writes and reads back: rollouts.csv rows (`rows`, through the `csv` crate), the
//! statistics and the record writer of the default search (`report`), summary.json
//! (`summary`), the checkpoint (`checkpoint`), the figures (`plot`) and progress lines
//! (`progress`).
pub mod checkpoint;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rows;
pub mod summary;
