//! The 68-point shape predictor, with dlib's trees evaluated in Rust.
//!
//! dlib keeps every split list and every leaf of its 7,500 trees (15 cascade levels of 500) in a heap
//! allocation of its own, and a prediction adds one 136-float leaf of each
//! tree to the shape: it spends its time waiting for memory (4.4 ms a face
//! on a 2-core EPYC, 87% of `mask --faces crop`). Here a cascade level's
//! splits and leaves lie in flat arrays, cache-line aligned; the leaves of
//! all its trees are chosen first, then added with the next ones already
//! prefetched. Feature extraction and the mapping to image points stay dlib's
//! own code ([`ShapeFrame`]) and every leaf is added in dlib's order, so the
//! points are dlib's bit for bit (a test compares them on real photos).

use crate::ffi::{RawTree, ShapeFrame};
use dlib_face_recognition::ImageMatrix;
use std::os::raw::c_long;
use std::path::Path;

/// Floats in a 68-point shape (x, y per point).
const SHAPE_LEN: usize = 136;
/// Floats in a cache line.
const LINE_LEN: usize = 16;
/// Cache lines a leaf takes: the shape padded to whole lines, so each leaf
/// is exactly this many lines and no leaf straddles one line more.
const LEAF_LINES: usize = SHAPE_LEN.div_ceil(LINE_LEN);
/// How many trees ahead the leaves are prefetched.
const PREFETCH_AHEAD: usize = 8;

/// 16 floats on one 64-byte cache line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(64))]
struct Line([f32; LINE_LEN]);

/// A shape (or shape offset) padded to whole lines; the padding stays 0.
type PaddedShape = [Line; LEAF_LINES];

/// One test of a tree: feature pixel `a` minus feature pixel `b` above
/// `thresh` goes to the left child.
#[derive(Clone, Copy, Debug)]
struct Split {
    a: u32,
    b: u32,
    thresh: f32,
}

/// One cascade level: its trees, all of the model's depth.
struct Level {
    features: usize,
    trees: usize,
    /// `trees × splits_per_tree`, breadth first as dlib stores them.
    splits: Vec<Split>,
    /// `trees × leaves_per_tree` padded shapes.
    leaves: Vec<PaddedShape>,
}

/// The 68-point landmark model: loaded once, shared read-only by all
/// threads.
pub struct LandmarkModel {
    frame: ShapeFrame,
    initial: PaddedShape,
    splits_per_tree: usize,
    leaves_per_tree: usize,
    levels: Vec<Level>,
}

impl LandmarkModel {
    /// Reads a dlib shape predictor file (`shape_predictor_68_face_landmarks.dat`
    /// or any 68-point model of the same format). The error says what is
    /// wrong with the file.
    pub fn open(path: &Path) -> Result<Self, String> {
        let (frame, forests) = ShapeFrame::open(path)?;
        if frame.shape_len() != SHAPE_LEN {
            return Err(format!("a shape predictor of {} points, not 68", frame.shape_len() / 2));
        }
        let features = frame.features_per_level().ok_or("the feature pixels of the model are inconsistent")?;
        if features.len() != forests.len() {
            return Err(format!("{} cascade levels of trees but {} of feature pixels", forests.len(), features.len()));
        }
        let splits_per_tree = forests.iter().flatten().next().map_or(0, |t| t.thresh.len());
        let mut levels = Vec::with_capacity(forests.len());
        for (trees, features) in forests.into_iter().zip(features) {
            levels.push(Level::pack(trees, features, splits_per_tree)?);
        }
        let initial = pad(&frame.initial_shape());
        Ok(LandmarkModel { frame, initial, splits_per_tree, leaves_per_tree: splits_per_tree + 1, levels })
    }

    /// [`LandmarkModel::open`] through a cache of the packed model in
    /// `cache_dir` (none: no cache). dlib takes about 0.5 s to read its
    /// 100 MB file; the packed arrays read back in a few tens of
    /// milliseconds. The cache file is named by the model file's size,
    /// modification time and first bytes and by this code, and checksummed;
    /// anything that does not read back whole is loaded from the model file
    /// again and the cache rewritten (best effort). Writing it removes the
    /// packed models of other keys (another build, another model file)
    /// written over an hour ago (`maskforge_imageio::checked::remove_superseded`).
    pub fn open_cached(path: &Path, cache_dir: Option<&Path>) -> Result<Self, String> {
        let Some(cache) = cache_dir.and_then(|dir| cache_file(path, dir)) else { return Self::open(path) };
        if let Some(model) = maskforge_imageio::read_checked(&cache, CACHE_MAGIC).and_then(|f| Self::decode(f.body())) {
            return Ok(model);
        }
        let model = Self::open(path)?;
        if let Ok(body) = model.encode() {
            if maskforge_imageio::write_checked(&cache, CACHE_MAGIC, &body).is_ok() {
                maskforge_imageio::checked::remove_superseded(&cache, |name| {
                    name.starts_with("landmarks-") && name.ends_with(".packed")
                });
            }
        }
        Ok(model)
    }

    /// The body of the packed model's cache file (a
    /// `maskforge_imageio::checked` file): the frame in dlib's
    /// serialisation, the tree shape, then per level its trees' splits and
    /// unpadded leaves. Little-endian.
    fn encode(&self) -> Result<Vec<u8>, String> {
        let frame = self.frame.to_bytes()?;
        let mut out = Vec::with_capacity(frame.len() + self.levels.len() * 5_000_000);
        let put = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        put(&mut out, frame.len() as u64);
        out.extend_from_slice(&frame);
        put(&mut out, self.splits_per_tree as u64);
        put(&mut out, self.levels.len() as u64);
        for level in &self.levels {
            put(&mut out, level.features as u64);
            put(&mut out, level.trees as u64);
            for s in &level.splits {
                out.extend([s.a.to_le_bytes(), s.b.to_le_bytes(), s.thresh.to_bits().to_le_bytes()].concat());
            }
            for leaf in &level.leaves {
                out.extend(unpad(leaf).iter().flat_map(|v| v.to_le_bytes()));
            }
        }
        Ok(out)
    }

    /// The model of a cache file written by [`LandmarkModel::encode`], if
    /// it is whole.
    fn decode(body: &[u8]) -> Option<Self> {
        let mut r = Reader(body);
        let frame_len = r.u64()? as usize;
        let frame = ShapeFrame::from_bytes(r.take(frame_len)?).ok()?;
        let splits_per_tree = r.u64()? as usize;
        let leaves_per_tree = splits_per_tree.checked_add(1)?;
        let mut levels = Vec::new();
        for _ in 0..r.u64()? {
            let (features, trees) = (r.u64()? as usize, r.u64()? as usize);
            let split_bytes = r.take(trees.checked_mul(splits_per_tree)?.checked_mul(12)?)?;
            let splits = split_bytes
                .chunks_exact(12)
                .map(|c| Split { a: le_u32(&c[0..4]), b: le_u32(&c[4..8]), thresh: f32::from_bits(le_u32(&c[8..12])) })
                .collect::<Vec<_>>();
            if splits.iter().any(|s| s.a as usize >= features || s.b as usize >= features) {
                return None;
            }
            let leaf_bytes = r.take(trees.checked_mul(leaves_per_tree)?.checked_mul(SHAPE_LEN * 4)?)?;
            let leaves = leaf_bytes
                .chunks_exact(SHAPE_LEN * 4)
                .map(|leaf| pad(&leaf.chunks_exact(4).map(|v| f32::from_bits(le_u32(v))).collect::<Vec<_>>()))
                .collect();
            levels.push(Level { features, trees, splits, leaves });
        }
        let shape_ok = frame.shape_len() == SHAPE_LEN
            && frame.features_per_level().is_some_and(|f| f == levels.iter().map(|l| l.features).collect::<Vec<_>>());
        (r.0.is_empty() && shape_ok).then(|| LandmarkModel {
            initial: pad(&frame.initial_shape()),
            frame,
            splits_per_tree,
            leaves_per_tree,
            levels,
        })
    }

    /// The 68 points (image pixels, rounded as dlib rounds) for the face in
    /// the inclusive rectangle `(left, top, right, bottom)`.
    pub fn predict(&self, image: &ImageMatrix, rect: [c_long; 4]) -> Result<[[c_long; 2]; 68], String> {
        let mut shape = self.initial;
        let mut features = Vec::new();
        let mut chosen = Vec::new();
        for (index, level) in self.levels.iter().enumerate() {
            features.resize(level.features, 0.0);
            self.frame.features(image, rect, index, &unpad(&shape), &mut features)?;
            level.choose_leaves(&features, self.splits_per_tree, &mut chosen);
            level.add_leaves(&chosen, self.leaves_per_tree, &mut shape);
        }
        self.frame.to_points(rect, &unpad(&shape))
    }
}

/// Start of a packed-model cache file; a new layout gets a new one.
const CACHE_MAGIC: &[u8; 8] = b"MFLMK002";

/// The cache file for the model at `model` (see [`LandmarkModel::open_cached`]),
/// `None` when the model file cannot be read.
fn cache_file(model: &Path, dir: &Path) -> Option<std::path::PathBuf> {
    use std::io::Read;
    let meta = std::fs::metadata(model).ok()?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    let mut head = Vec::with_capacity(1 << 16);
    std::fs::File::open(model).ok()?.take(1 << 16).read_to_end(&mut head).ok()?;
    let mut key = format!("{} {}", meta.len(), modified.as_nanos()).into_bytes();
    key.extend_from_slice(&head);
    for code in CACHE_CODE {
        key.extend_from_slice(&maskforge_rng::stable_hash(code.as_bytes()).to_le_bytes());
    }
    Some(dir.join(format!("landmarks-{:016x}.packed", maskforge_rng::stable_hash(&key))))
}

/// The code whose changes invalidate cached models.
const CACHE_CODE: [&str; 2] = [include_str!("shape.rs"), include_str!("ffi.rs")];

/// Reads a cache file front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap_or_default())
}

impl Level {
    /// Packs one level's trees, checking that each is a full tree of the
    /// model's depth over this level's feature pixels.
    fn pack(trees: Vec<RawTree>, features: usize, splits_per_tree: usize) -> Result<Level, String> {
        let leaves_per_tree = splits_per_tree + 1;
        if !leaves_per_tree.is_power_of_two() {
            return Err(format!("trees of {splits_per_tree} splits are not full binary trees"));
        }
        let mut level = Level {
            features,
            trees: trees.len(),
            splits: Vec::with_capacity(trees.len() * splits_per_tree),
            leaves: Vec::with_capacity(trees.len() * leaves_per_tree),
        };
        for tree in trees {
            if tree.thresh.len() != splits_per_tree || tree.leaf_len != SHAPE_LEN {
                return Err("the trees of the model differ in depth or leaf size".into());
            }
            if tree.leaves.len() != leaves_per_tree * SHAPE_LEN {
                return Err("a tree of the model has the wrong number of leaves".into());
            }
            for ((&a, &b), &thresh) in tree.idx1.iter().zip(&tree.idx2).zip(&tree.thresh) {
                let index = |i: u64| u32::try_from(i).ok().filter(|&i| (i as usize) < features);
                let (Some(a), Some(b)) = (index(a), index(b)) else {
                    return Err(format!("a split reads feature pixel {} of {features}", a.max(b)));
                };
                level.splits.push(Split { a, b, thresh });
            }
            level.leaves.extend(tree.leaves.chunks_exact(SHAPE_LEN).map(pad));
        }
        Ok(level)
    }

    /// The leaf each tree ends in, dlib's walk: left child `2i + 1` when the
    /// split's test holds, right child `2i + 2` otherwise.
    fn choose_leaves(&self, features: &[f32], splits_per_tree: usize, chosen: &mut Vec<usize>) {
        chosen.clear();
        chosen.extend(self.splits.chunks_exact(splits_per_tree.max(1)).take(self.trees).map(|splits| {
            let mut i = 0;
            while i < splits_per_tree {
                let s = splits[i];
                i = if features[s.a as usize] - features[s.b as usize] > s.thresh { 2 * i + 1 } else { 2 * i + 2 };
            }
            i - splits_per_tree
        }));
        if splits_per_tree == 0 {
            chosen.resize(self.trees, 0);
        }
    }

    /// Adds the chosen leaves to `shape`, tree by tree (dlib's order, so the
    /// float sums are dlib's), prefetching the leaves a few trees ahead:
    /// they are scattered over tens of megabytes.
    fn add_leaves(&self, chosen: &[usize], leaves_per_tree: usize, shape: &mut PaddedShape) {
        let leaf = |tree: usize| tree * leaves_per_tree + chosen[tree];
        for tree in 0..chosen.len() {
            if let Some(ahead) = chosen.get(tree + PREFETCH_AHEAD).map(|_| leaf(tree + PREFETCH_AHEAD)) {
                prefetch(&self.leaves[ahead]);
            }
            for (sum, add) in shape.iter_mut().zip(&self.leaves[leaf(tree)]) {
                for (s, a) in sum.0.iter_mut().zip(&add.0) {
                    *s += a;
                }
            }
        }
    }
}

/// Asks the CPU to start loading `leaf` into cache.
#[inline(always)]
fn prefetch(leaf: &PaddedShape) {
    #[cfg(target_arch = "x86_64")]
    for line in leaf {
        // SAFETY: a prefetch is a hint; it reads nothing and cannot fault,
        // and the pointer is to a live line.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line as *const Line as *const i8)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = leaf;
}

fn pad(shape: &[f32]) -> PaddedShape {
    let mut out = [Line::default(); LEAF_LINES];
    for (i, &v) in shape.iter().take(SHAPE_LEN).enumerate() {
        out[i / LINE_LEN].0[i % LINE_LEN] = v;
    }
    out
}

fn unpad(shape: &PaddedShape) -> [f32; SHAPE_LEN] {
    let mut out = [0.0; SHAPE_LEN];
    for (i, v) in out.iter_mut().enumerate() {
        *v = shape[i / LINE_LEN].0[i % LINE_LEN];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::ShapePredictor;
    use crate::{to_matrix, LANDMARK_MODEL};
    use std::path::PathBuf;

    fn repo_dir(var: &str, fallback: &str) -> PathBuf {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(fallback))
    }

    #[test]
    fn padding_round_trips_and_keeps_the_padding_zero() {
        let shape: Vec<f32> = (0..SHAPE_LEN).map(|i| i as f32 * 0.5 - 3.0).collect();
        let padded = pad(&shape);
        assert_eq!(unpad(&padded).to_vec(), shape);
        assert!(padded[LEAF_LINES - 1].0[SHAPE_LEN % LINE_LEN..].iter().all(|&v| v == 0.0));
        assert_eq!(std::mem::size_of::<PaddedShape>(), LEAF_LINES * 64);
    }

    /// A depth-2 tree over 4 features: the walk must follow dlib's children.
    #[test]
    fn the_walk_follows_dlibs_children() {
        let level = Level {
            features: 4,
            trees: 1,
            // root: f0 - f1 > 0 → left (node 1: f2 - f3 > 10), else right (node 2: f3 - f2 > 0).
            splits: vec![
                Split { a: 0, b: 1, thresh: 0.0 },
                Split { a: 2, b: 3, thresh: 10.0 },
                Split { a: 3, b: 2, thresh: 0.0 },
            ],
            leaves: Vec::new(),
        };
        let mut chosen = Vec::new();
        for (features, leaf) in [
            ([5.0, 1.0, 30.0, 5.0], 0), // left, left
            ([5.0, 1.0, 10.0, 5.0], 1), // left, right
            ([1.0, 5.0, 0.0, 9.0], 2),  // right, left
            ([1.0, 1.0, 9.0, 0.0], 3),  // equal is not above: right, right
        ] {
            level.choose_leaves(&features, 3, &mut chosen);
            assert_eq!(chosen, [leaf], "{features:?}");
        }
    }

    /// The packed trees give dlib's own points, bit for bit, on real photos
    /// and on boxes that are off, too small, or partly outside the image.
    #[test]
    fn predictions_are_dlibs_own_on_real_photos() {
        let models = repo_dir("MASKFORGE_MODELS", "models");
        let samples = repo_dir("MASKFORGE_SAMPLES", "data/samples");
        let path = models.join(LANDMARK_MODEL);
        let ours = LandmarkModel::open(&path).unwrap();
        let dlib = ShapePredictor::open(&path).unwrap();
        let mut compared = 0;
        for name in ["obama.jpg", "biden.jpg", "obama_partial_face.jpg"] {
            let img = maskforge_imageio::load_rgb(&samples.join(name), Default::default()).unwrap();
            let m = to_matrix(&img);
            let (w, h) = (img.width() as c_long, img.height() as c_long);
            // A grid of boxes over the photo at three sizes, and boxes
            // that are tiny or partly outside the image.
            let mut boxes = vec![(w / 3, h / 3, 40), (-w / 4, h / 2, w / 2), (w - 30, 5, 90), (0, 0, w.min(h))];
            for side in [w.min(h) / 5, w.min(h) / 3, w.min(h) / 2] {
                for i in 0..4 {
                    for j in 0..4 {
                        boxes.push((i * (w - side) / 3, j * (h - side) / 3, side));
                    }
                }
            }
            for (l, t, side) in boxes {
                let rect = [l, t, l + side - 1, t + side - 1];
                assert_eq!(ours.predict(&m, rect).unwrap(), dlib.predict(&m, rect).unwrap(), "{name} {rect:?}");
                compared += 1;
            }
        }
        assert_eq!(compared, 3 * 52);
    }

    #[test]
    fn a_cached_model_predicts_as_the_model_file_does_and_a_damaged_cache_is_rebuilt() {
        let models = repo_dir("MASKFORGE_MODELS", "models");
        let samples = repo_dir("MASKFORGE_SAMPLES", "data/samples");
        let path = models.join(LANDMARK_MODEL);
        let dir = tempfile::tempdir().unwrap();
        let dlib = ShapePredictor::open(&path).unwrap();
        // Another key's packed model of two hours ago goes when this one is written; a recent one stays.
        let aged = |name: &str, hours: u64| {
            let file = dir.path().join(name);
            std::fs::write(&file, b"x").unwrap();
            let when = std::time::SystemTime::now() - std::time::Duration::from_secs(hours * 3600);
            std::fs::File::options().write(true).open(&file).unwrap().set_modified(when).unwrap();
            file
        };
        let (old, recent) =
            (aged("landmarks-0000000000000000.packed", 2), aged("landmarks-0000000000000001.packed", 0));
        let first = LandmarkModel::open_cached(&path, Some(dir.path())).unwrap();
        assert!(!old.exists() && recent.exists());
        let file = cache_file(&path, dir.path()).unwrap();
        let bytes = std::fs::read(&file).expect("the cache file was written");
        let whole = maskforge_imageio::read_checked(&file, CACHE_MAGIC).expect("the cache file reads back");
        let cached = LandmarkModel::decode(whole.body()).expect("the cache file decodes");

        let img = maskforge_imageio::load_rgb(&samples.join("biden.jpg"), Default::default()).unwrap();
        let m = to_matrix(&img);
        for rect in [[200, 150, 500, 450], [0, 0, 120, 120], [-50, 300, 250, 600]] {
            let want = dlib.predict(&m, rect).unwrap();
            assert_eq!(first.predict(&m, rect).unwrap(), want, "{rect:?}");
            assert_eq!(cached.predict(&m, rect).unwrap(), want, "{rect:?}");
        }

        // A flipped byte or a cut file is not used; opening rebuilds the file.
        let mut damaged = bytes.clone();
        damaged[bytes.len() / 2] ^= 1;
        std::fs::write(&file, &bytes[..bytes.len() - 9]).unwrap();
        assert!(maskforge_imageio::read_checked(&file, CACHE_MAGIC).is_none());
        std::fs::write(&file, &damaged).unwrap();
        assert!(maskforge_imageio::read_checked(&file, CACHE_MAGIC).is_none());
        LandmarkModel::open_cached(&path, Some(dir.path())).unwrap();
        assert!(std::fs::read(&file).unwrap() == bytes, "the damaged cache file was not rewritten");
    }

    #[test]
    fn a_truncated_model_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::read(repo_dir("MASKFORGE_MODELS", "models").join(LANDMARK_MODEL)).unwrap();
        let cut = dir.path().join(LANDMARK_MODEL);
        std::fs::write(&cut, &real[..real.len() / 2]).unwrap();
        let err = LandmarkModel::open(&cut).err().expect("half a model loaded");
        assert!(!err.is_empty());
    }
}
