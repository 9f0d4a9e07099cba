//! Link fix-ups for libtorch from pip's `torch` wheel (see ARCHITECTURE.md),
//! the one build script of every crate that links it: `maskforge-train`,
//! `maskforge-mtcnn` and the `maskforge` binary (`build =
//! "../maskforge-train/build.rs"`). A crate built without libtorch (the
//! binary without its `tch` feature) gets no `DEP_TCH_LIBTORCH_LIB` and
//! nothing is added.
//!
//! * torch-sys passes `-rpath` only to its own C++ compile, so our binaries
//!   (the CLI, tests, examples) would not find libtorch at run time without
//!   LD_LIBRARY_PATH. We add the rpath.
//! * The linker's `--as-needed` drops libtorch_cuda (nothing references its
//!   symbols directly), which makes `tch::Cuda::is_available()` false even on
//!   a GPU machine. We force it in.
//! * The libtorch version (from the wheel's `torch/version.py`) is recorded in
//!   each run's config.json.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=MASKFORGE_LIBTORCH_VERSION=unknown");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    let lib = std::path::Path::new(&lib);
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    let version = lib
        .parent()
        .map(|torch| torch.join("version.py"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = ").map(|v| v.trim_matches(['\'', '"', ' ']).to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MASKFORGE_LIBTORCH_VERSION={version}");
}
