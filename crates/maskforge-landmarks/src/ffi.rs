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

cpp! {{
    #include <dlib/dnn.h>
    #include <dlib/image_processing/frontal_face_detector.h>
    #include <dlib/image_transforms.h>
    #include <dlib/image_processing/shape_predictor.h>
    #include <cstring>
    #include <stdexcept>
    #include <exception>

    // Copies the current exception's message into `buf` (ERROR_LEN bytes).
    static void mf_store_error(char* buf) {
        const char* what = "unknown C++ exception";
        try { throw; } catch (const std::exception& e) { what = e.what(); } catch (...) {}
        std::strncpy(buf, what, 511);
        buf[511] = 0;
    }

    // The MMOD face detector network of dlib's tools/python/src/cnn_face_detector.cpp.
    template <long num_filters, typename SUBNET> using mf_con5d = dlib::con<num_filters,5,5,2,2,SUBNET>;
    template <long num_filters, typename SUBNET> using mf_con5  = dlib::con<num_filters,5,5,1,1,SUBNET>;
    template <typename SUBNET> using mf_downsampler = dlib::relu<dlib::affine<mf_con5d<32, dlib::relu<dlib::affine<mf_con5d<32, dlib::relu<dlib::affine<mf_con5d<16,SUBNET>>>>>>>>>;
    template <typename SUBNET> using mf_rcon5 = dlib::relu<dlib::affine<mf_con5<45,SUBNET>>>;
    using mf_cnn_net = dlib::loss_mmod<dlib::con<1,9,9,1,1,mf_rcon5<mf_rcon5<mf_rcon5<mf_downsampler<dlib::input_rgb_image_pyramid<dlib::pyramid_down<6>>>>>>>>;

    struct mf_detection { double score; long left; long top; long right; long bottom; };
}}

cpp_class!(unsafe struct HogInner as "dlib::frontal_face_detector");
cpp_class!(unsafe struct CnnInner as "mf_cnn_net");
cpp_class!(unsafe struct RawDetections as "std::vector<mf_detection>");
cpp_class!(unsafe struct ShapeInner as "dlib::shape_predictor");

/// Mirrors `mf_detection`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RawDetection {
    pub score: f64,
    pub left: c_long,
    pub top: c_long,
    pub right: c_long,
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
        let mut err = [0u8; ERROR_LEN];
        let err_ptr = err.as_mut_ptr() as *mut c_char;
        let mut raw = RawDetections::default();
        let out = &mut raw;
        let ok = unsafe {
            cpp!([det as "dlib::frontal_face_detector*", image as "const dlib::matrix<dlib::rgb_pixel>*", adjust_threshold as "double", out as "std::vector<mf_detection>*", err_ptr as "char*"]
                -> bool as "bool" {
                try {
                    std::vector<std::pair<double, dlib::rectangle>> dets;
                    (*det)(*image, dets, adjust_threshold);
                    out->reserve(dets.size());
                    for (auto& d : dets) {
                        out->push_back(mf_detection{d.first, d.second.left(), d.second.top(), d.second.right(), d.second.bottom()});
                    }
                    return true;
                } catch (...) {
                    mf_store_error(err_ptr);
                    return false;
                }
            })
        };
        if ok {
            Ok(raw.to_vec())
        } else {
            Err(error_message(&err))
        }
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
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
        let mut inner = CnnInner::default();
        let ok = unsafe {
            let filename = cpath.as_ptr();
            let net = &mut inner;
            cpp!([filename as "const char*", net as "mf_cnn_net*"] -> bool as "bool" {
                try {
                    dlib::deserialize(filename) >> *net;
                    return true;
                } catch (...) {
                    return false;
                }
            })
        };
        ok.then_some(CnnDetector { inner })
    }

    pub fn detect(&mut self, image: &ImageMatrix) -> Result<Vec<RawDetection>, String> {
        let net = &mut self.inner;
        let mut err = [0u8; ERROR_LEN];
        let err_ptr = err.as_mut_ptr() as *mut c_char;
        let mut raw = RawDetections::default();
        let out = &mut raw;
        let ok = unsafe {
            cpp!([net as "mf_cnn_net*", image as "const dlib::matrix<dlib::rgb_pixel>*", out as "std::vector<mf_detection>*", err_ptr as "char*"]
                -> bool as "bool" {
                try {
                    std::vector<dlib::mmod_rect> dets = (*net)(*image);
                    out->reserve(dets.size());
                    for (auto& d : dets) {
                        out->push_back(mf_detection{d.detection_confidence, d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()});
                    }
                    return true;
                } catch (...) {
                    mf_store_error(err_ptr);
                    return false;
                }
            })
        };
        if ok {
            Ok(raw.to_vec())
        } else {
            Err(error_message(&err))
        }
    }
}

/// dlib's shape predictor (the 68-point model), loaded and called here so
/// that both can report C++ exceptions as errors.
pub struct ShapePredictor {
    inner: ShapeInner,
}

impl ShapePredictor {
    pub fn open(path: &std::path::Path) -> Result<Self, String> {
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        let mut inner = ShapeInner::default();
        let mut err = [0u8; ERROR_LEN];
        let err_ptr = err.as_mut_ptr() as *mut c_char;
        let ok = unsafe {
            let filename = cpath.as_ptr();
            let sp = &mut inner;
            cpp!([filename as "const char*", sp as "dlib::shape_predictor*", err_ptr as "char*"] -> bool as "bool" {
                try {
                    dlib::deserialize(filename) >> *sp;
                    return true;
                } catch (...) {
                    mf_store_error(err_ptr);
                    return false;
                }
            })
        };
        let parts = unsafe {
            let sp = &inner;
            cpp!([sp as "const dlib::shape_predictor*"] -> usize as "size_t" { return sp->num_parts(); })
        };
        match (ok, parts) {
            (false, _) => Err(error_message(&err)),
            (true, 68) => Ok(ShapePredictor { inner }),
            (true, n) => Err(format!("a shape predictor of {n} points, not 68")),
        }
    }

    /// The 68 points inside the inclusive rectangle `(left, top, right, bottom)`.
    pub fn predict(&self, image: &ImageMatrix, rect: [c_long; 4]) -> Result<[[c_long; 2]; 68], String> {
        let sp = &self.inner;
        let mut points = [[0 as c_long; 2]; 68];
        let out = points.as_mut_ptr() as *mut c_long;
        let mut err = [0u8; ERROR_LEN];
        let err_ptr = err.as_mut_ptr() as *mut c_char;
        let (l, t, r, b) = (rect[0], rect[1], rect[2], rect[3]);
        let ok = unsafe {
            cpp!([sp as "const dlib::shape_predictor*", image as "const dlib::matrix<dlib::rgb_pixel>*", l as "long", t as "long", r as "long", b as "long", out as "long*", err_ptr as "char*"]
                -> bool as "bool" {
                try {
                    dlib::full_object_detection shape = (*sp)(*image, dlib::rectangle(l, t, r, b));
                    if (shape.num_parts() != 68) {
                        throw std::runtime_error("shape predictor returned a shape without 68 points");
                    }
                    for (unsigned long i = 0; i < 68; ++i) {
                        out[2 * i] = shape.part(i).x();
                        out[2 * i + 1] = shape.part(i).y();
                    }
                    return true;
                } catch (...) {
                    mf_store_error(err_ptr);
                    return false;
                }
            })
        };
        if ok {
            Ok(points)
        } else {
            Err(error_message(&err))
        }
    }
}
