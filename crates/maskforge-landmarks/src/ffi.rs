//! The C++ side: dlib's HOG and CNN (MMOD) face detectors called so that they
//! return each detection's score. dlib-face-recognition returns rectangles
//! only; everything else (image matrices, the 68-point predictor) comes from it.

use cpp::{cpp, cpp_class};
use dlib_face_recognition::ImageMatrix;
use std::ffi::CString;
use std::os::raw::c_long;

cpp! {{
    #include <dlib/dnn.h>
    #include <dlib/image_processing/frontal_face_detector.h>
    #include <dlib/image_transforms.h>

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
        let len = unsafe {
            cpp!([self as "const std::vector<mf_detection>*"] -> usize as "size_t" { return self->size(); })
        };
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
    pub fn detect(&mut self, image: &ImageMatrix, adjust_threshold: f64) -> Vec<RawDetection> {
        let det = &mut self.inner;
        let raw = unsafe {
            cpp!([det as "dlib::frontal_face_detector*", image as "const dlib::matrix<dlib::rgb_pixel>*", adjust_threshold as "double"]
                -> RawDetections as "std::vector<mf_detection>" {
                std::vector<std::pair<double, dlib::rectangle>> dets;
                (*det)(*image, dets, adjust_threshold);
                std::vector<mf_detection> out;
                out.reserve(dets.size());
                for (auto& d : dets) {
                    out.push_back(mf_detection{d.first, d.second.left(), d.second.top(), d.second.right(), d.second.bottom()});
                }
                return out;
            })
        };
        raw.to_vec()
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

    pub fn detect(&mut self, image: &ImageMatrix) -> Vec<RawDetection> {
        let net = &mut self.inner;
        let raw = unsafe {
            cpp!([net as "mf_cnn_net*", image as "const dlib::matrix<dlib::rgb_pixel>*"]
                -> RawDetections as "std::vector<mf_detection>" {
                std::vector<dlib::mmod_rect> dets = (*net)(*image);
                std::vector<mf_detection> out;
                out.reserve(dets.size());
                for (auto& d : dets) {
                    out.push_back(mf_detection{d.detection_confidence, d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()});
                }
                return out;
            })
        };
        raw.to_vec()
    }
}
