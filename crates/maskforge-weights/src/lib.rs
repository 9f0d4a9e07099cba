//! Pretrained ImageNet weights without Python: torchvision's published
//! checkpoints downloaded (hash-checked, resumable), read from PyTorch's
//! `.pth` formats, converted to safetensors in torchvision's names (what
//! `maskforge-train`'s models load) and cached.
//!
//! Modules, each using only those before it (the order of ARCHITECTURE.md's
//! "Module order" table, which `cargo xtask lint` checks):
//!
//! * [`pickle`]: a small pickle machine for what `torch.save` writes;
//! * [`pth`]: zip and legacy `.pth` files to a [`StateDict`] of contiguous tensors;
//! * [`model`]: [`Arch`], the backbones: their official URLs, the tensors a
//!   checkpoint of each must hold, training's facts about them (feature
//!   width, head, default dropout), and the download cap [`DEFAULT_MAX_BYTES`];
//! * [`error`]: [`WeightsError`], one-line messages naming the URL or file;
//! * [`convert`]: state_dict → safetensors bytes with provenance metadata;
//! * [`cache`]: the cache folder (`--cache`, `$MASKFORGE_WEIGHTS`,
//!   `$XDG_CACHE_HOME/maskforge/weights`, `~/.cache/maskforge/weights`);
//! * [`download`]: HTTP(S) into a locked, resumable partial file, capped at
//!   [`DEFAULT_MAX_BYTES`] unless told otherwise, free space checked,
//!   redirects only within HTTP(S);
//! * [`fetch`](mod@fetch): download, hash check, convert, cache.
//!
//! Invariant: no tch, no libtorch, no Python; nothing a file contains is
//! executed, and bad input is an error, never a panic.

pub mod cache;
pub mod convert;
pub mod download;
pub mod error;
pub mod fetch;
pub mod model;
pub mod pickle;
pub mod pth;

pub use cache::{cache_dir, cached_file, imagenet_weights, train_weights, CacheDir, ENV_VAR};
pub use convert::{convert_pth, read_provenance, Provenance};
pub use error::{Result, WeightsError};
pub use fetch::{fetch, FetchRequest, Fetched, NoProgress, Progress, Source};
pub use model::{Arch, DEFAULT_MAX_BYTES};
pub use pth::{read_pth, DType, RawTensor, StateDict};

#[cfg(test)]
#[path = "../tests/support/writer.rs"]
mod writer;
