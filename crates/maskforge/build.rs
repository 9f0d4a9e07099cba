//! Link fix-ups for libtorch from pip's `torch` wheel (see ARCHITECTURE.md):
//!
//! * torch-sys passes `-rpath` only to its own C++ compile, so the binary would
//!   not find libtorch at run time without LD_LIBRARY_PATH. We add the rpath.
//! * The linker's `--as-needed` drops libtorch_cuda (nothing references its
//!   symbols directly), which makes `tch::Cuda::is_available()` false even on
//!   a GPU machine. We force it in.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
