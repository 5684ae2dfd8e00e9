//! What a run writes and reads back: the one record of a rollout (`record`), CSV rows through the
//! `csv` crate (`rows`), summary.json (`summary`), the checkpoint (`checkpoint`), DeepCAVE run folders (`deepcave`), the
//! learning-curve figures (`figures`) drawn with `plot`, and progress lines (`progress`).
pub mod checkpoint;
pub mod deepcave;
pub mod figures;
pub mod plot;
pub mod progress;
pub mod record;
pub mod rows;
pub mod summary;
