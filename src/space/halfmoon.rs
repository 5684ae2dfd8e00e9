//! The default space of the half-moon demo: sequences of widths and activations ended by EOS
//! (docs/algorithms.md §1).

use super::SearchSpace;
use crate::nn::mlp::{Activation, Layer, MlpSpec, ACTIVATIONS};

/// Widths a linear layer can take.
pub const WIDTHS: [usize; 5] = [1, 2, 4, 8, 16];
/// Index of EOS in the vocabulary: widths first, then activations, then EOS.
pub const EOS: usize = WIDTHS.len() + ACTIVATIONS.len();

/// One action of the half-moon space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Width(usize),
    Act(Activation),
    Eos,
}

impl Action {
    pub fn from_index(i: usize) -> Action {
        match i {
            i if i < WIDTHS.len() => Action::Width(WIDTHS[i]),
            i if i < EOS => Action::Act(ACTIVATIONS[i - WIDTHS.len()]),
            _ => Action::Eos,
        }
    }

    /// Parses `8`, `Tanh` or `EOS`.
    pub fn parse(token: &str) -> Option<usize> {
        if token == "EOS" {
            return Some(EOS);
        }
        if let Ok(w) = token.parse::<usize>() {
            return WIDTHS.iter().position(|&x| x == w);
        }
        Activation::from_name(token)
            .map(|a| WIDTHS.len() + ACTIVATIONS.iter().position(|&x| x == a).expect("known"))
    }
}

/// The default space: at most `max_actions` actions from 5 widths, 4 activations and EOS.
#[derive(Clone, Debug)]
pub struct MlpSpace {
    pub max_actions: usize,
    pub early_eos_penalty: f64,
    pub repeat_penalty: f64,
}

impl MlpSpace {
    pub fn new(settings: &crate::config::Settings) -> Self {
        MlpSpace {
            max_actions: settings.max_actions,
            early_eos_penalty: settings.early_eos_penalty,
            repeat_penalty: settings.repeat_penalty,
        }
    }
}

impl SearchSpace for MlpSpace {
    fn vocabulary(&self) -> usize {
        EOS + 1
    }

    fn max_decisions(&self) -> usize {
        self.max_actions
    }

    fn is_complete(&self, decisions: &[usize]) -> bool {
        decisions.last() == Some(&EOS) || decisions.len() >= self.max_actions
    }

    /// The reference's shaping, checked as each action is sampled (the list includes it):
    /// EOS as first or second action; else two widths in a row; else two activations in a row
    /// unless the new action is EOS.
    fn step_reward(&self, decisions: &[usize]) -> f64 {
        let n = decisions.len();
        let last = Action::from_index(decisions[n - 1]);
        if last == Action::Eos && n <= 2 {
            return self.early_eos_penalty;
        }
        if n >= 2 {
            let prev = Action::from_index(decisions[n - 2]);
            let is_width = |a: Action| matches!(a, Action::Width(_));
            // The reference treats EOS like an activation here (both are strings there).
            let is_word = |a: Action| !is_width(a);
            if is_width(last) && is_width(prev) {
                return self.repeat_penalty;
            }
            if is_word(last) && is_word(prev) && last != Action::Eos {
                return self.repeat_penalty;
            }
        }
        0.0
    }

    fn describe(&self, decisions: &[usize]) -> String {
        let names: Vec<String> = decisions
            .iter()
            .map(|&d| match Action::from_index(d) {
                Action::Width(w) => w.to_string(),
                Action::Act(a) => a.name().to_string(),
                Action::Eos => "EOS".to_string(),
            })
            .collect();
        format!("[{}]", names.join(", "))
    }

    /// Parses the notation of `describe`, e.g. `[8, Tanh, 8, ReLU, EOS]`.
    fn parse(&self, text: &str) -> Option<Vec<usize>> {
        let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
        if inner.trim().is_empty() {
            return Some(vec![]);
        }
        inner.split(',').map(|t| Action::parse(t.trim())).collect()
    }
}

/// The MLP a complete half-moon sequence describes, for data of `n_in` features and `n_out`
/// classes: the evaluator of this space trains it (the space itself builds nothing).
pub fn mlp_spec(decisions: &[usize], n_in: usize, n_out: usize) -> MlpSpec {
    let layers = decisions
        .iter()
        .map(|&d| Action::from_index(d))
        .take_while(|a| *a != Action::Eos)
        .map(|a| match a {
            Action::Width(w) => Layer::Linear(w),
            Action::Act(act) => Layer::Act(act),
            Action::Eos => unreachable!("stopped at EOS"),
        })
        .collect();
    MlpSpec {
        n_in,
        n_out,
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn space() -> MlpSpace {
        MlpSpace::new(&crate::config::Settings::default())
    }

    fn seq(text: &str) -> Vec<usize> {
        space().parse(text).expect("valid notation")
    }

    /// Total shaping of a whole sequence, as the reference accumulates it action by action.
    fn shaping(text: &str) -> f64 {
        let s = seq(text);
        (1..=s.len()).map(|n| space().step_reward(&s[..n])).sum()
    }

    #[test]
    fn reward_shaping_matches_the_reference_table() {
        // Hand-computed from docs/algorithms.md §1.
        let cases = [
            ("[EOS]", -1.0),                      // EOS first
            ("[8, EOS]", -1.0),                   // EOS second
            ("[Tanh, EOS]", -1.0),                // EOS second beats the two-words rule
            ("[8, Tanh, EOS]", 0.0),              // EOS after an activation: no penalty
            ("[8, 4, EOS]", -0.1),                // two widths
            ("[8, 4, 2, EOS]", -0.2),             // two pairs of widths
            ("[Tanh, ReLU, 8, EOS]", -0.1),       // two activations
            ("[8, Tanh, 8, ReLU, 4, ReLU]", 0.0), // the reference's example, alternating
            ("[Tanh, ReLU, Sigmoid, LeakyReLU, Tanh, ReLU]", -0.5),
            ("[16, 16, 16, 16, 16, 16]", -0.5),
            ("[8, EOS, EOS]", -1.0), // never sampled (EOS ends), but well defined
        ];
        for (text, expected) in cases {
            assert!(
                (shaping(text) - expected).abs() < 1e-12,
                "{text}: got {}, want {expected}",
                shaping(text)
            );
        }
    }

    #[test]
    fn completion_and_notation() {
        let s = space();
        assert!(s.is_complete(&seq("[8, EOS]")));
        assert!(!s.is_complete(&seq("[8, Tanh]")));
        assert!(s.is_complete(&seq("[8, Tanh, 8, ReLU, 4, ReLU]")));
        assert_eq!(
            s.describe(&seq("[8, Tanh, 8, ReLU, 4, ReLU]")),
            "[8, Tanh, 8, ReLU, 4, ReLU]"
        );
        assert_eq!(s.vocabulary(), 10);
        assert_eq!(s.parse("[3]"), None);
    }

    #[test]
    fn decoding_the_reference_example() {
        let spec = mlp_spec(&seq("[8, Tanh, 8, ReLU, 4, ReLU]"), 2, 2);
        assert_eq!(spec.linear_shapes(), vec![(2, 8), (8, 8), (8, 4), (4, 2)]);
        let spec = mlp_spec(&seq("[Tanh, EOS]"), 2, 2);
        assert_eq!(spec.layers, vec![Layer::Act(Activation::Tanh)]);
        assert_eq!(spec.linear_shapes(), vec![(2, 2)]);
    }

    proptest! {
        #[test]
        fn every_sequence_decodes_to_a_chain_of_matching_shapes(
            actions in proptest::collection::vec(0usize..10, 0..=6),
            n_in in 1usize..12, n_out in 2usize..8,
        ) {
            let spec = mlp_spec(&actions, n_in, n_out);
            let shapes = spec.linear_shapes();
            prop_assert_eq!(shapes[0].0, n_in);
            prop_assert_eq!(shapes.last().unwrap().1, n_out);
            for pair in shapes.windows(2) {
                prop_assert_eq!(pair[0].1, pair[1].0);
            }
            let widths_before_eos = actions.iter().take_while(|&&a| a != EOS).filter(|&&a| a < WIDTHS.len()).count();
            prop_assert_eq!(shapes.len(), widths_before_eos + 1);
        }
    }
}
