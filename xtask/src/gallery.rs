//! `cargo xtask gallery`: the mask gallery of docs/mask.md, drawn by the release
//! binary's own `mask --preview-only`, so it shows exactly what `mask` draws.

use crate::{apply_torch_env, build_release, run_cmd, setup};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

/// The wear variants, in the order the gallery shows them.
const GALLERY_VARIANTS: &[&str] = &["correct", "nose_exposed", "chin_exposed", "chin"];
/// The seed of every gallery sheet: a fixed seed keeps the sheets stable
/// between regenerations unless the drawing code changes.
const GALLERY_SEED: &str = "11";
const GALLERY_START: &str = "<!-- gallery:start (written by `cargo xtask gallery`) -->";
const GALLERY_END: &str = "<!-- gallery:end -->";

/// Draws `docs/gallery/` and rewrites docs/mask.md's gallery section.
pub fn gallery(root: &Path) -> Result<()> {
    setup::setup(root)?;
    let bin = build_release(root)?;
    let out = root.join("docs/gallery");
    std::fs::create_dir_all(&out)?;
    let styles = builtin_styles(root)?;
    let mut sheets: Vec<(String, String)> = Vec::new();
    let all_variants = GALLERY_VARIANTS.join(",");
    for style in &styles {
        let file = format!("style-{style}.jpg");
        gallery_sheet(root, &bin, &out.join(&file), &["--template", style, "--variants", &all_variants])?;
        sheets.push((format!("`{style}`, every variant"), file));
    }
    for variant in GALLERY_VARIANTS {
        let file = format!("variant-{variant}.jpg");
        gallery_sheet(root, &bin, &out.join(&file), &["--variants", variant])?;
        sheets.push((format!("`{variant}`, the default draw of styles and colours"), file));
    }
    let mut section = format!("{GALLERY_START}\n");
    for (title, file) in &sheets {
        section.push_str(&format!("\n**{title}**\n\n![{title}](gallery/{file})\n"));
    }
    section.push_str(&format!("\n{GALLERY_END}"));
    // The page beside docs/gallery/, so the images are linked as gallery/FILE.
    let page_path = root.join("docs/mask.md");
    let page = std::fs::read_to_string(&page_path)?;
    let (Some(a), Some(b)) = (page.find(GALLERY_START), page.find(GALLERY_END)) else {
        bail!("docs/mask.md has no gallery markers ({GALLERY_START} ... {GALLERY_END})");
    };
    let updated = format!("{}{}{}", &page[..a], section, &page[b + GALLERY_END.len()..]);
    let tmp = page_path.with_extension("md.tmp");
    std::fs::write(&tmp, updated)?;
    std::fs::rename(&tmp, &page_path)?;
    println!("gallery: {} sheets in {}, docs/mask.md updated", sheets.len(), out.display());
    Ok(())
}

/// The built-in mask styles: the descriptors in `mask_templates/`, sorted.
fn builtin_styles(root: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("mask_templates"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no templates in mask_templates/");
    }
    Ok(names)
}

fn gallery_sheet(root: &Path, bin: &Path, sheet: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(bin);
    apply_torch_env(&mut cmd, root);
    cmd.args(["mask", "--preview-only", "--mode", "each", "--preview-count", "28", "--seed", GALLERY_SEED])
        .arg(root.join("data/samples"))
        .arg("--preview")
        .arg(sheet)
        .args(args);
    run_cmd(&mut cmd)
}
