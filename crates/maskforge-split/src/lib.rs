//! Reproducible dataset splits for ImageFolder trees (`ROOT/<class>/**/<image>`):
//!
//! * classes are the sorted folder names, with torchvision's ImageFolder indices;
//! * images are grouped ([`GroupBy`]: mask-stage source photo, parent folder,
//!   a regex, or none) and whole groups are assigned to train/val/test, per
//!   class as close to the ratios as the groups allow ([`Method::Exact`]) or
//!   by a hash that never moves an existing group ([`Method::Stable`]);
//! * every image is decoded once: corrupt files are reported, and the same
//!   pass yields the exact pixel sums for the train statistics;
//! * outputs are sorted and atomically written, so they are byte-identical
//!   whatever the thread count, listing order or mount point of the root.
//!
//! No dlib, no libtorch: this crate builds anywhere.

pub mod assign;
pub mod check;
pub mod classes;
mod error;
pub mod group;
pub mod manifest;
pub mod materialize;
pub mod plan;
pub mod report;
pub mod run;
pub mod scan;
pub mod stats;

pub use assign::{Method, Ratios, Split};
pub use check::{manifest_stats, open_manifests, verify, ManifestSet, Mismatch, VerifyOptions, VerifyReport};
pub use error::{EmptyClass, SplitError};
pub use group::GroupBy;
pub use manifest::{ClassInfo, ManifestRow};
/// The one manifest reader and writer, and the checked relative path.
pub use maskforge_contracts as contracts;
pub use materialize::{check_materialize_dir, materialize, MaterializeMode};
pub use plan::{
    check_output_dir, plan_split, write_split, Allow, MaterializedRecord, SplitOptions, SplitPlan, SplitRecord,
    DEFAULT_SEED,
};
pub use run::{run_split, SplitDone, SplitRequest};
pub use scan::ScanOptions;
pub use stats::{ChannelSums, Stats};

/// Progress reports from the slow, parallel passes (one call per file, from
/// any thread). `()` reports nothing.
pub trait Progress: Sync {
    /// The number of files the pass is about to process.
    fn start(&self, _total: u64) {}
    /// One more file done.
    fn advance(&self) {}
}

impl Progress for () {}

/// Version recorded in `split.json`.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests;
