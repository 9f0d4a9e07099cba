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
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Encode { path: PathBuf, source: image::ImageError },
    #[error("{path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Mask(#[from] maskforge_mask::MaskError),
    #[error(transparent)]
    Template(#[from] maskforge_mask::TemplateError),
    #[error(transparent)]
    Texture(#[from] maskforge_mask::TextureError),
    #[error(transparent)]
    Guard(#[from] maskforge_imageio::GuardError),
    /// An output path that is not a plain path inside its folder.
    #[error(transparent)]
    Confined(#[from] maskforge_imageio::ConfineError),
    #[error("{dir} was made with different settings:\n{diff}\nuse a new --out folder (or delete this one)")]
    DifferentSettings { dir: PathBuf, diff: String },
    #[error("{0} is not empty and was not made by `maskforge mask`: choose a new or empty --out folder")]
    NotAMaskFolder(PathBuf),
    /// The finished CSVs of an earlier run cannot be read back.
    #[error("{0}; use a new --out folder")]
    Unresumable(ContractError),
    #[error("{0}: not a folder")]
    NotAFolder(PathBuf),
    #[error("{theirs} was made with different settings than {ours} ({MASK_SETTINGS_JSON} differs)")]
    MergeSettings { theirs: PathBuf, ours: PathBuf },
    #[error("{theirs} and {ours} differ: outputs of different runs collide (merge only shards of one run)")]
    Collision { theirs: PathBuf, ours: PathBuf },
    #[error("{theirs} and {ours} differ")]
    ShardFilesDiffer { theirs: PathBuf, ours: PathBuf },
    #[error("no annotations.csv or annotations.shard-*-of-*.csv in {0}")]
    NothingToMerge(PathBuf),
    #[error("shard files of different splits (N = {counts:?}) in {dir}")]
    MixedSplits { counts: Vec<usize>, dir: PathBuf },
    #[error("shards {missing:?} of {count} are missing: their images are not in the merged CSVs")]
    MissingShards { missing: Vec<usize>, count: usize },
    #[error("{path}: {source}")]
    Walk { path: PathBuf, source: walkdir::Error },
    #[error("a worker thread panicked while appending to {0}")]
    Poisoned(PathBuf),
}

impl PipelineError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PipelineError {
        let path = path.into();
        move |source| PipelineError::Io { path, source }
    }
}
