//! The REINFORCE baseline (Williams 1992): a moving average of past rewards subtracted from each
//! new reward, optionally scaled by a moving standard deviation (docs/algorithms.md §1).

use crate::config::MIN_REWARD_SD;

/// A moving average of past rewards subtracted from each new reward (off in the reference),
/// optionally with the difference divided by a moving standard deviation of rewards.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    pub enabled: bool,
    pub decay: f64,
    pub normalise: bool,
    /// The current average; `None` until the first reward.
    pub value: Option<f64>,
    /// Moving average of squared differences from the average.
    pub variance: f64,
}

impl Baseline {
    pub fn new(enabled: bool, decay: f64, normalise: bool) -> Self {
        Baseline {
            enabled,
            decay,
            normalise,
            value: None,
            variance: 0.0,
        }
    }

    /// Advantages of a batch of rewards against the statistics as they were before them
    /// (`(r - b) / max(sd, MIN_REWARD_SD)` when normalising); then the statistics move toward
    /// each reward in turn. Disabled: the rewards themselves.
    pub fn advantages(&mut self, rewards: &[f64]) -> Vec<f64> {
        if !self.enabled {
            return rewards.to_vec();
        }
        let (mean, sd) = (self.value, self.variance.sqrt().max(MIN_REWARD_SD));
        let scale = if self.normalise { sd } else { 1.0 };
        let advantages = rewards
            .iter()
            .map(|r| (r - mean.unwrap_or(*r)) / scale)
            .collect();
        for &r in rewards {
            match self.value {
                None => self.value = Some(r),
                Some(b) => {
                    self.variance =
                        self.decay * self.variance + (1.0 - self.decay) * (r - b).powi(2);
                    self.value = Some(self.decay * b + (1.0 - self.decay) * r);
                }
            }
        }
        advantages
    }
}
