#[cfg(feature = "dlib")]
pub mod detect;
pub mod split;
#[cfg(feature = "tch")]
pub mod train;
