use maskforge_contracts::mask_files::MASK_SETTINGS_JSON;
use maskforge_contracts::ContractError;
use std::path::PathBuf;

/// Everything that stops a mask or merge run. Each message is one line
/// (but for the settings difference, which lists one field a line) that
/// names the file or option at fault; bad *images* are not errors (they
/// become failures and the run goes on).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A bad option value; the message names the option (`--variants: ...`).
    #[error("{0}")]
    Option(String),
    /// A file or folder could not be read, written, created or linked.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An output image (or preview) could not be encoded.
    #[error("{path}: {source}")]
    Encode {
        /// The image being written.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// A journal record could not be serialised.
    #[error("{path}: {source}")]
    Json {
        /// The journal being appended to.
        path: PathBuf,
        /// The serialiser's error.
        source: serde_json::Error,
    },
    /// An input or output file breaks its contract (manifest, landmarks, labels...).
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// Mask synthesis refused its inputs.
    #[error(transparent)]
    Mask(#[from] maskforge_mask::MaskError),
    /// A mask template could not be loaded.
    #[error(transparent)]
    Template(#[from] maskforge_mask::TemplateError),
    /// A fabric texture could not be loaded.
    #[error(transparent)]
    Texture(#[from] maskforge_mask::TextureError),
    /// Inputs and outputs overlap (an output folder inside the input tree...).
    #[error(transparent)]
    Guard(#[from] maskforge_imageio::GuardError),
    /// An output path that is not a plain path inside its folder.
    #[error(transparent)]
    Confined(#[from] maskforge_imageio::ConfineError),
    /// The output folder holds a run of other settings: resuming into it
    /// would mix two datasets.
    #[error("{dir} was made with different settings:\n{diff}\nuse a new --out folder (or delete this one)")]
    DifferentSettings {
        /// The output folder.
        dir: PathBuf,
        /// The settings that differ, one a line.
        diff: String,
    },
    /// The output folder is not empty and holds no `mask_settings.json`.
    #[error("{0} is not empty and was not made by `maskforge mask`: choose a new or empty --out folder")]
    NotAMaskFolder(PathBuf),
    /// The finished CSVs of an earlier run cannot be read back.
    #[error("{0}; use a new --out folder")]
    Unresumable(ContractError),
    /// A `merge --from` path is not a folder.
    #[error("{0}: not a folder")]
    NotAFolder(PathBuf),
    /// Two folders being merged were made with different `mask_settings.json`.
    #[error("{theirs} was made with different settings than {ours} ({MASK_SETTINGS_JSON} differs)")]
    MergeSettings {
        /// The folder being brought in.
        theirs: PathBuf,
        /// The folder whose settings it was compared with.
        ours: PathBuf,
    },
    /// An image brought in by merge would replace a different file of the
    /// same name.
    #[error("{theirs} and {ours} differ: outputs of different runs collide (merge only shards of one run)")]
    Collision {
        /// The file being brought in.
        theirs: PathBuf,
        /// The file already in the output folder.
        ours: PathBuf,
    },
    /// Two copies of one shard's CSV differ.
    #[error("{theirs} and {ours} differ")]
    ShardFilesDiffer {
        /// The shard file being brought in.
        theirs: PathBuf,
        /// The file of that name already in the output folder.
        ours: PathBuf,
    },
    /// The folder has no annotations to merge.
    #[error("no annotations.csv or annotations.shard-*-of-*.csv in {0}")]
    NothingToMerge(PathBuf),
    /// The shard files of a folder come from splits into different counts.
    #[error("shard files of different splits (N = {counts:?}) in {dir}")]
    MixedSplits {
        /// The shard counts `N` found.
        counts: Vec<usize>,
        /// The folder.
        dir: PathBuf,
    },
    /// Shards of the split are missing (an error with `require_all_shards`;
    /// otherwise its message is a warning of the report).
    #[error("shards {missing:?} of {count} are missing: their images are not in the merged CSVs")]
    MissingShards {
        /// The missing shard numbers `I`.
        missing: Vec<usize>,
        /// The shard count `N`.
        count: usize,
    },
    /// A folder being merged could not be walked.
    #[error("{path}: {source}")]
    Walk {
        /// The folder walked.
        path: PathBuf,
        /// The walk's error.
        source: walkdir::Error,
    },
    /// A journal's lock was poisoned by a panicking worker.
    #[error("a worker thread panicked while appending to {0}")]
    Poisoned(PathBuf),
}

impl PipelineError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PipelineError {
        let path = path.into();
        move |source| PipelineError::Io { path, source }
    }
}
