//! The backbones by name: [`Arch`] is `maskforge-weights`' one enum of
//! them, which also holds the facts training needs without tensors
//! (feature width, torchvision's head name, default dropout).

pub use maskforge_weights::Arch;
