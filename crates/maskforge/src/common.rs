//! Helpers shared by subcommands: the parsers of bounded numbers, thread
//! pools, progress bars, locating models.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
pub use maskforge_imageio::{MAX_JOBS, MAX_PIXELS_LIMIT};
use std::io::IsTerminal;

/// The one check of a whole number from the command line: `min..=max`, or
/// the one message every bounded flag gives (clap prints it on one line).
pub fn parse_bounded(s: &str, flag: &str, min: u64, max: u64, note: &str) -> Result<u64, String> {
    let n: u64 = s.trim().parse().map_err(|_| format!("{s:?} is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range: {flag} must be {min}..={max}{note}"));
    }
    Ok(n)
}

/// `--max-pixels` of every subcommand: at most [`MAX_PIXELS_LIMIT`], so no
/// header can ask for more than a decode of that size.
pub fn parse_max_pixels(s: &str) -> Result<u64, String> {
    parse_bounded(s, "--max-pixels", 1, MAX_PIXELS_LIMIT, "")
}

/// The parser of a worker-thread count named `flag` (`--jobs`, `--workers`):
/// at most [`MAX_JOBS`] threads; 0 means all cores.
pub fn jobs_parser(flag: &'static str) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| parse_bounded(s, flag, 0, MAX_JOBS as u64, " (0: all cores)").map(|n| n as usize)
}

/// A rayon pool with `jobs` threads (all cores when `None` or 0).
pub fn thread_pool(jobs: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = jobs.filter(|&n| n > 0) {
        // The parsers bound it; this keeps a caller that skipped them bounded too.
        anyhow::ensure!(n <= MAX_JOBS, "{n} worker threads: at most {MAX_JOBS}");
        b = b.num_threads(n);
    }
    Ok(b.build()?)
}

/// Gives the native libraries' own thread pools (dlib's OpenBLAS,
/// libtorch's intra-op pool) the cores that `workers` threads of ours leave
/// free, so N workers do not each start a thread per core.
#[cfg(feature = "dlib")]
pub fn share_cores_with_workers(workers: usize) {
    maskforge_landmarks::share_cores_with_workers(workers);
    #[cfg(feature = "tch")]
    maskforge_mtcnn::share_cores_with_workers(workers);
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

/// Refuses a cache folder ([`cache_dir`]) that overlaps one of `folders`
/// (`maskforge_imageio::check_cache_folder`).
#[cfg(feature = "dlib")]
pub fn check_cache_folder(folders: &[&std::path::Path]) -> anyhow::Result<()> {
    Ok(maskforge_imageio::check_cache_folder(cache_dir().as_deref(), folders)?)
}
