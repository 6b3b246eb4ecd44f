//! Progress of a long load: a bar on a terminal, a plain line every few seconds otherwise (CI logs, files).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often the plain-text reporter prints.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// Counts rows toward a known total and shows it.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

struct Plain {
    done: u64,
    total: u64,
    phase: &'static str,
    started: Instant,
    printed: Instant,
}

impl Progress {
    /// A reporter for `total` rows: a bar when standard error is a terminal.
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {msg:<10} [{bar:40}] {human_pos}/{human_len} rows {per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress { bar, plain: Mutex::new(Plain { done: 0, total, phase: "", started: now, printed: now }) }
    }

    /// Names what is being loaded now.
    pub fn phase(&self, phase: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(phase);
        }
        if let Ok(mut plain) = self.plain.lock() {
            plain.phase = phase;
        }
    }

    /// Adds `rows` finished rows.
    pub fn advance(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(rows);
            return;
        }
        let Ok(mut plain) = self.plain.lock() else { return };
        plain.done += rows;
        if plain.printed.elapsed() >= PLAIN_INTERVAL {
            plain.printed = Instant::now();
            let rate = plain.done as f64 / plain.started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "seed: {:<10} {}/{} rows ({:.0} %), {:.0} rows/s",
                plain.phase,
                plain.done,
                plain.total,
                100.0 * plain.done as f64 / plain.total.max(1) as f64,
                rate
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
