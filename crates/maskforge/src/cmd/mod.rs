pub mod audit;
#[cfg(feature = "dlib")]
pub mod detect;
#[cfg(feature = "dlib")]
pub mod mask;
pub mod merge;
#[cfg(all(feature = "tch", feature = "dlib"))]
pub mod predict;
pub mod split;
#[cfg(feature = "tch")]
pub mod train;
pub mod weights;
