//! dlib reports bad model files by throwing C++ exceptions; they must come
//! back as errors naming the file, never unwind into Rust or abort.

use maskforge_landmarks::{Detector, DetectorConfig, DetectorKind, LandmarkError, CNN_MODEL, LANDMARK_MODEL};
use std::path::PathBuf;

fn real_models() -> PathBuf {
    std::env::var_os("MASKFORGE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// A models folder whose files are the first `keep` bytes of the real ones
/// (or `junk` when `keep` is 0).
fn broken_models(keep: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [LANDMARK_MODEL, CNN_MODEL] {
        let real = std::fs::read(real_models().join(name)).expect("dlib models: run `cargo xtask setup`");
        let bytes = if keep == 0 { b"junk".to_vec() } else { real[..keep.min(real.len())].to_vec() };
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn broken_model_files_are_errors_naming_the_file() {
    for keep in [0, 64, 100_000] {
        let dir = broken_models(keep);
        for kind in [DetectorKind::Hog, DetectorKind::Cnn] {
            let mut config = DetectorConfig::new(dir.path());
            config.kind = kind;
            match Detector::new(&config) {
                Err(LandmarkError::ModelLoad { path, message }) => {
                    assert!(path.starts_with(dir.path()), "{path:?}");
                    assert!(!message.is_empty() || kind == DetectorKind::Cnn, "no message for {path:?}");
                }
                Err(other) => panic!("{keep} bytes, {kind:?}: unexpected error {other}"),
                Ok(_) => panic!("{keep} bytes, {kind:?}: a broken model loaded"),
            }
        }
    }
}

#[test]
fn the_real_model_predicts_68_points_on_a_sample_photo() {
    let samples = std::env::var_os("MASKFORGE_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/samples"));
    let img = maskforge_imageio::load_rgb(&samples.join("obama.jpg"), Default::default()).unwrap();
    let mut det = Detector::new(&DetectorConfig::new(real_models())).unwrap();
    let faces = det.detect(&img).unwrap();
    assert_eq!(faces.len(), 1);
    let lm = &faces[0].landmarks;
    // Landmarks inside the box's neighbourhood, nose tip below the eyes.
    let b = faces[0].bbox;
    assert!(lm.points().iter().all(|p| p.x > b.left - b.width() * 0.3 && p.x < b.right + b.width() * 0.3));
    assert!(lm.points()[30].y > lm.points()[36].y);
}
