#[cfg(feature = "dlib")]
pub mod detect;
pub mod split;
