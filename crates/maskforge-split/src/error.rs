use std::path::PathBuf;

/// Everything that stops a split, a verification or a statistics run. Each
/// message is one line a user can act on; bad *images* are not errors (they
/// become [`maskforge_imageio::Failure`] rows and the run goes on).
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// `--val` / `--test` out of range or adding up to 1 or more (or both 0).
    #[error("invalid split ratios: {0}")]
    Ratios(String),
    /// The dataset root is missing or not a folder.
    #[error("{0}: dataset root is not a directory")]
    RootNotDir(PathBuf),
    /// The root has no class subfolders.
    #[error("{0}: no class folders found (expected ROOT/<class>/<images>, as torchvision's ImageFolder reads)")]
    NoClasses(PathBuf),
    /// A class folder's name is not UTF-8 (it could not be written to the CSVs).
    #[error("{0}: class folder name is not valid UTF-8")]
    ClassName(PathBuf),
    /// Class folders without a usable image.
    #[error("{}", empty_classes_message(.0))]
    EmptyClasses(Vec<EmptyClass>),
    /// A `--group-by` value of none of the known forms (the text as given).
    #[error("invalid --group-by {0:?}: expected auto, source, parent, regex:PATTERN or none")]
    GroupBySyntax(String),
    /// `--group-by source` without the `annotations.csv` it reads.
    #[error("--group-by source needs {0} (written by `maskforge mask`); for other trees use --group-by parent, regex:PATTERN or none")]
    MissingAnnotations(PathBuf),
    /// The root holds the shard CSVs of a mask run that was never merged.
    #[error("{0} holds annotations.shard-*.csv of a sharded `maskforge mask` run but no annotations.csv: run `maskforge merge {0}` first")]
    UnmergedShards(PathBuf),
    /// `annotations.csv` could not be read or breaks its contract.
    #[error("{path}: {message}")]
    Annotations {
        /// The annotations file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The `--group-by regex:` pattern does not compile.
    #[error("invalid group regex {pattern:?}: {message}")]
    Regex {
        /// The pattern as given.
        pattern: String,
        /// The regex compiler's message.
        message: String,
    },
    /// The group regex leaves images without a group key.
    #[error("group regex {pattern:?} matches no part of {unmatched} of {total} image paths, e.g. {examples} (every image needs a group key)")]
    RegexNoMatch {
        /// The pattern as given.
        pattern: String,
        /// Image paths it does not match.
        unmatched: usize,
        /// All image paths.
        total: usize,
        /// A few unmatched paths, comma-separated.
        examples: String,
    },
    /// The output folder lies inside the dataset root.
    #[error("--out {out} is inside the dataset root {root}: it would be read as a class folder; write the manifests elsewhere")]
    OutputInsideRoot {
        /// The output folder.
        out: PathBuf,
        /// The dataset root.
        root: PathBuf,
    },
    /// Inputs and outputs overlap.
    #[error(transparent)]
    Guard(#[from] maskforge_imageio::GuardError),
    /// A manifest (or the set around it) cannot be read or used.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest, or the folder of the set.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A manifest set that is mixed or incomplete (see `maskforge_contracts::set`).
    #[error("{0}")]
    Set(String),
    /// The root has one class folder only (and `--allow-single-class` was not given).
    #[error("{root}: only one class folder ({class:?}): a classifier needs at least two; add the other class folders, or pass --allow-single-class to split it anyway")]
    SingleClass {
        /// The dataset root.
        root: PathBuf,
        /// The one class.
        class: String,
    },
    /// A split would get no image (and `--allow-empty-split` was not given).
    #[error("{split} would be empty: {reason}; pass --allow-empty-split to write it anyway")]
    EmptySplit {
        /// `train`, `val` or `test`.
        split: String,
        /// Why, in words (too few groups for the ratio...).
        reason: String,
    },
    /// The `--materialize` folder is unusable, or building it failed.
    #[error("{0}")]
    Materialize(String),
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The split of `root` could not be made (its plan, or the plan's check).
    #[error("cannot split {}: {source}", root.display())]
    Cannot {
        /// The dataset root.
        root: PathBuf,
        /// The error underneath.
        source: Box<SplitError>,
    },
}

/// A class folder without a single usable image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmptyClass {
    /// The class folder's name.
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
