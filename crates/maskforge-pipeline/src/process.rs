//! One source image, start to finish: decode, faces from the
//! [`FaceSource`], then for each chosen wear variant a mask on every face
//! and one output (or one crop per face), its segmentation mask and its
//! annotation rows; then the original as the unmasked class. Random choices
//! come from `(seed, relative path, face index)`, so the result does not
//! depend on threads or order.

use crate::framing;
use crate::naming::{with_draw, with_framing, Naming, BARE_KEY, UNMASKED_KEY};
use crate::options::{MaskOptions, UnmaskedMode, VariantMode};
use crate::record::Record;
use crate::source::{FaceSource, FoundFaces};
use crate::PipelineError;
use image::{GrayImage, RgbImage};
use maskforge_contracts::mask_files::SourceStamp;
use maskforge_contracts::{polygon_text, AnnotationRow, FaceColumns, UNMASKED_VARIANT};
use maskforge_face::crop::CropTransform;
use maskforge_face::{Face, FaceMethod, Point};
use maskforge_imageio::load_rgb_budgeted;
use maskforge_mask::sheet::{thumbnail, SheetItem};
use maskforge_mask::{MaskStyle, MaskVariant, Placement, SplitMix64, Synthesizer};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Side of a preview thumbnail, in pixels.
pub(crate) const THUMBNAIL: u32 = 160;

/// Where one image's time went (the benchmark reads it).
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimes {
    /// Reading and decoding the source.
    pub decode: Duration,
    /// The face source (detection, landmarks).
    pub faces: Duration,
    /// Placing, warping and blending the masks.
    pub masks: Duration,
    /// Cropping, encoding and writing outputs, segmentation masks and originals.
    pub write: Duration,
}

impl StepTimes {
    /// The time of all four steps.
    pub fn total(&self) -> Duration {
        self.decode + self.faces + self.masks + self.write
    }

    /// Adds another image's (or worker's) times.
    pub fn add(&mut self, o: &StepTimes) {
        self.decode += o.decode;
        self.faces += o.faces;
        self.masks += o.masks;
        self.write += o.write;
    }
}

/// The result of [`Pipeline::process`].
#[derive(Default)]
pub struct ImageOutcome {
    /// The image's journal line: outputs, annotation rows, failures.
    pub record: Record,
    /// Preview thumbnails of the outputs; only when nothing is written.
    pub thumbnails: Vec<SheetItem>,
    /// Time spent on the image, by step.
    pub times: StepTimes,
}

/// The masks of one variant on the faces of an image.
struct Masked {
    /// Per face (all the same for whole-image outputs).
    variants: Vec<MaskVariant>,
    image: RgbImage,
    seg: Option<GrayImage>,
    /// Per face; `None` where the mask could not be placed (the face is bare).
    placements: Vec<Option<Placement>>,
    /// Detected faces left bare in `image`: not masked (under `--min-face`,
    /// not the largest) or not placeable.
    bare: usize,
    /// Which of the `--draws` this is (0: the output a single draw makes).
    draw: u32,
}

/// A face as it appears in an output: in the source's own coordinates
/// (whole images) or mapped into a face crop.
struct FaceInOutput<'a> {
    index: usize,
    face: &'a Face,
    method: FaceMethod,
    crop: Option<&'a CropTransform>,
}

impl<'a> FaceInOutput<'a> {
    /// Face `index` of a whole-image output.
    fn in_image(index: usize, face: &'a Face, method: FaceMethod) -> Self {
        FaceInOutput { index, face, method, crop: None }
    }

    /// Face `index` in its crop, placed by `map`.
    fn in_crop(index: usize, face: &'a Face, method: FaceMethod, map: &'a CropTransform) -> Self {
        FaceInOutput { index, face, method, crop: Some(map) }
    }

    fn to_output(&self, p: Point) -> Point {
        self.crop.map_or(p, |map| map.to_crop(p))
    }

    fn columns(&self) -> FaceColumns {
        let b = self.crop.map_or(self.face.bbox, |map| map.box_to_crop(&self.face.bbox));
        let points: [(f32, f32); 68] = std::array::from_fn(|k| {
            let q = self.to_output(self.face.landmarks.0[k]);
            (q.x, q.y)
        });
        FaceColumns::new([b.left, b.top, b.right, b.bottom], self.face.score, &points).with_method(self.method.as_str())
    }
}

/// One output file of a source.
struct Target<'a> {
    source: &'a str,
    output: String,
    variant: &'a str,
    class: &'a str,
}

impl Target<'_> {
    fn row(&self, seed: u64, style: Option<&MaskStyle>, face: Option<&FaceInOutput>, polygon: String) -> AnnotationRow {
        AnnotationRow {
            source: self.source.to_string(),
            output: self.output.clone(),
            face: face.map(|f| f.index),
            variant: self.variant.to_string(),
            class: self.class.to_string(),
            template: style.map(|s| s.template.name().to_string()).unwrap_or_default(),
            colour: style.map(|s| s.colour.name()).unwrap_or_default(),
            seed,
            geometry: face.map(FaceInOutput::columns),
            mask_polygon: polygon,
        }
    }
}

/// The label of a preview thumbnail: class (variant), template, colour.
pub(crate) fn sheet_label(class: &str, variant: &str, style: Option<(&str, String)>) -> String {
    let first = if class == variant { class.to_string() } else { format!("{class} ({variant})") };
    match style {
        Some((template, colour)) => format!("{first}\n{template} {colour}"),
        None => first,
    }
}

fn style_label(class: &str, variant: &str, style: &MaskStyle) -> String {
    sheet_label(class, variant, Some((style.template.name(), style.colour.name())))
}

/// Nearest-neighbour crop of a segmentation mask, with the same geometry as the image crop.
fn crop_gray(map: &CropTransform, seg: &GrayImage) -> GrayImage {
    let size = map.size();
    GrayImage::from_fn(size, size, |x, y| {
        let s = map.to_source(Point::new(x as f32 + 0.5, y as f32 + 0.5));
        let (sx, sy) = (s.x.floor(), s.y.floor());
        if sx >= 0.0 && sy >= 0.0 && (sx as u32) < seg.width() && (sy as u32) < seg.height() {
            *seg.get_pixel(sx as u32, sy as u32)
        } else {
            image::Luma([0])
        }
    })
}

/// The mask stage for one set of options: shared by all worker threads.
#[derive(Debug)]
pub struct Pipeline {
    opts: MaskOptions,
    synth: Synthesizer,
    naming: Naming,
    hardlink_fallbacks: AtomicUsize,
}

impl Pipeline {
    /// `ext_suffixed`: see [`crate::extension_collisions`] (empty when the
    /// output format is `Same`). The options are checked ([`MaskOptions::check`]).
    pub fn new(
        opts: MaskOptions,
        synth: Synthesizer,
        ext_suffixed: HashSet<String>,
    ) -> Result<Pipeline, PipelineError> {
        opts.check()?;
        let mut naming =
            Naming::new(&opts.variants, opts.mode, &opts.class_map, opts.unmasked, opts.format, ext_suffixed);
        if let Some(class) = &opts.bare_faces {
            let per_image = if opts.mode == VariantMode::Each { opts.variants.len() } else { 1 };
            naming = naming.with_bare_class(class, per_image);
        }
        Ok(Pipeline { opts, synth, naming, hardlink_fallbacks: AtomicUsize::new(0) })
    }

    /// The options the pipeline was built with.
    pub fn options(&self) -> &MaskOptions {
        &self.opts
    }

    /// The mask synthesizer: templates, colours, textures, blending.
    pub fn synthesizer(&self) -> &Synthesizer {
        &self.synth
    }

    /// How outputs are named and filed into classes.
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// Originals copied because a hard link was not possible.
    pub fn hardlink_fallbacks(&self) -> usize {
        self.hardlink_fallbacks.load(Ordering::Relaxed)
    }

    /// Everything for one source image. Bad images (undecodable, no face, a
    /// variant that cannot be placed) are failures in the record; only a
    /// failed write is an error.
    pub fn process(&self, source: &mut dyn FaceSource, path: &Path, rel: &str) -> Result<ImageOutcome, PipelineError> {
        let mut outcome = ImageOutcome::default();
        let rec = Record { source: rel.to_string(), stamp: SourceStamp::of(path), ..Default::default() };
        let start = Instant::now();
        let img = match load_rgb_budgeted(path, self.opts.limits, &self.opts.decode_budget) {
            Ok(img) => img,
            Err(e) => {
                outcome.record = Record { retry: true, ..rec.failed(e.reason()) };
                return Ok(outcome);
            }
        };
        outcome.times.decode = start.elapsed();
        let start = Instant::now();
        let found = source.find_faces(&img, path, rel, self.opts.faces);
        outcome.times.faces = start.elapsed();
        let found = match found {
            Ok(found) => found,
            Err(reason) => {
                outcome.record = rec.failed(reason);
                return Ok(outcome);
            }
        };
        outcome.record = Record { faces: found.faces.len(), small_faces: found.small, ..rec };
        if found.faces.is_empty() {
            let reason = if found.found == 0 {
                "no face found".to_string()
            } else {
                let min = self.opts.faces.min_face;
                format!("no face of at least {min} px (--min-face); {} smaller found", found.small)
            };
            outcome.record = outcome.record.failed(reason);
            return Ok(outcome);
        }
        self.mask_faces(&img, &found, path, rel, &mut outcome)?;
        Ok(outcome)
    }

    /// The variants of an image with faces, then its original.
    fn mask_faces(
        &self,
        img: &RgbImage,
        found: &FoundFaces,
        path: &Path,
        rel: &str,
        outcome: &mut ImageOutcome,
    ) -> Result<(), PipelineError> {
        let mut masked_any = false;
        for draw in 0..self.opts.draws {
            masked_any |= self.mask_draw(img, found, rel, draw, outcome)?;
        }
        // The original, as the unmasked class (only where a face was masked, so the
        // class holds the same kind of photos as the masked ones).
        if self.opts.unmasked != UnmaskedMode::None && masked_any && self.opts.write {
            let start = Instant::now();
            self.emit_original(img, found, path, rel, &mut outcome.record)?;
            outcome.times.write += start.elapsed();
        }
        Ok(())
    }

    /// Every variant of draw `draw` of an image's masks; whether any face
    /// took one.
    fn mask_draw(
        &self,
        img: &RgbImage,
        found: &FoundFaces,
        rel: &str,
        draw: u32,
        outcome: &mut ImageOutcome,
    ) -> Result<bool, PipelineError> {
        let (seed, faces) = (self.opts.seed, &found.faces);
        // Styles per face, from the face's own stream; the variants' placements
        // fork the stream as it is after the style was drawn. Later draws fork
        // the face's stream first, so the first draw is what a single one makes.
        let face_rng = |i: usize| match draw {
            0 => SplitMix64::for_face(seed, rel, i),
            d => SplitMix64::for_face(seed, rel, i).fork(&format!("draw{d}")),
        };
        let mut face_rngs: Vec<SplitMix64> = (0..faces.len()).map(face_rng).collect();
        let styles: Vec<MaskStyle> =
            face_rngs.iter_mut().map(|r| self.synth.choose_style(r)).collect::<Result<_, _>>()?;
        let mut masked_any = false;
        for vs in self.face_variants(rel, faces.len()) {
            let start = Instant::now();
            let masked = self.draw_variants(img, found, &vs, &styles, &face_rngs, &mut outcome.record);
            outcome.times.masks += start.elapsed();
            let Some(mut masked) = masked else { continue };
            masked.draw = draw;
            masked_any = true;
            let start = Instant::now();
            if self.opts.crop_size == 0 {
                self.emit_whole(rel, &masked, found, &styles, outcome)?;
            } else {
                self.emit_crops(rel, &masked, found, &styles, outcome)?;
            }
            outcome.times.write += start.elapsed();
        }
        Ok(masked_any)
    }

    /// The masked copies an image gets, each as a variant per face: every
    /// listed variant on all faces (`each`), or one drawn from the image's
    /// stream (`random`). With `random` and crops, each face after the first
    /// draws its own from its own stream, since each crop is its own sample;
    /// a whole image keeps one variant so that its one class is true.
    fn face_variants(&self, rel: &str, faces: usize) -> Vec<Vec<MaskVariant>> {
        let variants = &self.opts.variants;
        match self.opts.mode {
            VariantMode::Each => variants.iter().map(|(v, _)| vec![*v; faces]).collect(),
            VariantMode::Random => {
                let weights: Vec<f32> = variants.iter().map(|(_, w)| *w).collect();
                let first = variants[SplitMix64::for_image(self.opts.seed, rel).weighted(&weights).unwrap_or(0)].0;
                let mut per_face = vec![first; faces];
                if self.opts.crop_size > 0 {
                    for (i, v) in per_face.iter_mut().enumerate().skip(1) {
                        let mut rng = SplitMix64::for_face(self.opts.seed, rel, i).fork("variant");
                        *v = variants[rng.weighted(&weights).unwrap_or(0)].0;
                    }
                }
                vec![per_face]
            }
        }
    }

    /// Masks of variant `vs[i]` on every face `i` that can take one; a face
    /// that cannot is a failure line and stays bare. `None` when no face could.
    fn draw_variants(
        &self,
        img: &RgbImage,
        found: &FoundFaces,
        vs: &[MaskVariant],
        styles: &[MaskStyle],
        face_rngs: &[SplitMix64],
        rec: &mut Record,
    ) -> Option<Masked> {
        let mut image = img.clone();
        let mut seg = self.opts.seg_dir.as_ref().map(|_| GrayImage::new(img.width(), img.height()));
        let faces = &found.faces;
        let mut placements = Vec::with_capacity(faces.len());
        for (i, face) in faces.iter().enumerate() {
            let v = vs[i];
            let mut rng = face_rngs[i].fork(v.as_str());
            match self.synth.apply(&mut image, &face.landmarks, v, &styles[i], &mut rng, seg.as_mut()) {
                Ok(p) => placements.push(Some(p)),
                Err(e) => {
                    rec.failures.push((rec.source.clone(), format!("{v}: face {i}: {e}")));
                    placements.push(None);
                }
            }
        }
        let unplaced = placements.iter().filter(|p| p.is_none()).count();
        // Bare: not placeable, or found but not to be masked (small, not the largest).
        let bare = unplaced + found.found.saturating_sub(faces.len());
        (unplaced < faces.len()).then_some(Masked { variants: vs.to_vec(), image, seg, placements, bare, draw: 0 })
    }

    /// One output for all faces of a variant.
    fn emit_whole(
        &self,
        rel: &str,
        m: &Masked,
        found: &FoundFaces,
        styles: &[MaskStyle],
        outcome: &mut ImageOutcome,
    ) -> Result<(), PipelineError> {
        let v = m.variants[0].as_str();
        // A bare face inside an image filed as masked would be a wrong label.
        let class = match (m.bare, &self.opts.bare_faces) {
            (0, _) => self.naming.class_of(v),
            (n, None) => {
                let why = format!(
                    "{v}: not written: {n} detected face(s) would stay bare in it (under --min-face, not the \
                     largest, or not placeable); --bare-faces CLASS files such images apart"
                );
                outcome.record.failures.push((rel.to_string(), why));
                outcome.record.bare_outputs += 1;
                return Ok(());
            }
            (_, Some(_)) => {
                outcome.record.bare_outputs += 1;
                self.naming.class_of(BARE_KEY)
            }
        };
        let output = with_draw(self.naming.output_rel(rel, class, v, None, false), m.draw);
        let target = Target { source: rel, output, variant: v, class };
        if self.opts.write {
            self.write_image(&m.image, &target.output)?;
            if let Some(seg) = &m.seg {
                self.write_seg(seg, &target.output)?;
            }
        } else {
            let label = style_label(class, v, &styles[0]);
            let thumbnail = thumbnail(&m.image, Some(found.faces[0].bbox), THUMBNAIL);
            outcome.thumbnails.push(SheetItem { thumbnail, label });
        }
        for (i, (face, p)) in found.faces.iter().zip(&m.placements).enumerate() {
            let Some(p) = p else { continue };
            let f = FaceInOutput::in_image(i, face, found.method);
            let polygon = polygon_text(p.polygon.iter().map(|q| (q.x, q.y)));
            outcome.record.rows.push(target.row(self.opts.seed, Some(&styles[i]), Some(&f), polygon));
        }
        outcome.record.outputs.push(target.output);
        Ok(())
    }

    /// One crop per face of a variant.
    fn emit_crops(
        &self,
        rel: &str,
        m: &Masked,
        found: &FoundFaces,
        styles: &[MaskStyle],
        outcome: &mut ImageOutcome,
    ) -> Result<(), PipelineError> {
        for (i, (face, p)) in found.faces.iter().zip(&m.placements).enumerate() {
            // A face that could not take the mask gets no crop (its failure is recorded).
            let Some(p) = p else { continue };
            let v = m.variants[i].as_str();
            let class = self.naming.class_of(v);
            let named = with_draw(self.naming.output_rel(rel, class, v, Some(i), false), m.draw);
            for (k, map) in self.crop_windows(rel, i, face) {
                let crop = map.apply(&m.image);
                let target = Target { source: rel, output: with_framing(named.clone(), k), variant: v, class };
                if self.opts.write {
                    self.write_image(&crop, &target.output)?;
                    if let Some(seg) = &m.seg {
                        self.write_seg(&crop_gray(&map, seg), &target.output)?;
                    }
                } else {
                    let label = style_label(class, v, &styles[i]);
                    outcome.thumbnails.push(SheetItem { thumbnail: thumbnail(&crop, None, THUMBNAIL), label });
                }
                let f = FaceInOutput::in_crop(i, face, found.method, &map);
                let polygon = polygon_text(p.polygon.iter().map(|&q| f.to_output(q)).map(|q| (q.x, q.y)));
                outcome.record.rows.push(target.row(self.opts.seed, Some(&styles[i]), Some(&f), polygon));
                outcome.record.outputs.push(target.output);
            }
        }
        Ok(())
    }

    /// The crop windows of face `i` of source `rel`, with their framing
    /// index: the standard crop, then `--framings` − 1 drawn ones, the same
    /// for every output of the face (masked and unmasked alike).
    fn crop_windows(&self, rel: &str, i: usize, face: &Face) -> impl Iterator<Item = (u32, CropTransform)> + '_ {
        let base = CropTransform::for_face(face, self.opts.crop_size, self.opts.crop_margin);
        let (seed, rel) = (self.opts.seed, rel.to_string());
        (0..self.opts.framings).map(move |k| (k, framing::framed(base, seed, &rel, i, k)))
    }

    /// The unmasked original: the file itself (linked or copied), or a crop per face.
    fn emit_original(
        &self,
        img: &RgbImage,
        found: &FoundFaces,
        path: &Path,
        rel: &str,
        rec: &mut Record,
    ) -> Result<(), PipelineError> {
        let class = self.naming.class_of(UNMASKED_KEY);
        let seed = self.opts.seed;
        if self.opts.crop_size == 0 {
            // Re-encoded originals are named (and so encoded) as their masked siblings.
            let keep_ext = self.opts.unmasked != UnmaskedMode::Encode;
            let output = self.naming.output_rel(rel, class, UNMASKED_KEY, None, keep_ext);
            let target = Target { source: rel, output, variant: UNMASKED_VARIANT, class };
            if self.opts.unmasked == UnmaskedMode::Encode {
                self.write_image(img, &target.output)?;
            } else {
                self.link_original(path, &target.output)?;
            }
            rec.rows.push(target.row(seed, None, None, String::new()));
            rec.outputs.push(target.output);
            return Ok(());
        }
        for (i, face) in found.faces.iter().enumerate() {
            let named = self.naming.output_rel(rel, class, UNMASKED_KEY, Some(i), false);
            for (k, map) in self.crop_windows(rel, i, face) {
                let crop = map.apply(img);
                let target =
                    Target { source: rel, output: with_framing(named.clone(), k), variant: UNMASKED_VARIANT, class };
                self.write_image(&crop, &target.output)?;
                let f = FaceInOutput::in_crop(i, face, found.method, &map);
                rec.rows.push(target.row(seed, None, Some(&f), String::new()));
                rec.outputs.push(target.output);
            }
        }
        Ok(())
    }

    /// The path of output `rel` under `root`, checked: a class folder that is
    /// a symlink leading out of OUT (into the input, say) is never written
    /// through.
    fn output_path(root: &Path, rel: &Path) -> Result<PathBuf, PipelineError> {
        Ok(maskforge_imageio::confined(root, rel)?)
    }

    fn write_image(&self, img: &RgbImage, rel: &str) -> Result<(), PipelineError> {
        let path = Self::output_path(&self.opts.out, Path::new(rel))?;
        maskforge_imageio::save_rgb_atomic(img, &path, self.opts.quality).map_err(PipelineError::io(&path))
    }

    fn write_seg(&self, seg: &GrayImage, rel: &str) -> Result<(), PipelineError> {
        let Some(dir) = &self.opts.seg_dir else { return Ok(()) };
        let path = Self::output_path(dir, &Path::new(rel).with_extension("png"))?;
        let mut bytes = Vec::new();
        seg.write_with_encoder(image::codecs::png::PngEncoder::new(&mut bytes))
            .map_err(|source| PipelineError::Encode { path: path.clone(), source })?;
        maskforge_imageio::write_atomic(&path, &bytes).map_err(PipelineError::io(&path))
    }

    /// Places the original file in the unmasked class, atomically.
    fn link_original(&self, src: &Path, rel: &str) -> Result<(), PipelineError> {
        let target = Self::output_path(&self.opts.out, Path::new(rel))?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(PipelineError::io(parent))?;
        }
        let copy = || -> Result<(), PipelineError> {
            let bytes = std::fs::read(src).map_err(PipelineError::io(src))?;
            maskforge_imageio::write_atomic(&target, &bytes).map_err(PipelineError::io(&target))
        };
        let tmp = maskforge_imageio::temp_path_for(&target, "link");
        let _ = std::fs::remove_file(&tmp);
        match self.opts.unmasked {
            UnmaskedMode::None | UnmaskedMode::Encode => return Ok(()),
            UnmaskedMode::Bytes => return copy(),
            UnmaskedMode::Hardlink => {
                if std::fs::hard_link(src, &tmp).is_err() {
                    // Another file system, or links not allowed: copy instead.
                    self.hardlink_fallbacks.fetch_add(1, Ordering::Relaxed);
                    return copy();
                }
            }
            UnmaskedMode::Symlink => {
                let abs = src.canonicalize().map_err(PipelineError::io(src))?;
                #[cfg(unix)]
                std::os::unix::fs::symlink(&abs, &tmp).map_err(PipelineError::io(&tmp))?;
                #[cfg(not(unix))]
                std::fs::copy(&abs, &tmp).map_err(PipelineError::io(&tmp))?;
            }
        }
        std::fs::rename(&tmp, &target).map_err(PipelineError::io(&target))
    }
}
