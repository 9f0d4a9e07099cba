use std::path::PathBuf;

/// Everything that stops a split, a verification or a statistics run. Each
/// message is one line a user can act on; bad *images* are not errors (they
/// become [`maskforge_imageio::Failure`] rows and the run goes on).
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("invalid split ratios: {0}")]
    Ratios(String),
    #[error("{0}: dataset root is not a directory")]
    RootNotDir(PathBuf),
    #[error("{0}: no class folders found (expected ROOT/<class>/<images>, as torchvision's ImageFolder reads)")]
    NoClasses(PathBuf),
    #[error("{0}: class folder name is not valid UTF-8")]
    ClassName(PathBuf),
    #[error("{}", empty_classes_message(.0))]
    EmptyClasses(Vec<EmptyClass>),
    #[error("invalid --group-by {0:?}: expected auto, source, parent, regex:PATTERN or none")]
    GroupBySyntax(String),
    #[error("--group-by source needs {0} (written by `maskforge mask`); for other trees use --group-by parent, regex:PATTERN or none")]
    MissingAnnotations(PathBuf),
    #[error("{0} holds annotations.shard-*.csv of a sharded `maskforge mask` run but no annotations.csv: run `maskforge merge {0}` first")]
    UnmergedShards(PathBuf),
    #[error("{path}: {message}")]
    Annotations { path: PathBuf, message: String },
    #[error("invalid group regex {pattern:?}: {message}")]
    Regex { pattern: String, message: String },
    #[error("group regex {pattern:?} matches no part of {unmatched} of {total} image paths, e.g. {examples} (every image needs a group key)")]
    RegexNoMatch { pattern: String, unmatched: usize, total: usize, examples: String },
    #[error("--out {out} is inside the dataset root {root}: it would be read as a class folder; write the manifests elsewhere")]
    OutputInsideRoot { out: PathBuf, root: PathBuf },
    #[error(transparent)]
    Guard(#[from] maskforge_imageio::GuardError),
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    /// A manifest set that is mixed or incomplete (see `maskforge_contracts::set`).
    #[error("{0}")]
    Set(String),
    #[error("{root}: only one class folder ({class:?}): a classifier needs at least two; add the other class folders, or pass --allow-single-class to split it anyway")]
    SingleClass { root: PathBuf, class: String },
    #[error("{split} would be empty: {reason}; pass --allow-empty-split to write it anyway")]
    EmptySplit { split: String, reason: String },
    #[error("{0}")]
    Materialize(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The split of `root` could not be made (its plan, or the plan's check).
    #[error("cannot split {}: {source}", root.display())]
    Cannot { root: PathBuf, source: Box<SplitError> },
}

/// A class folder without a single usable image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyClass {
    pub name: String,
    /// Image files found in it that could not be used.
    pub skipped: usize,
}

fn empty_classes_message(classes: &[EmptyClass]) -> String {
    let list: Vec<String> = classes
        .iter()
        .map(|c| {
            if c.skipped == 0 {
                format!("{:?} (no image files)", c.name)
            } else {
                format!("{:?} (all {} image files unusable)", c.name, c.skipped)
            }
        })
        .collect();
    format!(
        "empty class folder(s): {}; ImageFolder would refuse them too — add images or move the folder out of the root",
        list.join(", ")
    )
}

impl SplitError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SplitError {
        let path = path.into();
        move |source| SplitError::Io { path, source }
    }
}
