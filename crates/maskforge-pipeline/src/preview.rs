//! Contact sheets: a sample of a run's outputs (read back from disk), or of
//! a sample of the inputs masked in memory (`--preview-only`). The sample is
//! chosen by a hash of the seed and path, so it is stable and spread over
//! the tree.

use crate::process::{sheet_label, THUMBNAIL};
use crate::source::FaceSource;
use crate::{Pipeline, PipelineError};
use maskforge_contracts::AnnotationRow;
use maskforge_face::BBox;
use maskforge_imageio::{load_rgb, Failure, LoadLimits};
use maskforge_mask::rng::stable_hash;
use maskforge_mask::sheet::{contact_sheet, thumbnail, SheetItem};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The rows of the outputs a preview shows: one per masked output.
pub fn preview_sample(rows: &[AnnotationRow], seed: u64, count: usize) -> Vec<&AnnotationRow> {
    let mut firsts: BTreeMap<&str, &AnnotationRow> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.is_unmasked()) {
        firsts.entry(&r.output).or_insert(r);
    }
    let mut list: Vec<&AnnotationRow> = firsts.into_values().collect();
    list.sort_by_key(|r| (stable_hash(format!("{seed}:{}", r.output).as_bytes()), r.output.clone()));
    list.truncate(count);
    list.sort_by(|a, b| a.output.cmp(&b.output));
    list
}

/// Refuses a `--preview FILE` that could take the place of a run's own
/// files: it must be named as an image (`.png`, `.jpg`, `.jpeg`: the bytes
/// written are one, so `OUT/annotations.csv` cannot be overwritten), and
/// inside the output folder `out` (when the run writes one) it must lie at
/// its top level, where ImageFolder readers look for no images (in a class
/// folder the sheet would be filed as a sample). `folders` are the other
/// output folders (segmentation masks), where no preview may go.
pub fn check_preview_path(preview: &Path, out: Option<&Path>, folders: &[&Path]) -> Result<(), PipelineError> {
    let refuse = |why: &str| Err(PipelineError::Option(format!("--preview {}: {why}", preview.display())));
    let is_image = preview
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].iter().any(|x| x.eq_ignore_ascii_case(e)));
    if !is_image {
        return refuse("must end in .png, .jpg or .jpeg (a contact sheet is an image)");
    }
    let resolve = |p: &Path| maskforge_imageio::resolve_existing_prefix(p).map_err(PipelineError::io(p));
    let file = resolve(preview)?;
    for folder in folders {
        if file.starts_with(resolve(folder)?) {
            return refuse(&format!("inside {}, an output folder of this run: write it elsewhere", folder.display()));
        }
    }
    if let Some(out) = out {
        let out_abs = resolve(out)?;
        if file.starts_with(&out_abs) && file.parent() != Some(out_abs.as_path()) {
            return refuse(&format!(
                "inside a folder of the dataset {}: it would be read as a sample; write it at the top of {} or elsewhere",
                out.display(),
                out.display()
            ));
        }
    }
    Ok(())
}

/// Writes a contact sheet of `items` as PNG, atomically.
pub fn save_sheet(items: &[SheetItem], path: &Path) -> Result<(), PipelineError> {
    let cols = (items.len() as f64).sqrt().ceil().clamp(1.0, 8.0) as usize;
    let sheet = contact_sheet(items, cols, THUMBNAIL);
    // JPEG when asked for (small enough to commit, e.g. the gallery of docs/mask.md), PNG otherwise.
    let is_jpeg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    let format_path = if is_jpeg { path.to_path_buf() } else { path.with_extension("png") };
    let bytes = maskforge_imageio::encode_image(&sheet, &format_path, 88)
        .map_err(|source| PipelineError::Encode { path: path.to_path_buf(), source })?;
    maskforge_imageio::write_atomic(path, &bytes).map_err(PipelineError::io(path))
}

impl Pipeline {
    /// Thumbnails of a sample of the outputs listed in `rows` (outputs that
    /// cannot be read back are left out).
    pub fn preview_from_disk(&self, rows: &[AnnotationRow], count: usize) -> Vec<SheetItem> {
        let opts = self.options();
        let mut items = Vec::new();
        for r in preview_sample(rows, opts.seed, count) {
            let Ok(img) = load_rgb(&opts.out.join(&r.output), LoadLimits::default()) else { continue };
            let focus = match r.geometry.as_ref().and_then(|g| g.bbox()) {
                Some([l, t, rt, b]) if opts.crop_size == 0 => Some(BBox::new(l, t, rt, b)),
                _ => None,
            };
            let label = sheet_label(&r.class, &r.variant, Some((&r.template, r.colour.clone())));
            items.push(SheetItem { thumbnail: thumbnail(&img, focus, THUMBNAIL), label });
        }
        items
    }

    /// Masks a hash-chosen sample of `images` in memory (the pipeline must
    /// have been made with `write: false`) until `count` thumbnails are made.
    pub fn preview_only<S>(
        &self,
        pool: &rayon::ThreadPool,
        mut images: Vec<(PathBuf, String)>,
        count: usize,
        source: &S,
    ) -> Result<(Vec<SheetItem>, Vec<Failure>), PipelineError>
    where
        S: FaceSource + Clone + Send + Sync,
    {
        let seed = self.options().seed;
        images.sort_by_key(|(_, rel)| (stable_hash(format!("{seed}:{rel}").as_bytes()), rel.clone()));
        let mut items: Vec<SheetItem> = Vec::new();
        let mut failures = Vec::new();
        let batch = pool.current_num_threads().max(1) * 2;
        for chunk in images.chunks(batch) {
            if items.len() >= count {
                break;
            }
            let outcomes = pool.install(|| {
                chunk
                    .par_iter()
                    .map_init(|| source.clone(), |src, (p, rel)| self.process(src, p, rel))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            for o in outcomes {
                items.extend(o.thumbnails);
                failures.extend(o.record.failures.into_iter().map(|(p, r)| Failure::new(p, r)));
            }
        }
        items.truncate(count);
        Ok((items, failures))
    }
}
