//! Progress reported to the caller while training or evaluating.

use crate::state::EpochRow;

/// Which pass over the data an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The training pass (optimisation steps).
    Train,
    /// The validation (or evaluation) pass.
    Val,
}

/// Progress reported to the caller (the CLI draws bars from these).
#[derive(Debug)]
pub enum Event<'a> {
    /// A line for the log (settings, notes, what was resumed).
    Info(String),
    /// An image or manifest row left out, with a one-line reason.
    Skipped {
        /// The image as the manifest writes it, or `FILE:LINE` for a row.
        path: &'a str,
        /// Why it was left out.
        reason: &'a str,
    },
    /// A pass over the data begins.
    PhaseStart {
        /// Training or validation.
        phase: Phase,
        /// The epoch, 1-based.
        epoch: usize,
        /// Epochs of the run.
        epochs: usize,
        /// Images the pass will go through.
        images: usize,
    },
    /// Images processed so far in the phase.
    Progress {
        /// Count since the phase began.
        images: usize,
    },
    /// The pass that began last has ended.
    PhaseEnd,
    /// An epoch has ended: its row of `metrics.csv`.
    EpochEnd(&'a EpochRow),
}
