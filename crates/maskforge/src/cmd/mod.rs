#[cfg(feature = "dlib")]
pub mod detect;
#[cfg(feature = "dlib")]
pub mod mask;
pub mod merge;
pub mod split;
#[cfg(feature = "tch")]
pub mod train;
