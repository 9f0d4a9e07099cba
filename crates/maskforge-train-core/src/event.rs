//! Progress reported to the caller while training or evaluating.

use crate::state::EpochRow;

/// Which pass over the data an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Train,
    Val,
}

/// Progress reported to the caller (the CLI draws bars from these).
#[derive(Debug)]
pub enum Event<'a> {
    Info(String),
    /// An image or manifest row left out, with a one-line reason.
    Skipped {
        path: &'a str,
        reason: &'a str,
    },
    PhaseStart {
        phase: Phase,
        epoch: usize,
        epochs: usize,
        images: usize,
    },
    /// Images processed so far in the phase.
    Progress {
        images: usize,
    },
    PhaseEnd,
    EpochEnd(&'a EpochRow),
}
