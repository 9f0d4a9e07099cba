//! Shared by the end-to-end tests: where the sample photos and dlib models
//! are (installed by `cargo xtask setup`), and the binary under test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The real sample photos; fails with how to get them when missing.
pub fn samples() -> PathBuf {
    let dir = std::env::var_os("MASKFORGE_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples"));
    assert!(
        dir.join("obama.jpg").is_file() && dir.join("biden.jpg").is_file(),
        "sample photos missing in {}: run `cargo xtask setup` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

/// The dlib models folder; fails with how to get it when missing.
pub fn models() -> PathBuf {
    let dir = std::env::var_os("MASKFORGE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(dir.join("shape_predictor_68_face_landmarks.dat").is_file(), "dlib models missing: run `cargo xtask setup`");
    dir
}

/// `maskforge` with the models folder set.
pub fn maskforge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_maskforge"));
    c.env("MASKFORGE_MODELS", models());
    c
}
