//! The C++ side: dlib's HOG and CNN (MMOD) face detectors called so that they
//! return each detection's score (dlib-face-recognition returns rectangles
//! only), and the 68-point shape predictor. Every call catches C++
//! exceptions and turns them into `Err(message)`: an exception unwinding
//! into Rust through `extern "C"` would abort the process (or worse).
//! Image matrices come from dlib-face-recognition.

use cpp::{cpp, cpp_class};
use dlib_face_recognition::ImageMatrix;
use std::ffi::{c_char, CStr, CString};
use std::os::raw::c_long;

/// Room for a C++ exception's `what()`, cut to fit.
const ERROR_LEN: usize = 512;

/// The message the C++ side wrote into `buf`.
fn error_message(buf: &[u8; ERROR_LEN]) -> String {
    CStr::from_bytes_until_nul(buf).map(|m| m.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Runs `call(err)`, a C++ call that catches every exception: its `false`
/// is the exception's message, which it wrote into `err`.
fn checked(call: impl FnOnce(*mut c_char) -> bool) -> Result<(), String> {
    let mut err = [0u8; ERROR_LEN];
    if call(err.as_mut_ptr() as *mut c_char) {
        Ok(())
    } else {
        Err(error_message(&err))
    }
}

/// Runs `load(filename, err)`, a C++ reader of the model file at `path`
/// (see [`checked`]).
fn load_file(path: &std::path::Path, load: impl FnOnce(*const c_char, *mut c_char) -> bool) -> Result<(), String> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    checked(|err| load(cpath.as_ptr(), err))
}

cpp! {{
    #include <dlib/dnn.h>
    #include <dlib/image_processing/frontal_face_detector.h>
    #include <dlib/image_transforms.h>
    #include <dlib/image_processing/shape_predictor.h>
    #include <cstring>
    #include <sstream>
    #include <stdexcept>
    #include <exception>

    // Copies the current exception's message into `buf` (ERROR_LEN bytes).
    static void mf_store_error(char* buf) {
        const char* what = "unknown C++ exception";
        try { throw; } catch (const std::exception& e) { what = e.what(); } catch (...) {}
        std::strncpy(buf, what, 511);
        buf[511] = 0;
    }

    // Runs `body`; false with its exception's message in `err` if it throws.
    template <typename F> static bool mf_catching(char* err, F body) {
        try {
            body();
            return true;
        } catch (...) {
            mf_store_error(err);
            return false;
        }
    }

    // Reads `item` from a dlib model file; a C++ exception goes into `err`.
    template <typename T> static bool mf_deserialize_file(const char* filename, T* item, char* err) {
        return mf_catching(err, [&] { dlib::deserialize(filename) >> *item; });
    }

        // The MMOD face detector network of dlib's tools/python/src/cnn_face_detector.cpp.
    template <long num_filters, typename SUBNET> using mf_con5d = dlib::con<num_filters,5,5,2,2,SUBNET>;
    template <long num_filters, typename SUBNET> using mf_con5  = dlib::con<num_filters,5,5,1,1,SUBNET>;
    template <typename SUBNET> using mf_downsampler = dlib::relu<dlib::affine<mf_con5d<32, dlib::relu<dlib::affine<mf_con5d<32, dlib::relu<dlib::affine<mf_con5d<16,SUBNET>>>>>>>>>;
    template <typename SUBNET> using mf_rcon5 = dlib::relu<dlib::affine<mf_con5<45,SUBNET>>>;
    using mf_cnn_net = dlib::loss_mmod<dlib::con<1,9,9,1,1,mf_rcon5<mf_rcon5<mf_rcon5<mf_downsampler<dlib::input_rgb_image_pyramid<dlib::pyramid_down<6>>>>>>>>;

    struct mf_detection { double score; long left; long top; long right; long bottom; };

    // A shape predictor file read in parts: what dlib's own `shape_predictor`
    // keeps private. The forests are copied into Rust's packed layout and
    // freed; the rest stays here for dlib's own feature extraction.
    typedef std::vector<std::vector<dlib::impl::regression_tree>> mf_forests;
    struct mf_shape_frame {
        dlib::matrix<float,0,1> initial_shape;
        std::vector<std::vector<unsigned long>> anchor_idx;
        std::vector<std::vector<dlib::vector<float,2>>> deltas;
    };
    struct mf_shape_file { mf_shape_frame frame; mf_forests forests; };
    // The layout of dlib::deserialize(shape_predictor&), version 1.
    inline void deserialize(mf_shape_file& item, std::istream& in) {
        int version = 0;
        dlib::deserialize(version, in);
        if (version != 1)
            throw dlib::serialization_error("Unexpected version found while deserializing dlib::shape_predictor.");
        dlib::deserialize(item.frame.initial_shape, in);
        dlib::deserialize(item.forests, in);
        dlib::deserialize(item.frame.anchor_idx, in);
        dlib::deserialize(item.frame.deltas, in);
    }
    static dlib::matrix<float,0,1> mf_shape_matrix(const float* shape, long len) {
        dlib::matrix<float,0,1> m(len);
        for (long i = 0; i < len; ++i) m(i) = shape[i];
        return m;
    }
}}

cpp_class!(unsafe struct HogInner as "dlib::frontal_face_detector");
cpp_class!(unsafe struct CnnInner as "mf_cnn_net");
cpp_class!(unsafe struct RawDetections as "std::vector<mf_detection>");
#[cfg(test)]
cpp_class!(unsafe struct ShapeInner as "dlib::shape_predictor");
cpp_class!(unsafe struct FrameInner as "mf_shape_frame");
cpp_class!(unsafe struct ShapeFileInner as "mf_shape_file");

/// Mirrors `mf_detection`: one dlib detection, in the pixels of the image
/// dlib ran on, its rectangle inclusive (dlib's convention).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RawDetection {
    /// HOG's SVM score, or the CNN's detection confidence.
    pub score: f64,
    /// Left column, inclusive.
    pub left: c_long,
    /// Top row, inclusive.
    pub top: c_long,
    /// Right column, inclusive.
    pub right: c_long,
    /// Bottom row, inclusive.
    pub bottom: c_long,
}

impl RawDetections {
    fn to_vec(&self) -> Vec<RawDetection> {
        let len =
            unsafe { cpp!([self as "const std::vector<mf_detection>*"] -> usize as "size_t" { return self->size(); }) };
        if len == 0 {
            return Vec::new();
        }
        let ptr = unsafe {
            cpp!([self as "const std::vector<mf_detection>*"] -> *const RawDetection as "const mf_detection*" {
                return self->data();
            })
        };
        // SAFETY: `ptr` points at `len` contiguous, initialised `mf_detection`s
        // (same layout as RawDetection) owned by `self`, which outlives the copy.
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    }
}

/// dlib's HOG frontal face detector. Detection mutates internal buffers and
/// so takes `&mut self`; sharing `&HogDetector` only allows copying it, which
/// reads. Clone one per thread.
#[derive(Clone)]
pub struct HogDetector {
    inner: HogInner,
}

impl HogDetector {
    pub fn new() -> Self {
        let inner = unsafe {
            cpp!([] -> HogInner as "dlib::frontal_face_detector" { return dlib::get_frontal_face_detector(); })
        };
        HogDetector { inner }
    }

    /// Detections with their SVM scores; `adjust_threshold` < 0 finds more.
    pub fn detect(&mut self, image: &ImageMatrix, adjust_threshold: f64) -> Result<Vec<RawDetection>, String> {
        let det = &mut self.inner;
        let mut raw = RawDetections::default();
        let out = &mut raw;
        checked(|err_ptr| unsafe {
            cpp!([det as "dlib::frontal_face_detector*", image as "const dlib::matrix<dlib::rgb_pixel>*", adjust_threshold as "double", out as "std::vector<mf_detection>*", err_ptr as "char*"]
                -> bool as "bool" {
                return mf_catching(err_ptr, [&] {
                    std::vector<std::pair<double, dlib::rectangle>> dets;
                    (*det)(*image, dets, adjust_threshold);
                    out->reserve(dets.size());
                    for (auto& d : dets) {
                        out->push_back(mf_detection{d.first, d.second.left(), d.second.top(), d.second.right(), d.second.bottom()});
                    }
                });
            })
        })?;
        Ok(raw.to_vec())
    }
}

impl Default for HogDetector {
    fn default() -> Self {
        Self::new()
    }
}

/// dlib's CNN (MMOD) face detector, loaded from `mmod_human_face_detector.dat`.
#[derive(Clone)]
pub struct CnnDetector {
    inner: CnnInner,
}

impl CnnDetector {
    /// `None` when the file cannot be deserialised as the MMOD network.
    pub fn open(path: &std::path::Path) -> Option<Self> {
        let mut inner = CnnInner::default();
        let net = &mut inner;
        load_file(path, |filename, err_ptr| unsafe {
            cpp!([filename as "const char*", net as "mf_cnn_net*", err_ptr as "char*"] -> bool as "bool" {
                return mf_deserialize_file(filename, net, err_ptr);
            })
        })
        .ok()?;
        Some(CnnDetector { inner })
    }

    pub fn detect(&mut self, image: &ImageMatrix) -> Result<Vec<RawDetection>, String> {
        let net = &mut self.inner;
        let mut raw = RawDetections::default();
        let out = &mut raw;
        checked(|err_ptr| unsafe {
            cpp!([net as "mf_cnn_net*", image as "const dlib::matrix<dlib::rgb_pixel>*", out as "std::vector<mf_detection>*", err_ptr as "char*"]
                -> bool as "bool" {
                return mf_catching(err_ptr, [&] {
                    std::vector<dlib::mmod_rect> dets = (*net)(*image);
                    out->reserve(dets.size());
                    for (auto& d : dets) {
                        out->push_back(mf_detection{d.detection_confidence, d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()});
                    }
                });
            })
        })?;
        Ok(raw.to_vec())
    }
}

/// dlib's own shape predictor (the 68-point model): the reference that
/// [`crate::shape::LandmarkModel`] is tested against.
#[cfg(test)]
pub struct ShapePredictor {
    inner: ShapeInner,
}

#[cfg(test)]
impl ShapePredictor {
    pub fn open(path: &std::path::Path) -> Result<Self, String> {
        let mut inner = ShapeInner::default();
        let sp = &mut inner;
        load_file(path, |filename, err_ptr| unsafe {
            cpp!([filename as "const char*", sp as "dlib::shape_predictor*", err_ptr as "char*"] -> bool as "bool" {
                return mf_deserialize_file(filename, sp, err_ptr);
            })
        })?;
        let parts = unsafe {
            let sp = &inner;
            cpp!([sp as "const dlib::shape_predictor*"] -> usize as "size_t" { return sp->num_parts(); })
        };
        match parts {
            68 => Ok(ShapePredictor { inner }),
            n => Err(format!("a shape predictor of {n} points, not 68")),
        }
    }

    /// The 68 points inside the inclusive rectangle `(left, top, right, bottom)`.
    pub fn predict(&self, image: &ImageMatrix, rect: [c_long; 4]) -> Result<[[c_long; 2]; 68], String> {
        let sp = &self.inner;
        let mut points = [[0 as c_long; 2]; 68];
        let out = points.as_mut_ptr() as *mut c_long;
        let (l, t, r, b) = (rect[0], rect[1], rect[2], rect[3]);
        checked(|err_ptr| unsafe {
            cpp!([sp as "const dlib::shape_predictor*", image as "const dlib::matrix<dlib::rgb_pixel>*", l as "long", t as "long", r as "long", b as "long", out as "long*", err_ptr as "char*"]
                -> bool as "bool" {
                return mf_catching(err_ptr, [&] {
                    dlib::full_object_detection shape = (*sp)(*image, dlib::rectangle(l, t, r, b));
                    if (shape.num_parts() != 68) {
                        throw std::runtime_error("shape predictor returned a shape without 68 points");
                    }
                    for (unsigned long i = 0; i < 68; ++i) {
                        out[2 * i] = shape.part(i).x();
                        out[2 * i + 1] = shape.part(i).y();
                    }
                });
            })
        })?;
        Ok(points)
    }
}

/// One regression tree of a shape predictor file, as dlib stores it: split
/// `i` compares feature pixels `idx1[i]` and `idx2[i]` against `thresh[i]`;
/// `leaves` holds one shape offset after the other.
pub struct RawTree {
    pub idx1: Vec<u64>,
    pub idx2: Vec<u64>,
    pub thresh: Vec<f32>,
    pub leaves: Vec<f32>,
    pub leaf_len: usize,
}

/// The parts of a shape predictor file that stay in C++: the mean shape and
/// where each cascade level's feature pixels sit relative to it. dlib's own
/// code extracts the features and places the final points, so both are
/// exactly dlib's; the regression forests live in Rust
/// ([`crate::shape::LandmarkModel`]).
pub struct ShapeFrame {
    inner: FrameInner,
}

impl ShapeFrame {
    /// Reads a shape predictor file: the frame, and every cascade level's
    /// trees in file order.
    pub fn open(path: &std::path::Path) -> Result<(Self, Vec<Vec<RawTree>>), String> {
        let mut file = ShapeFileInner::default();
        let f = &mut file;
        load_file(path, |filename, err_ptr| unsafe {
            cpp!([filename as "const char*", f as "mf_shape_file*", err_ptr as "char*"] -> bool as "bool" {
                return mf_deserialize_file(filename, f, err_ptr);
            })
        })?;
        let f = &file;
        let levels = unsafe { cpp!([f as "const mf_shape_file*"] -> usize as "size_t" { return f->forests.size(); }) };
        let mut forests = Vec::with_capacity(levels);
        for level in 0..levels {
            let trees = unsafe {
                cpp!([f as "const mf_shape_file*", level as "size_t"] -> usize as "size_t" { return f->forests[level].size(); })
            };
            forests.push((0..trees).map(|tree| raw_tree(f, level, tree)).collect());
        }
        let inner =
            unsafe { cpp!([f as "const mf_shape_file*"] -> FrameInner as "mf_shape_frame" { return f->frame; }) };
        Ok((ShapeFrame { inner }, forests))
    }

    /// The frame in dlib's serialisation (for the packed-model cache).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let fr = &self.inner;
        let mut len = 0usize;
        let len_ptr = &mut len as *mut usize;
        let mut bytes = Vec::new();
        // Two calls: the size, then the bytes into a buffer of that size.
        for pass in 0..2 {
            let out = bytes.as_mut_ptr();
            let copy = pass == 1;
            checked(|err_ptr| unsafe {
                cpp!([fr as "const mf_shape_frame*", len_ptr as "size_t*", out as "char*", copy as "bool", err_ptr as "char*"] -> bool as "bool" {
                    return mf_catching(err_ptr, [&] {
                        std::ostringstream buf;
                        dlib::serialize(fr->initial_shape, buf);
                        dlib::serialize(fr->anchor_idx, buf);
                        dlib::serialize(fr->deltas, buf);
                        const std::string s = buf.str();
                        if (copy) {
                            if (s.size() != *len_ptr) throw std::runtime_error("frame size changed");
                            std::memcpy(out, s.data(), s.size());
                        }
                        *len_ptr = s.size();
                    });
                })
            })?;
            bytes.resize(len, 0);
        }
        Ok(bytes)
    }

    /// A frame from [`ShapeFrame::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ShapeFrame, String> {
        let mut inner = FrameInner::default();
        let fr = &mut inner;
        let (ptr, len) = (bytes.as_ptr() as *const c_char, bytes.len());
        checked(|err_ptr| unsafe {
            cpp!([fr as "mf_shape_frame*", ptr as "const char*", len as "size_t", err_ptr as "char*"] -> bool as "bool" {
                return mf_catching(err_ptr, [&] {
                    std::istringstream in(std::string(ptr, len));
                    dlib::deserialize(fr->initial_shape, in);
                    dlib::deserialize(fr->anchor_idx, in);
                    dlib::deserialize(fr->deltas, in);
                });
            })
        })?;
        Ok(ShapeFrame { inner })
    }

    /// Length of the shape vector (2 × points).
    pub fn shape_len(&self) -> usize {
        let fr = &self.inner;
        unsafe { cpp!([fr as "const mf_shape_frame*"] -> usize as "size_t" { return fr->initial_shape.size(); }) }
    }

    /// The mean shape, normalised to the unit box.
    pub fn initial_shape(&self) -> Vec<f32> {
        let fr = &self.inner;
        let mut out = vec![0f32; self.shape_len()];
        let ptr = out.as_mut_ptr();
        unsafe {
            cpp!([fr as "const mf_shape_frame*", ptr as "float*"] {
                for (long i = 0; i < fr->initial_shape.size(); ++i) ptr[i] = fr->initial_shape(i);
            })
        };
        out
    }

    /// How many feature pixels each cascade level reads (`None` when the
    /// anchors and offsets of the file disagree).
    pub fn features_per_level(&self) -> Option<Vec<usize>> {
        let fr = &self.inner;
        let levels = unsafe {
            cpp!([fr as "const mf_shape_frame*"] -> usize as "size_t" {
                return fr->anchor_idx.size() == fr->deltas.size() ? fr->deltas.size() : (size_t)-1;
            })
        };
        if levels == usize::MAX {
            return None;
        }
        let points = self.shape_len() / 2;
        (0..levels)
            .map(|level| {
                let n = unsafe {
                    cpp!([fr as "const mf_shape_frame*", level as "size_t", points as "size_t"] -> usize as "size_t" {
                        const auto& a = fr->anchor_idx[level];
                        if (a.size() != fr->deltas[level].size()) return (size_t)-1;
                        for (auto i : a) if (i >= points) return (size_t)-1;
                        return a.size();
                    })
                };
                (n != usize::MAX).then_some(n)
            })
            .collect()
    }

    /// The feature pixel values of cascade level `level` for the current
    /// `shape` in `rect` (dlib's `extract_feature_pixel_values`).
    pub fn features(
        &self,
        image: &ImageMatrix,
        rect: [c_long; 4],
        level: usize,
        shape: &[f32],
        out: &mut [f32],
    ) -> Result<(), String> {
        let fr = &self.inner;
        let (l, t, r, b) = (rect[0], rect[1], rect[2], rect[3]);
        let (shape_ptr, shape_len) = (shape.as_ptr(), shape.len() as c_long);
        let (out_ptr, out_len) = (out.as_mut_ptr(), out.len());
        checked(|err_ptr| unsafe {
            cpp!([fr as "const mf_shape_frame*", image as "const dlib::matrix<dlib::rgb_pixel>*", l as "long", t as "long", r as "long", b as "long", level as "size_t", shape_ptr as "const float*", shape_len as "long", out_ptr as "float*", out_len as "size_t", err_ptr as "char*"]
                -> bool as "bool" {
                return mf_catching(err_ptr, [&] {
                    if (level >= fr->deltas.size() || shape_len != fr->initial_shape.size())
                        throw std::runtime_error("shape predictor: cascade level or shape size out of range");
                    const dlib::matrix<float,0,1> current = mf_shape_matrix(shape_ptr, shape_len);
                    std::vector<float> values;
                    dlib::impl::extract_feature_pixel_values(*image, dlib::rectangle(l, t, r, b), current,
                        fr->initial_shape, fr->anchor_idx[level], fr->deltas[level], values);
                    if (values.size() != out_len)
                        throw std::runtime_error("shape predictor: feature count changed");
                    std::memcpy(out_ptr, values.data(), out_len * sizeof(float));
                });
            })
        })?;
        Ok(())
    }

    /// The image points of a normalised `shape` in `rect`, rounded as dlib
    /// rounds them.
    pub fn to_points(&self, rect: [c_long; 4], shape: &[f32; 136]) -> Result<[[c_long; 2]; 68], String> {
        let mut points = [[0 as c_long; 2]; 68];
        let out = points.as_mut_ptr() as *mut c_long;
        let shape_ptr = shape.as_ptr();
        let (l, t, r, b) = (rect[0], rect[1], rect[2], rect[3]);
        checked(|err_ptr| unsafe {
            cpp!([l as "long", t as "long", r as "long", b as "long", shape_ptr as "const float*", out as "long*", err_ptr as "char*"]
                -> bool as "bool" {
                return mf_catching(err_ptr, [&] {
                    const dlib::matrix<float,0,1> current = mf_shape_matrix(shape_ptr, 136);
                    const dlib::point_transform_affine tform_to_img = dlib::impl::unnormalizing_tform(dlib::rectangle(l, t, r, b));
                    for (unsigned long i = 0; i < 68; ++i) {
                        const dlib::point p = tform_to_img(dlib::impl::location(current, i));
                        out[2 * i] = p.x();
                        out[2 * i + 1] = p.y();
                    }
                });
            })
        })?;
        Ok(points)
    }
}

/// Copies tree `tree` of cascade level `level` out of the C++ file.
fn raw_tree(f: &ShapeFileInner, level: usize, tree: usize) -> RawTree {
    let (mut splits, mut leaves, mut leaf_len) = (0usize, 0usize, 0usize);
    let (sp, lp, llp) = (&mut splits as *mut usize, &mut leaves as *mut usize, &mut leaf_len as *mut usize);
    unsafe {
        cpp!([f as "const mf_shape_file*", level as "size_t", tree as "size_t", sp as "size_t*", lp as "size_t*", llp as "size_t*"] {
            const auto& t = f->forests[level][tree];
            size_t len = t.leaf_values.empty() ? 0 : (size_t)t.leaf_values[0].size();
            for (const auto& leaf : t.leaf_values) if ((size_t)leaf.size() != len) len = (size_t)-1;
            *sp = t.splits.size();
            *lp = t.leaf_values.size();
            *llp = len;
        })
    };
    let mut raw = RawTree {
        idx1: vec![0; splits],
        idx2: vec![0; splits],
        thresh: vec![0.0; splits],
        leaves: vec![0.0; if leaf_len == usize::MAX { 0 } else { leaves * leaf_len }],
        leaf_len,
    };
    let (i1, i2, th, lv) =
        (raw.idx1.as_mut_ptr(), raw.idx2.as_mut_ptr(), raw.thresh.as_mut_ptr(), raw.leaves.as_mut_ptr());
    let copy_leaves = leaf_len != usize::MAX;
    unsafe {
        cpp!([f as "const mf_shape_file*", level as "size_t", tree as "size_t", i1 as "uint64_t*", i2 as "uint64_t*", th as "float*", lv as "float*", copy_leaves as "bool"] {
            const auto& t = f->forests[level][tree];
            for (size_t i = 0; i < t.splits.size(); ++i) {
                i1[i] = t.splits[i].idx1;
                i2[i] = t.splits[i].idx2;
                th[i] = t.splits[i].thresh;
            }
            if (!copy_leaves) return;
            size_t k = 0;
            for (const auto& leaf : t.leaf_values)
                for (long j = 0; j < leaf.size(); ++j) lv[k++] = leaf(j);
        })
    };
    raw
}
