//! The contracts between stages: the one definition of the files that
//! `maskforge mask` writes and `merge` and `split` read, and of those that
//! `maskforge split` writes and `train`, `eval`, `verify` and `stats` read.
//!
//! * [`manifest`]: manifest CSVs (`path,class_index,class,group,bytes[,sha256]`),
//!   one writer and one reader; the reader never returns a row whose path
//!   could leave the dataset root;
//! * [`classes`]: `classes.csv` (`index,name,count`);
//! * [`relpath`]: [`RelPath`], a checked relative path, and the only way from
//!   a manifest row to a file under the root;
//! * [`set`]: `split.json`, read by [`SplitJson`] alone (the dataset root,
//!   resolved by [`dataset_root`], and the fingerprint that tells a complete
//!   manifest set from one a killed split left mixed);
//! * [`annotations`]: `annotations.csv`, what `maskforge mask` made (read by
//!   `merge` and `split --group-by source`): [`AnnotationRow`], one writer,
//!   one reader;
//! * [`landmarks`]: the `landmarks.csv` of `maskforge detect` (read by `mask --landmarks`)
//!   and the other face files mask reads (plain CSV, FFHQ's JSON);
//! * [`mask_files`]: the other files of a mask output folder, shard file
//!   names (`NAME.shard-I-of-N.csv`) and the source stamps of a re-run.
//! * [`labels`]: `mask --labels`: boxes for detector training, made from
//!   annotation rows (`labels.coco.json`, YOLO `.txt` files beside the images).
//!
//! * [`image_list`]: the `--list FILE` of detect and mask: one path a line,
//!   or a manifest; paths checked like a manifest's.
//!
//! * [`stats`]: `stats.json`, split's mean/std and class weights, and the
//!   tolerant reader training uses.
//!
//! * [`scene_labels`]: labelled real photos for scoring a detector and
//!   classifier: face boxes with class names from Pascal VOC, COCO, YOLO or
//!   CSV files (what `mask --labels` writes included).
//!
//! Pure: no dlib, no libtorch, no image decoding (YOLO's image sizes come
//! from the image headers).

pub mod annotations;
pub mod classes;
mod error;
pub mod image_list;
pub mod labels;
pub mod landmarks;
pub mod manifest;
pub mod mask_files;
pub mod read;
pub mod relpath;
pub mod scene_labels;
pub mod set;
pub mod stats;

pub use annotations::{
    annotations_bytes, annotations_header, parse_annotations, polygon_text, read_annotations, read_output_sources,
    write_annotations, AnnotationRow, FaceColumns, ANNOTATION_COLUMNS, UNMASKED_VARIANT,
};
pub use classes::{classes_bytes, parse_classes, read_classes, write_classes, ClassInfo};
pub use error::ContractError;
pub use image_list::{parse_image_list, read_image_list, ImageList, ImageListFormat};
pub use labels::{coco_bytes, yolo_files, yolo_yaml, LabelSet, LabelledImage};
pub use landmarks::{
    box_from_landmarks, landmarks_header, landmarks_record, read_face_file, FaceEntry, FaceFile, FaceFileFormat,
    LANDMARKS_CSV,
};
pub use manifest::{
    manifest_bytes, parse_manifest, read_manifest, write_manifest, Entry, Manifest, ManifestRow, ReadOptions,
    MANIFEST_HEADER, SHA256_COLUMN,
};
pub use relpath::{is_lexically_under, PathError, RelPath};
pub use scene_labels::{read_scene_labels, SceneBox, SceneLabels, SceneLabelsFormat};
pub use set::{
    dataset_root, read_checked, sha256_hex, SetRecord, SplitJson, CLASSES_CSV, FAILURES_CSV, SET_FILES, SPLIT_JSON,
    STATS_JSON,
};
pub use stats::{read_training_stats, Stats, TrainingStats};
