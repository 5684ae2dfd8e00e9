//! Progress of `cells search` on stderr, counted in searches: an indicatif bar on a terminal,
//! a line every 10 % otherwise, nothing with --quiet (like the other commands' progress).

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::run::Outcome;

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: usize,
    last: usize,
    started: Instant,
}

impl Progress {
    pub fn new(total: usize, done: usize, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_position(done as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30.cyan/blue} {pos}/{len} searches  ETA {eta}  {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress {
            bar,
            lines: !quiet && !terminal,
            total,
            last: done,
            started: Instant::now(),
        }
    }

    /// `outcomes`: every search done so far, in order.
    pub fn update(&mut self, done: usize, outcomes: &[Outcome]) {
        let Some(last) = outcomes.last() else { return };
        let message = format!(
            "{} seed {}: regret {:.4}",
            last.strategy, last.seed, last.final_regret
        );
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(message);
        } else if self.lines
            && (done * 10 / self.total.max(1) > self.last * 10 / self.total.max(1)
                || done == self.total)
        {
            self.last = done;
            crate::errln!(
                "[{:>7.1}s] {done}/{} searches  {message}",
                self.started.elapsed().as_secs_f64(),
                self.total
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
