//! The checks of the files and folders a mask run reads and writes, made
//! before anything is written.

use crate::preview::check_preview_path;
use crate::PipelineError;
use maskforge_imageio::{check_cache_folder, check_disjoint, resolve_existing_prefix, Output};
use std::path::Path;

/// The files and folders of a mask run, for [`MaskPaths::check`].
#[derive(Clone, Copy, Debug)]
pub struct MaskPaths<'a> {
    /// The input folder.
    pub root: &'a Path,
    /// The output folder; `None` when nothing is written there (`--preview-only`).
    pub out: Option<&'a Path>,
    /// The segmentation-mask folder (`--seg-dir`), written.
    pub seg_dir: Option<&'a Path>,
    /// The preview contact sheet (`--preview`), written.
    pub preview: Option<&'a Path>,
    /// `--landmarks FILE`, read.
    pub landmarks: Option<&'a Path>,
    /// The folder of files kept between runs (`$MASKFORGE_CACHE`), if any.
    pub cache: Option<&'a Path>,
}

impl MaskPaths<'_> {
    /// The never-write-into-the-input rule, the cache folder apart from the
    /// run's folders, the preview where no reader takes it for a sample
    /// ([`check_preview_path`]) and segmentation masks outside OUT.
    pub fn check(&self) -> Result<(), PipelineError> {
        let mut outputs: Vec<Output> = self.out.map(|out| Output::new(out, "output folder")).into_iter().collect();
        outputs.extend(self.seg_dir.map(|seg| Output::new(seg, "segmentation folder")));
        outputs.extend(self.preview.map(|p| Output::new(p, "preview")));
        let inputs: Vec<&Path> = [Some(self.root), self.landmarks].into_iter().flatten().collect();
        check_disjoint(&inputs, &outputs)?;
        let folders: Vec<&Path> = [Some(self.root), self.out].into_iter().flatten().collect();
        check_cache_folder(self.cache, &folders)?;
        if let Some(preview) = self.preview {
            check_preview_path(preview, self.out, &self.seg_dir.into_iter().collect::<Vec<_>>())?;
        }
        if let (Some(seg), Some(out)) = (self.seg_dir, self.out) {
            let resolve = |p: &Path| resolve_existing_prefix(p).map_err(PipelineError::io(p));
            if resolve(seg)?.starts_with(resolve(out)?) {
                return Err(PipelineError::Option(
                    "--seg-dir must not be inside the output folder (ImageFolder readers would take it for a class)"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}
