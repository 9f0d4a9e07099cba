//! `--help` is the authority on the flags; the reference in `docs/` must
//! name every one of them. This test walks clap's command tree (every
//! subcommand, nested ones like `weights fetch` too) and checks that each
//! long flag `--help` lists appears, as the literal `--name`, in the docs
//! file of its subcommand.

use crate::Cli;
use clap::CommandFactory;
use std::path::Path;

/// The reference page of each top-level subcommand, under `docs/`. A nested
/// subcommand (`weights fetch`) is documented in its parent's page.
const DOCS: &[(&str, &str)] = &[
    ("detect", "detect.md"),
    ("mask", "mask.md"),
    ("merge", "mask.md"),
    ("split", "split.md"),
    ("verify", "split.md"),
    ("stats", "split.md"),
    ("audit", "split.md"),
    ("train", "train.md"),
    ("eval", "train.md"),
    ("predict", "train.md"),
    ("weights", "train.md"),
];

/// Every long flag `--help` shows, as (`subcommand path`, `flag`): hidden
/// arguments, `--help` and `--version` left out.
fn listed_flags(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || long == "help" || long == "version" {
            continue;
        }
        out.push((path.to_string(), format!("--{long}")));
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        let path = if path.is_empty() { sub.get_name().to_string() } else { format!("{path} {}", sub.get_name()) };
        listed_flags(sub, &path, out);
    }
}

/// `flag` occurs in `text` as a whole word: `--out` is not found in
/// `--outline`, nor `--mode` in `--model`.
fn mentions(text: &str, flag: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(flag).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + flag.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[test]
fn every_flag_in_help_is_in_the_docs() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut flags = Vec::new();
    listed_flags(&Cli::command(), "", &mut flags);
    assert!(flags.iter().any(|(_, f)| f == "--out"), "no flags found in the command tree: {flags:?}");
    let pages: Vec<(&str, String)> = DOCS
        .iter()
        .map(|(_, file)| {
            let page = docs.join(file);
            (*file, std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display())))
        })
        .collect();
    let mut missing = Vec::new();
    for (path, flag) in &flags {
        let top = path.split(' ').next().unwrap_or_default();
        let Some((_, file)) = DOCS.iter().find(|(name, _)| *name == top) else {
            missing.push(format!("{path}: no docs file for this subcommand (add it to DOCS in {})", file!()));
            continue;
        };
        let text = pages.iter().find(|(name, _)| name == file).map(|(_, text)| text.as_str()).unwrap_or_default();
        if !mentions(text, flag) {
            missing.push(format!("maskforge {path} {flag} (not in docs/{file})"));
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "flags listed by --help but not documented; add each to its docs page:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn a_flag_is_found_as_a_whole_word_only() {
    assert!(mentions("use `--out DIR` here", "--out"));
    assert!(mentions("--out", "--out"));
    assert!(mentions("(`--min-face`, `--out`)", "--out"));
    assert!(!mentions("see `--outline`", "--out"));
    assert!(!mentions("`--model FILE`", "--mode"));
    assert!(!mentions("`--no-out`", "--out"));
}
