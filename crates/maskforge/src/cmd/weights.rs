//! `maskforge weights fetch|list`: torchvision's ImageNet checkpoints,
//! downloaded, checked, converted to safetensors and cached by
//! `maskforge-weights`; and `--weights imagenet` for `train`.

use crate::progress::ByteBar;
use anyhow::Result;
use clap::{Args, Subcommand};
use maskforge_weights::fetch::parse_max_bytes;
use maskforge_weights::{
    cache_dir, cached_file, read_provenance, Arch, FetchRequest, Progress, Source, DEFAULT_MAX_BYTES,
};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct WeightsArgs {
    #[command(subcommand)]
    pub command: WeightsCommand,
}

#[derive(Subcommand, Debug)]
pub enum WeightsCommand {
    /// Download torchvision's ImageNet checkpoint of a backbone, check its SHA-256, convert it to
    /// safetensors (no Python) and cache it for `train --weights imagenet`.
    Fetch(FetchArgs),
    /// Show the cache folder and which backbones' weights it holds.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Backbone: resnet50, resnet18 or mobilenet_v2.
    #[arg(value_name = "ARCH")]
    pub arch: Arch,
    /// Fetch from this URL (a mirror) instead of download.pytorch.org. The file name's -HASH part
    /// (resnet50-0676ba61.pth) is the expected SHA-256 prefix, unless --sha256 is given.
    #[arg(long, value_name = "URL", conflicts_with = "file")]
    pub url: Option<String>,
    /// Convert this local .pth file (downloaded elsewhere) instead of downloading; checked like a download.
    #[arg(long, value_name = "FILE.pth")]
    pub file: Option<PathBuf>,
    /// Expected SHA-256 of the .pth file (all 64 hex digits, or at least the first 8).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Cache folder [default: $MASKFORGE_WEIGHTS, else $XDG_CACHE_HOME/maskforge/weights,
    /// else ~/.cache/maskforge/weights].
    #[arg(long, alias = "out", value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Fetch and convert again even when the cache already holds this checkpoint.
    #[arg(long)]
    pub force: bool,
    /// Refuse a checkpoint (download or --file) of more than N bytes: digits, optionally followed
    /// by KiB, MiB or GiB (512MiB, 1GiB). The default, 256 MiB, has room for ResNet50's 98 MiB,
    /// the largest published one.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BYTES, value_parser = parse_max_bytes)]
    pub max_bytes: u64,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Cache folder [default: as for fetch].
    #[arg(long, alias = "out", value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

pub fn run(args: WeightsArgs) -> Result<()> {
    match args.command {
        WeightsCommand::Fetch(a) => run_fetch(a),
        WeightsCommand::List(a) => run_list(a),
    }
}

fn run_fetch(a: FetchArgs) -> Result<()> {
    let cache = cache_dir(a.cache.as_deref())?;
    let source = Source::chosen(a.arch, a.url.as_deref(), a.file.as_deref());
    eprintln!("{}: {} -> {}", a.arch, source.describe(), cached_file(&cache.dir, a.arch).display());
    let req = FetchRequest {
        model: a.arch,
        source,
        sha256: a.sha256.clone(),
        cache_dir: cache.dir.clone(),
        force: a.force,
        max_bytes: a.max_bytes,
    };
    let mut bar = ByteBar::default();
    let got = maskforge_weights::fetch(&req, &mut bar);
    bar.finish();
    let got = got?;
    let sha = &got.provenance.sha256;
    if got.fresh {
        println!(
            "cached {} ImageNet weights: {} ({} tensors, sha256 {sha}{}); use them with `maskforge train --arch {} --weights imagenet --norm imagenet`",
            a.arch,
            got.path.display(),
            got.tensors,
            if got.resumed_from > 0 { format!(", resumed after {} bytes", got.resumed_from) } else { String::new() },
            a.arch
        );
    } else {
        println!(
            "{} ImageNet weights already cached: {} (sha256 {sha}, from {}); --force fetches them again",
            a.arch,
            got.path.display(),
            got.provenance.source
        );
    }
    Ok(())
}

fn run_list(a: ListArgs) -> Result<()> {
    let cache = cache_dir(a.cache.as_deref())?;
    println!("weights cache: {} (from {})", cache.dir.display(), cache.from);
    for m in Arch::ALL {
        let path = cached_file(&cache.dir, m);
        if !path.is_file() {
            println!("{:<13} missing: maskforge weights fetch {m}   ({})", m.name(), m.official_url());
            continue;
        }
        match read_provenance(&path) {
            Ok(Some(p)) => println!("{:<13} {}   (sha256 {}, from {})", m.name(), path.display(), p.sha256, p.source),
            Ok(None) => println!("{:<13} {}   (no provenance recorded)", m.name(), path.display()),
            Err(e) => println!("{:<13} {}   unreadable: {e}", m.name(), path.display()),
        }
    }
    Ok(())
}
