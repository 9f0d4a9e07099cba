//! The end-to-end tests of the `maskforge` binary, one test binary for all:
//! each file of `tests/` is a module here, so its tests are named
//! `FILE::TEST` (`cargo test -p maskforge detect::` runs those of
//! `tests/detect.rs`). One binary instead of one per file: each would link
//! the same dependencies again (about 14 MB a file, and its own incremental
//! cache), which made `target/` of a fresh `cargo xtask test` gigabytes larger.
//!
//! A module that needs dlib or libtorch is compiled only with the feature
//! (what `required-features` did for a binary). Each file keeps its own
//! `mod common;`: `#[path]` makes it load `tests/common/` as before, one
//! copy a module, so every file still reads on its own.
#![allow(clippy::duplicate_mod)]

#[cfg(feature = "dlib")]
#[path = "detect.rs"]
mod detect;

// `detect` killed and resumed from its journal; `--list` for detect and mask.
#[cfg(feature = "dlib")]
#[path = "detect_resume.rs"]
mod detect_resume;

#[path = "split.rs"]
mod split;

#[cfg(feature = "tch")]
#[path = "train.rs"]
mod train;

// Manifest trust: rows outside the root, mixed sets, bounded sizes. The
// train/eval cases are compiled only with feature `tch`.
#[path = "manifests.rs"]
mod manifests;

// `weights fetch` from a local HTTP server, converted weights give
// torchvision's logits, `train --weights imagenet`.
#[cfg(feature = "tch")]
#[path = "weights.rs"]
mod weights;

#[cfg(feature = "tch")]
#[path = "train_integrity.rs"]
mod train_integrity;

#[cfg(feature = "dlib")]
#[path = "mask.rs"]
mod mask;

// `mask --landmarks`: faces from detect's landmarks.csv, FFHQ's JSON or a plain CSV.
#[cfg(feature = "dlib")]
#[path = "landmarks_input.rs"]
mod landmarks_input;

// `mask --labels coco,yolo`: the COCO file checked with pycocotools (the venv's).
#[cfg(feature = "dlib")]
#[path = "labels.rs"]
mod labels;

#[cfg(feature = "dlib")]
#[path = "golden.rs"]
mod golden;

#[cfg(all(feature = "dlib", feature = "tch"))]
#[path = "trust.rs"]
mod trust;

#[cfg(all(feature = "dlib", feature = "tch"))]
#[path = "faces_in_the_wild.rs"]
mod faces_in_the_wild;

// `mask --faces crop|auto` on face crops cut from the sample photos.
#[cfg(feature = "dlib")]
#[path = "crop_mode.rs"]
mod crop_mode;

// Several faces in one photo: no masked image with a bare face.
#[cfg(feature = "dlib")]
#[path = "multi_face.rs"]
mod multi_face;

#[cfg(feature = "dlib")]
#[path = "realism.rs"]
mod realism;

// Sizes from the command line bounded everywhere (--max-pixels, --jobs);
// lying image headers refused before their pixels are allocated.
#[cfg(all(feature = "dlib", feature = "tch"))]
#[path = "bounds.rs"]
mod bounds;

// No path from a file or a link reaches outside OUT; non-regular files refused.
#[cfg(feature = "dlib")]
#[path = "confine.rs"]
mod confine;

// `maskforge audit`: mask's output is clean, a leaky copy of it is flagged.
#[cfg(feature = "dlib")]
#[path = "audit.rs"]
mod audit;
