//! Search spaces: the `SearchSpace` trait the controller and the search loop see, and one file
//! per space (`halfmoon`: the default run's; the YAML spaces live in `src/choice_list/`).

pub mod halfmoon;

pub use halfmoon::{Action, MlpSpace, EOS, WIDTHS};

/// What a search needs to know about a space of architectures: the controller only learns
/// how many options there are at each decision; the rest stays behind this trait.
pub trait SearchSpace: Send + Sync {
    /// Options at every decision (the controller's input and output size).
    fn vocabulary(&self) -> usize;
    /// Decisions in a rollout at most.
    fn max_decisions(&self) -> usize;
    /// Options valid after `decisions` (the first this many of the vocabulary).
    fn options_at(&self, _decisions: &[usize]) -> usize {
        self.vocabulary()
    }
    /// Whether a rollout ends after `decisions` (the last one included).
    fn is_complete(&self, decisions: &[usize]) -> bool;
    /// Reward-shaping term for the last of `decisions`, added to the child's accuracy.
    fn step_reward(&self, _decisions: &[usize]) -> f64 {
        0.0
    }
    /// The decisions in human notation, as written in rollouts.csv.
    fn describe(&self, decisions: &[usize]) -> String;
    /// The decisions as a JSON value (a configuration, for strategies that speak JSON).
    fn to_json(&self, decisions: &[usize]) -> serde_json::Value {
        serde_json::Value::String(self.describe(decisions))
    }
    /// The inverse of `describe` (for reading rollouts.csv back on resume).
    fn parse(&self, text: &str) -> Option<Vec<usize>>;
}
