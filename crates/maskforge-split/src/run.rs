//! `maskforge split` from start to finish, in the one order that never
//! writes a file it would regret: the output and `--materialize` folders
//! checked, the plan made ([`plan_split`]) and checked
//! ([`SplitPlan::check_usable`]), then the materialized tree and last the
//! manifest set ([`write_split`]).

use crate::materialize::{check_materialize_dir, materialize, MaterializeMode};
use crate::plan::{check_output_dir, plan_split, write_split, Allow, MaterializedRecord, SplitOptions, SplitPlan};
use crate::{Progress, SplitError};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `maskforge split` is asked to do.
#[derive(Clone, Debug)]
pub struct SplitRequest {
    /// The ImageFolder tree.
    pub root: PathBuf,
    /// The manifest folder.
    pub out: PathBuf,
    /// Everything that decides the split.
    pub options: SplitOptions,
    /// What the plan's usability check lets through.
    pub allow: Allow,
    /// `--materialize DIR` with its `--mode`.
    pub materialize: Option<(PathBuf, MaterializeMode)>,
}

/// A written split.
#[derive(Clone, Debug)]
pub struct SplitDone {
    /// The plan that was written.
    pub plan: SplitPlan,
    /// Seconds the plan took (finding, decoding and assigning the images).
    pub plan_seconds: f64,
    /// Files placed under `--materialize`.
    pub materialized: Option<usize>,
    /// The files of the manifest set, as [`write_split`] lists them.
    pub written: Vec<PathBuf>,
}

/// Runs a split on the current rayon pool. The plan's errors name the root
/// ([`SplitError::Cannot`]).
pub fn run_split(req: &SplitRequest, progress: &dyn Progress) -> Result<SplitDone, SplitError> {
    check_output_dir(&req.root, &req.out)?;
    if let Some((dir, _)) = &req.materialize {
        check_materialize_dir(&req.root, dir)?;
    }
    let cannot = |e| SplitError::Cannot { root: req.root.clone(), source: Box::new(e) };
    let started = Instant::now();
    let plan = plan_split(&req.root, &req.options, progress).map_err(cannot)?;
    let plan_seconds = started.elapsed().as_secs_f64();
    // A split that cannot train a classifier is refused before anything is written.
    plan.check_usable(req.allow).map_err(cannot)?;
    let (materialized, record) = match &req.materialize {
        Some((dir, mode)) => {
            let placed = materialize(&plan, dir, *mode)?;
            (Some(placed), Some(materialized_record(dir, *mode)))
        }
        None => (None, None),
    };
    let written = write_split(&plan, &req.out, record)?;
    Ok(SplitDone { plan, plan_seconds, materialized, written })
}

/// What `split.json` records of a materialized tree: its absolute path.
fn materialized_record(dir: &Path, mode: MaterializeMode) -> MaterializedRecord {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    MaterializedRecord { dir: abs.to_string_lossy().into_owned(), mode: mode.to_string() }
}
