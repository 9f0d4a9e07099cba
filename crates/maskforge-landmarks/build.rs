//! Compiles the few C++ lines in `src/ffi.rs` (scored detection, which the
//! dlib-face-recognition crate does not expose) against Debian's dlib headers.
fn main() {
    println!("cargo:rerun-if-changed=src/ffi.rs");
    cpp_build::Config::new().flag("-std=c++14").flag("-O2").flag("-w").build("src/lib.rs");
    println!("cargo:rustc-link-lib=dlib");
    println!("cargo:rustc-link-lib=openblas");
    println!("cargo:rustc-link-lib=lapack");
}
