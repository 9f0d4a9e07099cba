//! Helpers shared by subcommands: thread pools, progress bars, locating models.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A rayon pool with `jobs` threads (all cores when `None` or 0).
pub fn thread_pool(jobs: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = jobs.filter(|&n| n > 0) {
        b = b.num_threads(n);
    }
    Ok(b.build()?)
}

/// A progress bar on stderr when it is a terminal, hidden otherwise (logs, CI).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}} {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
    } else {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb
}

/// Where the dlib model files are looked for, first match wins:
/// `--models DIR`, `$MASKFORGE_MODELS`, `models/` of the project the binary
/// was built in (`target/{debug,release}/maskforge` → `../../models`), `./models`.
#[cfg(feature = "dlib")]
pub fn models_dir(flag: Option<std::path::PathBuf>) -> std::path::PathBuf {
    if let Some(dir) = flag {
        return dir;
    }
    if let Some(dir) = std::env::var_os("MASKFORGE_MODELS") {
        return std::path::PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            let candidate = up.join("models");
            if candidate.join("shape_predictor_68_face_landmarks.dat").is_file() {
                return candidate;
            }
        }
    }
    std::path::PathBuf::from("models")
}

/// The folder of files kept between runs, which never change an output:
/// `$MASKFORGE_CACHE` (`off` or empty: none), `$XDG_CACHE_HOME/maskforge`,
/// `~/.cache/maskforge`. It holds rendered template rasters (`templates/`,
/// about 3 s of CPU for the eight built-ins) and the packed landmark model
/// (`models/`, 0.5 s to read from dlib's file).
#[cfg(feature = "dlib")]
pub fn cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    match std::env::var_os("MASKFORGE_CACHE") {
        Some(v) if v.is_empty() || v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(xdg) => Some(PathBuf::from(xdg).join("maskforge")),
            None => Some(PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache/maskforge")),
        },
    }
}
