//! The mask stage as a library: turn a tree of face photos into a labelled,
//! masked ImageFolder dataset (`OUT/<class>/<relative path>`) with
//! `annotations.csv`, `failures.csv` and segmentation masks.
//!
//! Faces come in through a [`FaceSource`] (`maskforge mask`'s is
//! `maskforge_landmarks::mask_faces`, dlib's); everything else is here, so the binary, the benchmark and
//! later front ends run the same code:
//!
//! * [`options`]: what a run is asked to do, and the option-string parsers;
//! * [`Pipeline::process`]: one image, start to finish;
//! * [`naming`]: class folders and output file names;
//! * [`framing`]: `--framings`, the extra crop windows of a face;
//! * [`record`]: what happened to each image, the journal and resume;
//! * [`settings`]: `mask_settings.json`, which keeps two datasets apart;
//! * [`labels`](mod@labels): `--labels`, boxes for detector training (COCO, YOLO);
//! * [`run`]: a whole run over a tree, and its [`Summary`];
//! * [`preview`]: contact sheets;
//! * [`paths`]: the checks of a run's files and folders before it writes;
//! * [`merge`](mod@merge): joining the folders of sharded runs.
//!
//! Pure: no dlib, no libtorch.

mod error;
pub mod framing;
pub mod labels;
pub mod merge;
pub mod naming;
pub mod options;
pub mod paths;
pub mod preview;
mod process;
pub mod record;
pub mod run;
pub mod settings;
mod source;
#[cfg(test)]
mod tests;

pub use error::PipelineError;
pub use merge::{merge, MergeReport};
pub use naming::{extension_collisions, Naming};
pub use options::{
    build_synthesizer, parse_class_map, parse_shard, parse_variants, FaceFilter, LabelFormat, MaskOptions,
    OutputFormat, Selected, SelectedBoxes, SynthOptions, UnmaskedMode, VariantMode,
};
pub use paths::MaskPaths;
pub use preview::{check_preview_path, preview_sample, save_sheet};
pub use process::{ImageOutcome, Pipeline, StepTimes};
pub use record::Record;
pub use run::{Finished, Inputs, MaskRun, Summary};
pub use settings::{DetectorSettings, Settings};
pub use source::{FaceSource, FileFaces, FoundFaces};
