//! Tells the raster cache (`src/raster_cache.rs`) which dependency versions
//! this build resolved: a new resvg or tiny-skia may render differently, so
//! rasters cached by another build must not be reused. Without the
//! workspace's Cargo.lock (a build from a packaged crate) the cache is off.
use std::hash::{Hash, Hasher};

fn main() {
    let lock = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    if let Ok(text) = std::fs::read(&lock) {
        // The hash only has to differ when the lock file does, within one toolchain.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        println!("cargo:rustc-env=MASKFORGE_LOCK_HASH={:016x}", h.finish());
    }
}
