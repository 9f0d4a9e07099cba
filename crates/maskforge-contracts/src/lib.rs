//! The contracts between stages: the one definition of the files that
//! `maskforge split` writes and `train`, `eval`, `verify` and `stats` read.
//!
//! * [`manifest`]: manifest CSVs (`path,class_index,class,group,bytes[,sha256]`),
//!   one writer and one reader; the reader never returns a row whose path
//!   could leave the dataset root;
//! * [`classes`]: `classes.csv` (`index,name,count`);
//! * [`relpath`]: [`RelPath`], a checked relative path, and the only way from
//!   a manifest row to a file under the root;
//! * [`set`]: the fingerprint in `split.json` that tells a complete manifest
//!   set from one a killed split left mixed.
//!
//! Pure: no dlib, no libtorch, no image decoding.

pub mod classes;
mod error;
pub mod manifest;
pub mod relpath;
pub mod set;

pub use classes::{classes_bytes, parse_classes, read_classes, write_classes, ClassInfo};
pub use error::ContractError;
pub use manifest::{
    manifest_bytes, parse_manifest, read_manifest, write_manifest, Entry, Manifest, ManifestRow, ReadOptions, MANIFEST_HEADER,
    SHA256_COLUMN,
};
pub use relpath::{is_lexically_under, PathError, RelPath};
pub use set::{read_checked, sha256_hex, SetRecord, CLASSES_CSV, FAILURES_CSV, SET_FILES, SPLIT_JSON, STATS_JSON};
