//! A whole mask run over a tree: walk (or `--list`) → shard → limit → what is left to do
//! → parallel [`Pipeline::process`] → journal → CSVs, and its summary.
//!
//! Resume and crash safety: every file is written to a temporary name and
//! renamed; each finished image is journalled ([`crate::record`]). At the
//! end, `annotations.csv`, `failures.csv` and the source stamps are written
//! atomically from all records, sorted, and the journal is removed. A re-run
//! reads the journal or the finished CSVs and skips images whose outputs all
//! exist and whose source file did not change. The label files (`--labels`,
//! [`crate::labels`]) are then rewritten from all rows.

use crate::labels::{formats_in, run_classes, write_labels};
use crate::naming::extension_collisions;
use crate::options::OutputFormat;
use crate::record::{read_finished, write_stamps, Journal, Record, RunFiles};
use crate::settings::{prepare_output_folder, DetectorSettings, Settings};
use crate::source::{FaceSource, FileFaces};
use crate::{Pipeline, PipelineError};
use maskforge_contracts::mask_files::SourceStamp;
use maskforge_contracts::AnnotationRow;
use maskforge_contracts::{read_face_file, read_image_list, FaceFileFormat, ImageList};
use maskforge_face::FaceMethod;
use maskforge_imageio::{is_image_path, relative_string, walk_images, Failure};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The images of a run: found, sharded and limited.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `(file, path relative to the root)` of this run's images, in path order.
    pub images: Vec<(PathBuf, String)>,
    /// This shard's sources before `--limit`: records of others are dropped,
    /// records of these kept (a limited run keeps earlier results).
    pub shard_sources: HashSet<String>,
    /// Every image found, before sharding and `--limit`.
    pub all_sources: HashSet<String>,
    /// Files the walk could not list, and other problems with the run's
    /// inputs (reported by the first shard only).
    pub walk_failures: Vec<Failure>,
    /// See [`crate::extension_collisions`]: computed over all shards, so
    /// every shard names the same source the same way.
    pub ext_suffixed: HashSet<String>,
}

impl Inputs {
    /// The images of `list` ([`read_image_list`]) when given, else of a walk
    /// of `root`; see [`Inputs::walk`] and [`Inputs::listed`].
    pub fn new(
        root: &Path,
        list: Option<&Path>,
        outputs: &[&Path],
        shard: Option<(usize, usize)>,
        limit: Option<usize>,
        format: OutputFormat,
    ) -> Result<Inputs, PipelineError> {
        Ok(match list {
            Some(file) => Inputs::listed(root, &read_image_list(file)?, shard, limit, format),
            None => Inputs::walk(root, outputs, shard, limit, format),
        })
    }

    /// Walks `root`, reporting what resolves into one of `outputs`
    /// ([`walk_images`]); keeps shard `(I, N)`'s share (by a hash of each
    /// path) and then at most `limit` images.
    pub fn walk(
        root: &Path,
        outputs: &[&Path],
        shard: Option<(usize, usize)>,
        limit: Option<usize>,
        format: OutputFormat,
    ) -> Inputs {
        let walk = walk_images(root, outputs);
        let all: Vec<(PathBuf, String)> =
            walk.images.into_iter().map(|p| (p.clone(), relative_string(root, &p))).collect();
        let ext_suffixed = match format {
            OutputFormat::Same => HashSet::new(),
            _ => extension_collisions(all.iter().map(|(_, rel)| rel.as_str())),
        };
        Inputs::select(all, walk.failures, ext_suffixed, shard, limit)
    }

    /// The images `list` names under `root` instead of a walk, sharded and
    /// limited as [`Inputs::walk`]'s. Its bad lines and the listed files
    /// that are missing or not images are failures. Output names are those
    /// a walk would give: a listed image whose name collides with an
    /// unlisted sibling's after a format change keeps its `__ext` suffix.
    pub fn listed(
        root: &Path,
        list: &ImageList,
        shard: Option<(usize, usize)>,
        limit: Option<usize>,
        format: OutputFormat,
    ) -> Inputs {
        let (all, mut failures) = list.resolve(root);
        failures.extend(list.skipped.iter().cloned());
        let ext_suffixed = match format {
            OutputFormat::Same => HashSet::new(),
            _ => sibling_collisions(&all),
        };
        Inputs::select(all, failures, ext_suffixed, shard, limit)
    }

    /// Shard `(I, N)`'s share of `all` (in path order), then at most `limit`.
    fn select(
        all: Vec<(PathBuf, String)>,
        mut walk_failures: Vec<Failure>,
        ext_suffixed: HashSet<String>,
        shard: Option<(usize, usize)>,
        limit: Option<usize>,
    ) -> Inputs {
        let all_sources = all.iter().map(|(_, rel)| rel.clone()).collect();
        let mut images: Vec<(PathBuf, String)> = match shard {
            Some((i, n)) => {
                let in_shard =
                    |rel: &str| maskforge_mask::rng::stable_hash(rel.as_bytes()) % n as u64 == (i - 1) as u64;
                all.into_iter().filter(|(_, rel)| in_shard(rel)).collect()
            }
            None => all,
        };
        if shard.is_some_and(|(i, _)| i != 1) {
            walk_failures.clear();
        }
        let shard_sources = images.iter().map(|(_, r)| r.clone()).collect();
        if let Some(limit) = limit {
            images.truncate(limit);
        }
        Inputs { images, shard_sources, all_sources, walk_failures, ext_suffixed }
    }

    /// `mask --landmarks FILE`: the faces of `path` (layout `format`, else
    /// by content) matched to the images (all of them, before sharding).
    /// The file's bad rows and the rows without an image join the failures
    /// when `report` (the first shard reports them); the settings record the
    /// file by name, format and SHA-256.
    pub fn faces_from_file(
        &mut self,
        path: &Path,
        format: Option<FaceFileFormat>,
        report: bool,
    ) -> Result<(FileFaces, DetectorSettings), PipelineError> {
        let name = path.display().to_string();
        let file = read_face_file(path, &name, format)?;
        let (faces, failures) = FileFaces::new(&file, &name, &self.all_sources);
        if report {
            self.walk_failures.extend(failures);
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| name.clone());
        let settings = DetectorSettings {
            detector: "none".into(),
            detect_max_side: 0,
            scale: None,
            upsample: 0,
            faces: Some(format!("landmarks {file_name} ({}, sha256 {})", file.format.name(), file.sha256)),
        };
        Ok((faces, settings))
    }
}

/// [`extension_collisions`] of listed images with the image files beside
/// them (as a walk would list them: visible, image extension, UTF-8 name),
/// so a listed image is named as in a run over the whole folder. Each
/// folder is read once.
fn sibling_collisions(listed: &[(PathBuf, String)]) -> HashSet<String> {
    let mut folders: BTreeMap<&str, &Path> = BTreeMap::new();
    for (file, rel) in listed {
        let dir_rel = rel.rsplit_once('/').map_or("", |(d, _)| d);
        if let Some(dir) = file.parent() {
            folders.entry(dir_rel).or_insert(dir);
        }
    }
    let mut siblings: Vec<String> = Vec::new();
    for (dir_rel, dir) in folders {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let Ok(name) = e.file_name().into_string() else { continue };
            if name.starts_with('.') || !is_image_path(Path::new(&name)) || !e.path().is_file() {
                continue;
            }
            siblings.push(if dir_rel.is_empty() { name } else { format!("{dir_rel}/{name}") });
        }
    }
    let listed: HashSet<&str> = listed.iter().map(|(_, rel)| rel.as_str()).collect();
    extension_collisions(siblings.iter().map(String::as_str))
        .into_iter()
        .filter(|s| listed.contains(s.as_str()))
        .collect()
}

/// A run in progress: the output folder is ours, the earlier state read.
pub struct MaskRun<'p> {
    pipeline: &'p Pipeline,
    shard: Option<(usize, usize)>,
    files: RunFiles,
    inputs: Inputs,
    records: HashMap<String, Record>,
    /// Indices into `inputs.images` of the images still to do.
    todo: Vec<usize>,
    journal: Journal,
    fresh: Vec<Record>,
}

impl<'p> MaskRun<'p> {
    /// Prepares the output folder (refusing one made with other settings),
    /// reads what earlier runs finished and opens the journal.
    pub fn open(
        pipeline: &'p Pipeline,
        settings: &Settings,
        shard: Option<(usize, usize)>,
        inputs: Inputs,
    ) -> Result<Self, PipelineError> {
        let opts = pipeline.options();
        prepare_output_folder(&opts.out, opts.seg_dir.as_deref(), &settings.to_json())?;
        let files = RunFiles::new(&opts.out, shard);
        let mut records = read_finished(&files)?;
        records.extend(Journal::read(&files.journal));
        let todo = (0..inputs.images.len())
            .filter(|&k| {
                let (path, rel) = &inputs.images[k];
                records.get(rel).is_none_or(|r| !is_done(pipeline, r) || !is_current(r, path))
            })
            .collect();
        let journal = Journal::open(&files.journal)?;
        Ok(MaskRun { pipeline, shard, files, inputs, records, todo, journal, fresh: Vec::new() })
    }

    /// Images of this run (done earlier or not).
    pub fn images(&self) -> usize {
        self.inputs.images.len()
    }

    /// Images still to process.
    pub fn todo(&self) -> usize {
        self.todo.len()
    }

    /// Processes every image still to do on `pool`, one clone of `source`
    /// per worker thread, journalling each; `on_done` is called per image.
    pub fn process<S>(
        &mut self,
        pool: &rayon::ThreadPool,
        source: &S,
        on_done: &(dyn Fn() + Sync),
    ) -> Result<(), PipelineError>
    where
        S: FaceSource + Clone + Send + Sync,
    {
        let (pipeline, journal, images) = (self.pipeline, &self.journal, &self.inputs.images);
        let fresh = pool.install(|| {
            self.todo
                .par_iter()
                .map_init(
                    || source.clone(),
                    |src, &k| -> Result<Record, PipelineError> {
                        let (path, rel) = &images[k];
                        let rec = pipeline.process(src, path, rel)?.record;
                        journal.append(&rec)?;
                        on_done();
                        Ok(rec)
                    },
                )
                .collect::<Result<Vec<_>, _>>()
        })?;
        self.fresh.extend(fresh);
        Ok(())
    }

    /// Writes the CSVs and stamps from all records, removes the journal and
    /// the outputs of replaced sources that are no longer made; then the
    /// label files: those asked for and those already in OUT.
    pub fn finish(mut self) -> Result<Finished, PipelineError> {
        let processed = self.todo.len();
        for r in std::mem::take(&mut self.fresh) {
            if let Some(old) = self.records.get(&r.source) {
                remove_replaced_outputs(self.pipeline, old, &r);
            }
            self.records.insert(r.source.clone(), r);
        }
        let shard_sources = &self.inputs.shard_sources;
        self.records.retain(|src, _| shard_sources.contains(src));
        let mut rows: Vec<AnnotationRow> = Vec::new();
        let mut failures = std::mem::take(&mut self.inputs.walk_failures);
        for rec in self.records.values() {
            rows.extend(rec.rows.iter().cloned());
            failures.extend(rec.failures.iter().map(|(p, r)| Failure::new(p.clone(), r.clone())));
        }
        // Records are hashed: sort, so the failures come back (and are printed) in path order.
        failures.sort_by(|a, b| a.path.cmp(&b.path).then(a.reason.cmp(&b.reason)));
        let files = &self.files;
        maskforge_contracts::write_annotations(&files.annotations, &rows)?;
        maskforge_imageio::write_failures_csv(&files.failures, &failures)
            .map_err(PipelineError::io(&files.failures))?;
        write_stamps(&files.stamps, &self.records)?;
        drop(self.journal);
        let _ = std::fs::remove_file(&files.journal);
        let opts = self.pipeline.options();
        let mut formats = formats_in(&opts.out, |s| s == self.shard);
        formats.extend(opts.labels.iter().copied());
        let warnings = write_labels(&opts.out, &rows, run_classes(self.pipeline), &formats, self.shard)?;
        let small_faces = self.records.values().map(|r| r.small_faces).sum();
        let bare_outputs = self.records.values().map(|r| r.bare_outputs).sum();
        let images = self.inputs.images.len();
        let counts = (images, processed);
        let faces = (small_faces, bare_outputs);
        let summary = Summary::new(&rows, &failures, faces, counts, self.pipeline, &files.annotations);
        Ok(Finished { rows, failures, summary, warnings })
    }
}

/// See [`Summary::smallest_detected_face`].
fn smallest_detected_face(rows: &[AnnotationRow]) -> Option<f32> {
    rows.iter()
        .filter_map(|r| r.geometry.as_ref())
        .filter(|g| [FaceMethod::Hog.as_str(), FaceMethod::Cnn.as_str()].contains(&g.method()))
        .filter_map(|g| g.bbox())
        .map(|[l, t, r, b]| (r - l).min(b - t))
        .min_by(f32::total_cmp)
}

/// Folders of older versions have no stamps: their records count as current.
fn is_current(rec: &Record, path: &Path) -> bool {
    rec.stamp.is_none() || rec.stamp == SourceStamp::of(path)
}

/// Whether every output of a record (and its segmentation mask) exists.
fn is_done(pipeline: &Pipeline, rec: &Record) -> bool {
    let opts = pipeline.options();
    !rec.retry
        && rec.outputs.iter().all(|o| {
            opts.out.join(o).symlink_metadata().is_ok()
                && opts.seg_dir.as_ref().is_none_or(|d| {
                    // Unmasked copies have no segmentation mask.
                    rec.rows.iter().any(|r| r.output == *o && r.is_unmasked())
                        || d.join(o).with_extension("png").is_file()
                })
        })
}

/// Removes the outputs an earlier run made for a source that the new run
/// of the (changed) source no longer makes, so no stale image stays filed.
fn remove_replaced_outputs(pipeline: &Pipeline, old: &Record, new: &Record) {
    let opts = pipeline.options();
    // Paths from an earlier run's files are data: each is removed only as a
    // checked path under its own folder, never through a link leading out.
    let remove = |root: &Path, rel: &Path| {
        if let Ok(path) = maskforge_imageio::confined(root, rel) {
            let _ = std::fs::remove_file(path);
        }
    };
    for o in old.outputs.iter().filter(|o| !new.outputs.contains(o)) {
        remove(&opts.out, Path::new(o));
        // Its YOLO labels (`--labels yolo`), if any.
        remove(&opts.out, Path::new(&maskforge_contracts::labels::yolo_label_path(o)));
        if let Some(seg) = &opts.seg_dir {
            remove(seg, &Path::new(o).with_extension("png"));
        }
    }
}

/// What a finished run wrote.
#[derive(Debug)]
pub struct Finished {
    /// Every annotation row of the run's folder (or shard), as written.
    pub rows: Vec<AnnotationRow>,
    /// Every failure of the folder (or shard), as in `failures.csv`.
    pub failures: Vec<Failure>,
    /// The numbers to report.
    pub summary: Summary,
    /// `labels: OUTPUT: reason` for each output (or face) left out of the label files.
    pub warnings: Vec<String>,
}

/// The numbers a run reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Input images of the run (of its shard, with `--shard`).
    pub images: usize,
    /// Processed by this run (the others were done earlier).
    pub processed: usize,
    /// Finished by an earlier run, so not processed again.
    pub skipped: usize,
    /// Distinct `(source, face)` pairs with a mask.
    pub faces_masked: usize,
    /// Faces under the minimum size.
    pub small_faces: usize,
    /// Whole-image outputs with a detected face left bare (skipped or filed
    /// under `--bare-faces CLASS`).
    pub bare_outputs: usize,
    /// Distinct outputs per variant (`none` for originals).
    pub outputs_per_variant: BTreeMap<String, usize>,
    /// Distinct outputs per class.
    pub outputs_per_class: BTreeMap<String, usize>,
    /// Lines of `failures.csv`.
    pub failures: usize,
    /// Originals copied because they could not be hard-linked (`--unmasked hardlink`).
    pub hardlink_fallbacks: usize,
    /// The shorter box side of the smallest face a detector (`hog`, `cnn`)
    /// found among the masked faces, in source pixels; `None` without such
    /// faces or with `--crop-size` (boxes are then in crop pixels).
    pub smallest_detected_face: Option<f32>,
    /// The annotations file written.
    pub annotations: PathBuf,
}

impl Summary {
    /// What `maskforge mask` prints at the end, one line each (no final
    /// newline): images and faces, the whole-image outputs left with a bare
    /// face and what became of them (`bare_faces`: `--bare-faces CLASS`,
    /// `None`: skipped), the outputs per variant and class, the failures and
    /// the rate over `seconds`.
    pub fn report(&self, seconds: f64, bare_faces: Option<&str>) -> String {
        let counts =
            |m: &BTreeMap<String, usize>| m.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(", ");
        let mut lines = vec![format!(
            "mask: {} images ({} processed now, {} already done), {} faces masked, {} faces under --min-face skipped",
            self.images, self.processed, self.skipped, self.faces_masked, self.small_faces
        )];
        if self.bare_outputs > 0 {
            let note = match bare_faces {
                None => "skipped (failures.csv; --bare-faces CLASS keeps them apart)".to_string(),
                Some(class) => format!("filed under {class}/"),
            };
            lines.push(format!("  {} whole-image outputs with a bare detected face: {note}", self.bare_outputs));
        }
        lines.push(format!("  outputs per variant: {}", counts(&self.outputs_per_variant)));
        lines.push(format!("  outputs per class:   {}", counts(&self.outputs_per_class)));
        lines.push(format!(
            "  {} failures (failures.csv), {:.2} images/s -> {}",
            self.failures,
            self.processed as f64 / seconds.max(1e-9),
            self.annotations.display()
        ));
        lines.join("\n")
    }

    fn new(
        rows: &[AnnotationRow],
        failures: &[Failure],
        (small_faces, bare_outputs): (usize, usize),
        (images, processed): (usize, usize),
        pipeline: &Pipeline,
        annotations: &Path,
    ) -> Summary {
        let mut per_variant: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut per_class: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut faces = BTreeSet::new();
        for r in rows {
            per_variant.entry(r.variant.clone()).or_default().insert(&r.output);
            per_class.entry(r.class.clone()).or_default().insert(&r.output);
            if !r.is_unmasked() {
                faces.insert((&r.source, r.face));
            }
        }
        let counts = |m: BTreeMap<String, BTreeSet<&str>>| m.into_iter().map(|(k, v)| (k, v.len())).collect();
        Summary {
            images,
            processed,
            skipped: images - processed,
            faces_masked: faces.len(),
            small_faces,
            bare_outputs,
            outputs_per_variant: counts(per_variant),
            outputs_per_class: counts(per_class),
            failures: failures.len(),
            hardlink_fallbacks: pipeline.hardlink_fallbacks(),
            smallest_detected_face: if pipeline.options().crop_size == 0 { smallest_detected_face(rows) } else { None },
            annotations: annotations.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maskforge_contracts::parse_image_list;

    #[test]
    fn a_listed_run_names_and_shards_as_a_walk_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("p")).unwrap();
        for f in ["p/a.jpg", "p/a.png", "p/b.jpg", "c.jpg", "c.bmp", "p/.a.webp", "p/a.txt"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let text = "p/a.jpg\np/b.jpg\nc.jpg\nmissing.jpg\n../x.jpg\nc.jpg\n";
        let list = parse_image_list(Path::new("list.txt"), text.as_bytes()).unwrap();
        let walked = Inputs::walk(root, &[], None, None, OutputFormat::Png);
        let listed = Inputs::listed(root, &list, None, None, OutputFormat::Png);
        let rels = |i: &Inputs| i.images.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>();
        assert_eq!(rels(&listed), ["c.jpg", "p/a.jpg", "p/b.jpg"]);
        let suffixed: BTreeSet<&String> = listed.ext_suffixed.iter().collect();
        assert_eq!(suffixed, BTreeSet::from([&"c.jpg".to_string(), &"p/a.jpg".to_string()]));
        assert!(listed.ext_suffixed.is_subset(&walked.ext_suffixed));
        let failed: Vec<&str> = listed.walk_failures.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(failed, ["missing.jpg", "list.txt:5"]);
        assert!(Inputs::listed(root, &list, None, None, OutputFormat::Same).ext_suffixed.is_empty());
        // Shards: the same share of each listed image as of the walked ones; failures in shard 1 only.
        for i in 1..=2 {
            let shard = Inputs::listed(root, &list, Some((i, 2)), None, OutputFormat::Same);
            let walk = Inputs::walk(root, &[], Some((i, 2)), None, OutputFormat::Same);
            assert!(shard.shard_sources.iter().all(|s| walk.shard_sources.contains(s)));
            assert_eq!(shard.walk_failures.is_empty(), i != 1);
        }
        assert_eq!(rels(&Inputs::listed(root, &list, None, Some(1), OutputFormat::Same)), ["c.jpg"]);
    }
}
