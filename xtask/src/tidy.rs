//! The source checks of `cargo xtask lint` (rust-analyzer's `tidy` pattern:
//! plain text scans of the sources, one line per problem), so that what
//! ARCHITECTURE.md promises about the code is checked, not just promised:
//!
//! * module order: for each crate in ARCHITECTURE.md's "Module order" table,
//!   the `crate::` and `super::` paths between its modules (tests left out)
//!   must follow the table: a module uses only modules listed before it, so
//!   there is no import cycle; every module is listed; every library crate
//!   with modules is in the table;
//! * function length: no function outside tests longer than
//!   [`MAX_FN_LINES`] lines in the library crates and the binary, but for
//!   the few in [`LONG_FN_EXCEPTIONS`].
//!
//! The scan is lexical: comments and the contents of string and character
//! literals are blanked first, then items under `#[cfg(test)]` (and the
//! files of `#[cfg(test)] mod NAME;`) are left out. Paths to a module
//! through the crate root's re-exports (`crate::Name` where `lib.rs` has
//! `pub use module::Name`) count as uses of that module; the root's own
//! items are open to every module.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a function outside tests may be, in lines from `fn` to its
/// closing brace.
pub const MAX_FN_LINES: usize = 120;

/// Functions known to be longer than [`MAX_FN_LINES`]: (file relative to
/// the workspace root, `Type::name` or `name`). Each is to be split into
/// named steps and taken off this list, so that the check can become strict.
const LONG_FN_EXCEPTIONS: &[(&str, &str)] = &[];

/// Every problem the checks find in the workspace at `root`, one line each,
/// and notes that do not fail the check (exceptions no longer needed).
pub fn tidy(root: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?;
    let orders = module_orders(&architecture)?;
    let mut problems = Vec::new();
    let mut long = Vec::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for dir in crate_dirs(root)? {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let src = dir.join("src");
        let lib = src.join("lib.rs");
        let root_file = if lib.is_file() { lib } else { src.join("main.rs") };
        if !root_file.is_file() {
            continue;
        }
        let files = crate_files(&root_file)?;
        for (path, code) in &files {
            let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
            long.extend(long_functions(code).into_iter().map(|(f, lines, line)| (rel.clone(), f, lines, line)));
        }
        if !root_file.ends_with("lib.rs") {
            continue; // the binary: its modules are the subcommands, not layers
        }
        let graph = module_graph(&files);
        match orders.get(&name) {
            Some(order) => {
                listed.insert(name.clone());
                problems.extend(check_order(&name, &graph, order));
            }
            None if !graph.modules.is_empty() => problems.push(format!(
                "{name}: not in ARCHITECTURE.md's module order table (list its modules there, lowest first)"
            )),
            None => {}
        }
    }
    for name in orders.keys().filter(|n| !listed.contains(*n)) {
        problems.push(format!("ARCHITECTURE.md's module order lists {name}, which is not a library crate"));
    }
    let (long_problems, notes) = check_long(&long, LONG_FN_EXCEPTIONS);
    problems.extend(long_problems);
    Ok((problems, notes))
}

/// The crate folders under `crates/`, sorted.
fn crate_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .context("reading crates/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

// ---------------------------------------------------------------------------
// ARCHITECTURE.md

/// Crate → its modules, lowest first, from the table under the
/// `## Module order` heading: rows `| \`crate\` | \`a\` → \`b\` → ... |`.
fn module_orders(markdown: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let mut orders = BTreeMap::new();
    let mut inside = false;
    for line in markdown.lines() {
        if line.starts_with("## ") {
            inside = line.starts_with("## Module order");
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !inside || cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let name = backticked(cells[1]).into_iter().next().unwrap_or_default();
        let modules = backticked(cells[2]);
        if orders.insert(name.clone(), modules).is_some() {
            bail!("ARCHITECTURE.md's module order lists {name} twice");
        }
    }
    if orders.is_empty() {
        bail!("ARCHITECTURE.md has no `## Module order` table");
    }
    Ok(orders)
}

/// The `code` spans of a table cell, in order.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

// ---------------------------------------------------------------------------
// Lexing

/// `text` with comments and the contents of string and character literals
/// replaced by spaces (newlines kept, so byte offsets and lines still match).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, i);
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (b[i] == b'r' || b.get(i..i + 2) == Some(b"br")) && (i == 0 || !ident(b[i - 1])) && raw_start(b, i) {
            // r"..." or r#"..."#: no escapes, ends at `"` and as many `#`.
            let mut j = i + if b[i] == b'b' { 2 } else { 1 };
            let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
            j += hashes + 1;
            let open = j;
            let mut closing = vec![b'"'];
            closing.extend(std::iter::repeat_n(b'#', hashes));
            let end = b[j..].windows(closing.len()).position(|w| w == closing.as_slice()).map_or(b.len(), |p| j + p);
            blank(&mut out, open, end);
            i = end + closing.len();
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}', 'é'), or a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                let end =
                    b.get(i + 3..).and_then(|r| r.iter().position(|&c| c == b'\'')).map_or(b.len(), |p| i + 3 + p);
                blank(&mut out, i + 1, end);
                i = end + 1;
            } else {
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + width) == Some(&b'\'') {
                    blank(&mut out, i + 1, i + 1 + width);
                    i += width + 2;
                } else {
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Whether a raw string starts at `i` (`r"`, `r#"`, `br"`, ...).
fn raw_start(b: &[u8], i: usize) -> bool {
    let j = i + if b[i] == b'b' { 2 } else { 1 };
    let hashes = b.get(j..).map_or(0, |r| r.iter().take_while(|&&c| c == b'#').count());
    b.get(j + hashes) == Some(&b'"')
}

/// A token of code: an identifier or keyword, `::`, `->`, `=>`, or one
/// other character; `at` is its byte offset.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    text: &'a str,
    at: usize,
}

fn tokens(code: &str) -> Vec<Token<'_>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
        } else if matches!(&b[i..(i + 2).min(b.len())], b"::" | b"->" | b"=>") {
            i += 2;
        } else {
            i += 1;
        }
        out.push(Token { text: &code[start..i], at: start });
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.bytes().next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80)
}

/// The index of the token that closes the bracket opened at `open`.
fn closing(toks: &[Token], open: usize) -> usize {
    let (o, c) = match toks[open].text {
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        _ => ("{", "}"),
    };
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.text == o {
            depth += 1;
        } else if t.text == c {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    toks.len() - 1
}

/// The item that starts at token `from`: the index of its last token (the
/// `;` that ends it, or the `}` that closes its body).
fn item_end(toks: &[Token], from: usize) -> usize {
    let mut k = from;
    while k < toks.len() {
        match toks[k].text {
            ";" => return k,
            "{" => return closing(toks, k),
            "(" | "[" => k = closing(toks, k) + 1,
            _ => k += 1,
        }
    }
    toks.len().saturating_sub(1)
}

/// `code` (already [`code_only`]) without the items under `#[cfg(test)]`
/// (a `#[cfg(test)] mod NAME;` goes too, so its file is never read).
fn without_tests(code: &str) -> String {
    let toks = tokens(code);
    let mut out = code.as_bytes().to_vec();
    let mut k = 0;
    while k + 6 < toks.len() {
        let attr: Vec<&str> = toks[k..k + 7].iter().map(|t| t.text).collect();
        if attr != ["#", "[", "cfg", "(", "test", ")", "]"] {
            k += 1;
            continue;
        }
        // Further attributes, then the item.
        let mut item = k + 7;
        while item + 1 < toks.len() && toks[item].text == "#" && toks[item + 1].text == "[" {
            item = closing(&toks, item + 1) + 1;
        }
        let end = item_end(&toks, item);
        let to = toks.get(end).map_or(code.len(), |t| t.at + t.text.len());
        for c in &mut out[toks[k].at..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        k = end + 1;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The 1-based line of byte offset `at`.
fn line_of(code: &str, at: usize) -> usize {
    code.as_bytes()[..at.min(code.len())].iter().filter(|&&c| c == b'\n').count() + 1
}

// ---------------------------------------------------------------------------
// Module graph

/// A source file's path and its code, comments, literals and tests blanked.
type SourceFile = (PathBuf, String);

/// The files of the crate whose root file is `root_file`, reached through
/// `mod NAME;` declarations (those under `#[cfg(test)]` left out), the root
/// first, each top-level module's file next to its submodules' files.
fn crate_files(root_file: &Path) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    let mut todo = vec![root_file.to_path_buf()];
    while let Some(path) = todo.pop() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let code = without_tests(&code_only(&text));
        let dir = match path.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            _ => path.with_extension(""),
        };
        for name in declared_modules(&code) {
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(&name).join("mod.rs");
            todo.push(if flat.is_file() { flat } else { nested });
        }
        files.push((path, code));
    }
    Ok(files)
}

/// The `mod NAME;` declarations (file modules) of `code`, in order; those
/// with a `#[path]` attribute are left out.
fn declared_modules(code: &str) -> Vec<String> {
    let toks = tokens(code);
    let mut out = Vec::new();
    for k in 0..toks.len().saturating_sub(2) {
        if toks[k].text == "mod" && is_ident(toks[k + 1].text) && toks[k + 2].text == ";" && !has_path_attr(&toks, k) {
            out.push(toks[k + 1].text.to_string());
        }
    }
    out
}

/// Whether the item whose keyword is token `k` has a `#[path = ...]`
/// attribute (visibility such as `pub(crate)` between them).
fn has_path_attr(toks: &[Token], k: usize) -> bool {
    let mut j = k;
    while j > 0 && matches!(toks[j - 1].text, "pub" | "crate" | "super" | "in" | "(" | ")") {
        j -= 1;
    }
    while j > 0 && toks[j - 1].text == "]" {
        let Some(open) = (0..j - 1).rev().find(|&o| toks[o].text == "[" && closing(toks, o) == j - 1) else {
            return false;
        };
        if toks.get(open + 1).is_some_and(|t| t.text == "path") {
            return true;
        }
        j = open.saturating_sub(1); // before the `#`
    }
    false
}

/// Leaves of a `use` tree or the segments of a path, starting at token
/// `*i`: `(first segment, last segment or alias)` of each; `first` is the
/// path's first segment when this is a group inside a path.
fn use_tree(toks: &[Token], i: &mut usize, first: Option<&str>, out: &mut Vec<(String, String)>) {
    let mut first = first.map(str::to_string);
    let mut last: Option<String> = None;
    while let Some(t) = toks.get(*i) {
        match t.text {
            "{" => {
                *i += 1;
                while let Some(t) = toks.get(*i) {
                    match t.text {
                        "}" => {
                            *i += 1;
                            break;
                        }
                        "," => *i += 1,
                        _ => {
                            let before = *i;
                            use_tree(toks, i, first.as_deref(), out);
                            if *i == before {
                                *i += 1;
                            }
                        }
                    }
                }
                return;
            }
            "*" => {
                *i += 1;
                return;
            }
            text if is_ident(text) => {
                *i += 1;
                let name =
                    if text == "self" { last.clone().or(first.clone()).unwrap_or_default() } else { text.to_string() };
                if first.is_none() {
                    first = Some(name.clone());
                }
                last = Some(name);
                if toks.get(*i).map(|t| t.text) == Some("::") {
                    *i += 1;
                    continue;
                }
                if toks.get(*i).map(|t| t.text) == Some("as") {
                    if let Some(alias) = toks.get(*i + 1) {
                        last = Some(alias.text.to_string());
                        *i += 2;
                    }
                }
                break;
            }
            _ => break,
        }
    }
    if let (Some(f), Some(l)) = (first, last) {
        out.push((f, l));
    }
}

/// The top-level modules of a crate and which use which.
#[derive(Debug, Default)]
struct ModuleGraph {
    /// In declaration order.
    modules: Vec<String>,
    /// Module → (used module → line of the first use in the module's file).
    uses: BTreeMap<String, BTreeMap<String, usize>>,
}

/// The graph of the crate whose files are `files` (the root first).
fn module_graph(files: &[SourceFile]) -> ModuleGraph {
    let Some((root_path, root_code)) = files.first() else {
        return ModuleGraph::default();
    };
    let modules = declared_modules(root_code);
    let module_set: BTreeSet<&str> = modules.iter().map(String::as_str).collect();
    // `crate::Name` → the module `lib.rs` re-exports it from.
    let mut exported: BTreeMap<String, String> = BTreeMap::new();
    let toks = tokens(root_code);
    for k in 0..toks.len() {
        if toks[k].text != "use" {
            continue;
        }
        let mut i = k + 1;
        if matches!(toks.get(i).map(|t| t.text), Some("crate" | "self"))
            && toks.get(i + 1).map(|t| t.text) == Some("::")
        {
            i += 2;
        }
        let mut leaves = Vec::new();
        use_tree(&toks, &mut i, None, &mut leaves);
        for (first, name) in leaves {
            if module_set.contains(first.as_str()) && first != name {
                exported.insert(name, first);
            }
        }
    }
    let mut graph = ModuleGraph { modules: modules.clone(), uses: BTreeMap::new() };
    let root_dir = root_path.parent().unwrap_or(Path::new(""));
    for (path, code) in &files[1..] {
        // The top-level module this file belongs to.
        let Some(module) = path
            .strip_prefix(root_dir)
            .ok()
            .and_then(|r| r.components().next())
            .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string())
        else {
            continue;
        };
        let top_level_file = path.parent() == Some(root_dir)
            || (path.ends_with("mod.rs") && path.parent().and_then(Path::parent) == Some(root_dir));
        let toks = tokens(code);
        for k in 0..toks.len().saturating_sub(1) {
            let anchor = toks[k].text;
            // `super::` leaves the module only from its own top-level file.
            let from_root = anchor == "crate" || (anchor == "super" && top_level_file);
            if !from_root || toks[k + 1].text != "::" || (k > 0 && toks[k - 1].text == "::") {
                continue;
            }
            let mut i = k + 2;
            let mut leaves = Vec::new();
            use_tree(&toks, &mut i, None, &mut leaves);
            for (first, _) in leaves {
                let used =
                    if module_set.contains(first.as_str()) { Some(first) } else { exported.get(&first).cloned() };
                if let Some(used) = used.filter(|u| *u != module) {
                    let line = line_of(code, toks[k].at);
                    graph.uses.entry(module.clone()).or_default().entry(used).or_insert(line);
                }
            }
        }
    }
    graph
}

/// Cycles in the graph, each as `a → b → ... → a`, found once each.
fn cycles(graph: &ModuleGraph) -> Vec<Vec<String>> {
    // Tarjan's strongly connected components; a component of more than one
    // module holds a cycle, reported along one of its paths.
    let names: Vec<&String> = graph.modules.iter().collect();
    let index_of = |n: &str| names.iter().position(|m| *m == n);
    let edges: Vec<Vec<usize>> = names
        .iter()
        .map(|n| graph.uses.get(*n).map(|u| u.keys().filter_map(|d| index_of(d)).collect()).unwrap_or_default())
        .collect();
    let mut components = Vec::new();
    let mut state = Tarjan { index: vec![None; names.len()], low: vec![0; names.len()], ..Tarjan::default() };
    for v in 0..names.len() {
        if state.index[v].is_none() {
            state.visit(v, &edges, &mut components);
        }
    }
    let mut out = Vec::new();
    for comp in components.into_iter().filter(|c| c.len() > 1) {
        // A cycle through the component's first module, by breadth-first search.
        let start = *comp.iter().min().unwrap_or(&0);
        let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut end = None;
        while let Some(v) = queue.pop_front() {
            for &w in &edges[v] {
                if w == start {
                    end = Some(v);
                    break;
                }
                if comp.contains(&w) && !prev.contains_key(&w) && w != start {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
            if end.is_some() {
                break;
            }
        }
        let mut path = vec![start];
        let mut v = end.unwrap_or(start);
        while v != start {
            path.push(v);
            v = prev[&v];
        }
        path[1..].reverse();
        path.push(start);
        out.push(path.into_iter().map(|v| names[v].clone()).collect());
    }
    out
}

#[derive(Default)]
struct Tarjan {
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    next: usize,
    stack: Vec<usize>,
}

impl Tarjan {
    fn visit(&mut self, v: usize, edges: &[Vec<usize>], components: &mut Vec<Vec<usize>>) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        for &w in &edges[v] {
            match self.index[w] {
                None => {
                    self.visit(w, edges, components);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(i) if self.stack.contains(&w) => self.low[v] = self.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = self.stack.pop() {
                comp.push(w);
                if w == v {
                    break;
                }
            }
            components.push(comp);
        }
    }
}

/// The problems of crate `name`'s graph against its documented `order`.
fn check_order(name: &str, graph: &ModuleGraph, order: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for cycle in cycles(graph) {
        problems.push(format!("{name}: import cycle {}", cycle.join(" → ")));
    }
    let position = |m: &str| order.iter().position(|o| o == m);
    for m in &graph.modules {
        if position(m).is_none() {
            problems.push(format!("{name}: module `{m}` is missing from ARCHITECTURE.md's module order"));
        }
    }
    for m in order.iter().filter(|m| !graph.modules.contains(m)) {
        problems.push(format!("{name}: ARCHITECTURE.md's module order lists `{m}`, which the crate does not have"));
    }
    for (m, used) in &graph.uses {
        let Some(pm) = position(m) else { continue };
        for (u, line) in used {
            if position(u).is_some_and(|pu| pu > pm) {
                problems.push(format!(
                    "{name}: `{m}` uses `{u}` (src/{m}.rs:{line}), which ARCHITECTURE.md's module order lists after it"
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Function length

/// The functions of `code` (tests already left out) longer than
/// [`MAX_FN_LINES`]: (`Type::name` or `name`, lines, line of `fn`).
fn long_functions(code: &str) -> Vec<(String, usize, usize)> {
    let toks = tokens(code);
    // Item-level `impl` blocks: (first token, last token, self type).
    let mut impls: Vec<(usize, usize, String)> = Vec::new();
    for k in 0..toks.len() {
        let item_level = k == 0 || matches!(toks[k - 1].text, "}" | ";" | "{" | "]" | "unsafe");
        if toks[k].text == "impl" && item_level {
            let open = (k..toks.len()).find(|&j| toks[j].text == "{" || toks[j].text == ";").unwrap_or(k);
            if toks[open].text == "{" {
                impls.push((k, closing(&toks, open), self_type(&toks[k + 1..open])));
            }
        }
    }
    let mut out = Vec::new();
    for k in 0..toks.len().saturating_sub(1) {
        if toks[k].text != "fn" || !is_ident(toks[k + 1].text) {
            continue;
        }
        // The body: the first `{` outside parentheses and brackets, unless a `;` comes first.
        let mut j = k + 2;
        while j < toks.len() && !matches!(toks[j].text, "{" | ";") {
            j = if matches!(toks[j].text, "(" | "[") { closing(&toks, j) + 1 } else { j + 1 };
        }
        if j >= toks.len() || toks[j].text == ";" {
            continue;
        }
        let end = closing(&toks, j);
        let first = line_of(code, toks[k].at);
        let lines = line_of(code, toks[end].at) - first + 1;
        if lines > MAX_FN_LINES {
            let owner = impls.iter().filter(|(a, b, _)| *a < k && k < *b).max_by_key(|(a, _, _)| *a);
            let name = match owner {
                Some((_, _, ty)) => format!("{ty}::{}", toks[k + 1].text),
                None => toks[k + 1].text.to_string(),
            };
            out.push((name, lines, first));
        }
    }
    out
}

/// The self type's name in an `impl` header (`<T> Trait for Type<T> where ...`).
fn self_type(header: &[Token]) -> String {
    let mut depth = 0i32;
    let mut skip_generics = header.first().is_some_and(|t| t.text == "<");
    let mut name = String::new();
    for t in header {
        match t.text {
            "<" => depth += 1,
            ">" => {
                depth -= 1;
                if depth == 0 && skip_generics {
                    skip_generics = false;
                    continue;
                }
            }
            "for" if depth == 0 => name.clear(),
            "where" if depth == 0 => break,
            text if depth == 0 && !skip_generics && is_ident(text) && text != "dyn" => name = text.to_string(),
            _ => {}
        }
    }
    name
}

/// Problems for the long functions not in `exceptions`, and notes for the
/// exceptions that are no longer long.
fn check_long(long: &[(String, String, usize, usize)], exceptions: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    for (file, name, lines, line) in long {
        if !exceptions.iter().any(|(f, n)| f == file && n == name) {
            problems.push(format!(
                "{file}:{line}: fn {name} is {lines} lines (at most {MAX_FN_LINES}): split it into named steps"
            ));
        }
    }
    let notes = exceptions
        .iter()
        .filter(|(f, n)| !long.iter().any(|(file, name, _, _)| file == f && name == n))
        .map(|(f, n)| {
            format!("{f}: fn {n} is no longer over {MAX_FN_LINES} lines: take it off xtask's LONG_FN_EXCEPTIONS")
        })
        .collect();
    (problems, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate made of `(file, text)` pairs, `lib.rs` first.
    fn graph(files: &[(&str, &str)]) -> ModuleGraph {
        let files: Vec<SourceFile> =
            files.iter().map(|(p, t)| (PathBuf::from("src").join(p), without_tests(&code_only(t)))).collect();
        module_graph(&files)
    }

    fn order(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const LIB: &str =
        "pub mod a;\nmod b;\npub mod c;\n#[cfg(test)]\nmod tests;\npub use c::{Thing, Other as Renamed};\n";

    #[test]
    fn a_clean_crate_passes() {
        let g = graph(&[
            ("lib.rs", LIB),
            ("a.rs", "// crate::c::X in a comment\nconst S: &str = \"crate::c::X\";\nfn f() -> u8 { 1 }\n"),
            ("b.rs", "use crate::a;\nuse super::Root;\nfn g<'a>(x: &'a str) -> char { 'c' }\n"),
            ("c.rs", "use crate::{a::f, b::{self, G}};\n#[cfg(test)]\nmod tests {\n    use crate::Renamed;\n}\n"),
        ]);
        assert_eq!(g.modules, ["a", "b", "c"]);
        assert_eq!(g.uses["b"].keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(g.uses["c"].keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(!g.uses.contains_key("a"), "comments, strings and tests are not uses: {g:?}");
        assert_eq!(check_order("k", &g, &order(&["a", "b", "c"])), Vec::<String>::new());
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let g = graph(&[
            ("lib.rs", LIB),
            ("a.rs", "pub fn f() { crate::b::g() }\n"),
            ("b.rs", "pub fn g() { let _ = crate::Thing::new(); }\n"),
            ("c.rs", "pub struct Thing; pub fn h() { super::a::f() }\n"),
        ]);
        // a → b → c (through the re-export) → a.
        assert_eq!(cycles(&g), vec![order(&["a", "b", "c", "a"])]);
        let problems = check_order("k", &g, &order(&["a", "b", "c"]));
        assert_eq!(problems[0], "k: import cycle a → b → c → a");
        assert!(problems.iter().any(|p| p.contains("`a` uses `b` (src/a.rs:1)")), "{problems:?}");
    }

    #[test]
    fn out_of_order_missing_and_stale_modules_are_refused() {
        let g = graph(&[
            ("lib.rs", LIB),
            ("a.rs", "use crate::c::Thing;\n"),
            ("b.rs", ""),
            ("c.rs", "use crate::b::X;\nfn f() { let s = r#\"crate::a \"# ; }\n"),
        ]);
        assert!(cycles(&g).is_empty());
        let problems = check_order("k", &g, &order(&["b", "a", "c", "gone"]));
        assert_eq!(
            problems,
            [
                "k: ARCHITECTURE.md's module order lists `gone`, which the crate does not have",
                "k: `a` uses `c` (src/a.rs:1), which ARCHITECTURE.md's module order lists after it",
            ]
        );
        let problems = check_order("k", &g, &order(&["b", "c"]));
        assert!(problems.contains(&"k: module `a` is missing from ARCHITECTURE.md's module order".to_string()));
    }

    #[test]
    fn test_modules_and_their_files_are_left_out() {
        let code = without_tests(&code_only(LIB));
        assert_eq!(declared_modules(&code), ["a", "b", "c"]);
        let code =
            without_tests(&code_only("#[cfg(test)]\n#[path = \"x.rs\"]\nmod w;\n#[path = \"y.rs\"]\nmod v;\nmod u;"));
        assert_eq!(declared_modules(&code), ["u"], "test and #[path] modules are not the crate's files");
        assert_eq!(code.lines().count(), LIB.lines().count(), "lines are kept");
    }

    #[test]
    fn the_module_order_table_is_read() {
        let md = "# A\n\n## Module order\n\ntext\n\n| crate | modules |\n|---|---|\n\
                  | `maskforge-x` | `error` → `a`, then `b_c` |\n| `maskforge-y` | `one` |\n\n## Next\n\n| `z` | `q` |\n";
        let orders = module_orders(md).unwrap();
        assert_eq!(orders.len(), 2);
        assert_eq!(orders["maskforge-x"], ["error", "a", "b_c"]);
        assert!(module_orders("## Module order\n| `x` | `a` |\n| `x` | `b` |\n").is_err());
    }

    #[test]
    fn long_functions_are_found_with_their_type_and_excepted_by_name() {
        let body = "    let x = 1;\n".repeat(MAX_FN_LINES - 2);
        let code = format!(
            "trait T {{ fn decl(&self); }}\nimpl<F: Fn() -> u8> fmt::Display for Wrapper<F> {{\n    fn fmt(&self) {{\n{body}    }}\n}}\n\
             fn short() -> impl Fn() {{ || () }}\npub fn free(a: [u8; 2]) -> u8 {{\n{body}\n}}\n"
        );
        let long = long_functions(&code_only(&code));
        let names: Vec<(&str, usize)> = long.iter().map(|(n, l, _)| (n.as_str(), *l)).collect();
        assert_eq!(names, [("free", MAX_FN_LINES + 1)], "fmt is exactly {MAX_FN_LINES} lines");
        let code = code.replacen("    fn fmt(&self) {\n", "    fn fmt(&self) {\n\n", 1);
        let long = long_functions(&code_only(&code));
        assert_eq!(long[0].0, "Wrapper::fmt");
        let found: Vec<(String, String, usize, usize)> =
            long.into_iter().map(|(n, l, line)| ("x.rs".to_string(), n, l, line)).collect();
        let (problems, notes) = check_long(&found, &[("x.rs", "free"), ("x.rs", "gone")]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let expect = format!("x.rs:3: fn Wrapper::fmt is {} lines", MAX_FN_LINES + 1);
        assert!(problems[0].starts_with(&expect), "{problems:?}");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("fn gone is no longer over"));
    }

    #[test]
    fn literals_and_comments_are_blanked_but_lifetimes_kept() {
        let code = code_only("let c = '{'; let s = \"}\\\"\"; /* { /* } */ */ fn f<'a>() {} let r = br#\"}\"#;");
        assert_eq!(code.matches('{').count(), 1, "{code}");
        assert_eq!(code.matches('}').count(), 1, "{code}");
        assert!(code.contains("f<'a>"), "{code}");
    }
}
