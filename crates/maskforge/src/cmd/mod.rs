#[cfg(feature = "dlib")]
pub mod detect;
