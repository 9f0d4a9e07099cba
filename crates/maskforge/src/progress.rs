//! The libraries' progress reports drawn with indicatif, on stderr when it
//! is a terminal and hidden otherwise ([`common::progress_bar`]): files of
//! split, verify and stats ([`CountBar`]), bytes of a download
//! ([`ByteBar`]), and training's events ([`Console`]).

use crate::common;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar of files behind `maskforge_split::Progress`.
pub struct CountBar(ProgressBar);

impl CountBar {
    /// A bar labelled `what`, its length set when the pass starts.
    pub fn new(what: &str) -> CountBar {
        CountBar(common::progress_bar(0, what))
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl maskforge_split::Progress for CountBar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self) {
        self.0.inc(1);
    }
}

/// A bar of downloaded bytes behind `maskforge_weights::Progress`.
#[derive(Default)]
pub struct ByteBar(Option<ProgressBar>);

impl maskforge_weights::Progress for ByteBar {
    fn start(&mut self, total: Option<u64>, resumed_from: u64) {
        let pb = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::no_length(),
        };
        if std::io::stderr().is_terminal() {
            pb.set_draw_target(ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} download [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
        } else {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        pb.set_position(resumed_from);
        if resumed_from > 0 {
            pb.println(format!("resuming after {resumed_from} bytes already downloaded"));
        }
        self.0 = Some(pb);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(pb) = &self.0 {
            pb.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
        }
    }
}

/// Training's and evaluation's events: a bar per phase, messages and epoch
/// lines above it.
#[cfg(feature = "tch")]
#[derive(Default)]
pub struct Console {
    bar: Option<ProgressBar>,
}

#[cfg(feature = "tch")]
impl Console {
    pub fn handle(&mut self, e: maskforge_train::Event) {
        use maskforge_train::{Event, Phase};
        match e {
            Event::Info(m) => self.println(&m),
            Event::Skipped { path, reason } => self.println(&format!("skipped {path}: {reason}")),
            Event::PhaseStart { phase, epoch, epochs, images } => {
                let what = match phase {
                    Phase::Train => format!("epoch {epoch}/{epochs} train"),
                    Phase::Val => format!("epoch {epoch}/{epochs} val  "),
                };
                self.bar = Some(common::progress_bar(images as u64, &what));
            }
            Event::Progress { images } => {
                if let Some(b) = &self.bar {
                    b.set_position(images as u64);
                }
            }
            Event::PhaseEnd => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
            }
            Event::EpochEnd(r) => self.println(&r.line()),
        }
    }

    fn println(&self, m: &str) {
        match &self.bar {
            Some(b) if !b.is_hidden() => b.println(m),
            _ => eprintln!("{m}"),
        }
    }
}
