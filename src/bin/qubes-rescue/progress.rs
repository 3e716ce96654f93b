//! The progress line of a restore, drawn by `indicatif` (a maintained crate: it hides itself when
//! stderr is not a terminal, fits the terminal's width, and smooths rate and ETA over time,
//! which the hand-written `\r` line it replaces did not).

use indicatif::{ProgressBar, ProgressStyle};
use qubes_rescue::restore::Progress;

/// A bar over the encrypted bytes of one stored file, labelled `qube/file`.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(label: &str, doing: &str) -> Bar {
        let bar = ProgressBar::new(0);
        let template = format!("{{msg}}: {doing} {{bytes}}/{{total_bytes}}, {{binary_bytes_per_sec}}, ETA {{eta}}");
        bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar.set_message(label.to_string());
        Bar(bar)
    }

    /// The callback the restore calls after each chunk.
    pub fn update(&self, p: &Progress) {
        self.0.set_length(p.bytes_total);
        self.0.set_position(p.bytes_done);
    }
}

impl Drop for Bar {
    /// The line goes away before the summary line is printed, whatever the outcome.
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
