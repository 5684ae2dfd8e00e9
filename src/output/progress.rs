//! Progress of a search on stderr: an indicatif bar on a terminal, a plain line every 10 %
//! otherwise (logs, CI), nothing with --quiet. All of it best effort: a full stderr is ignored.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Progress on stderr: a bar on a terminal, a line every 10 % otherwise, nothing when quiet.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: usize,
    last_line: usize,
    started: Instant,
    unit: &'static str,
    quiet: bool,
}

impl Progress {
    pub fn new(total: usize, done: usize, quiet: bool) -> Self {
        Progress::counting(total, done, quiet, "rollouts")
    }

    /// Progress counted in `unit` (for example "trainings").
    pub fn counting(total: usize, done: usize, quiet: bool, unit: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_position(done as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    &format!("{{bar:30.cyan/blue}} {{pos}}/{{len}} {unit}  {{per_sec}}  ETA {{eta}}  {{msg}}"),
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            lines: !quiet && !terminal,
            total,
            last_line: done,
            started: Instant::now(),
            unit,
            quiet,
        }
    }

    /// A bar over epochs for searches that report every epoch in a line of their own
    /// (`line`): on a terminal the lines scroll above the bar, elsewhere (logs, CI) only the
    /// lines are written, one per epoch.
    pub fn epochs(total: usize, done: usize, quiet: bool) -> Self {
        let mut p = Progress::counting(total, done, quiet, "epochs");
        p.lines = false;
        p
    }

    /// One line of the search's own (unless quiet): above the bar on a terminal.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => say(self.quiet, text),
        }
    }

    pub fn update(&mut self, done: usize, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(message.to_string());
        } else if self.lines
            && (done * 10 / self.total.max(1) > self.last_line * 10 / self.total.max(1)
                || done == self.total)
        {
            self.last_line = done;
            crate::errln!(
                "[{:>7.1}s] {done}/{} {}  {message}",
                self.started.elapsed().as_secs_f64(),
                self.total,
                self.unit
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Prints to stderr unless quiet; a full or closed stderr is ignored (messages are best effort).
pub fn say(quiet: bool, text: &str) {
    if !quiet {
        crate::errln!("{text}");
    }
}
