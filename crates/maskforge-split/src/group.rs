//! Group keys: images with the same key always land in the same split, so a
//! person (or a photo and its masked versions) is never on both sides.

use crate::SplitError;
use maskforge_contracts::{mask_files, ContractError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The file `maskforge mask` writes at the top of its output tree
/// (`csv_name(ANNOTATIONS, None)` of [`maskforge_contracts::mask_files`]).
pub const ANNOTATIONS_FILE: &str = "annotations.csv";

/// How images are grouped (`--group-by`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum GroupBy {
    /// `source` when ROOT/annotations.csv exists, otherwise `none`.
    Auto,
    /// The `source` column of ROOT/annotations.csv: an original photo and
    /// every masked version of it form one group.
    Source,
    /// The image's parent folder relative to ROOT (RMFD keeps one person per folder).
    Parent,
    /// The first capture group of the pattern in the relative path (or the
    /// whole match when the pattern has no group).
    Regex(String),
    /// Every image is its own group.
    None,
}

impl FromStr for GroupBy {
    type Err = SplitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(GroupBy::Auto),
            "source" => Ok(GroupBy::Source),
            "parent" => Ok(GroupBy::Parent),
            "none" => Ok(GroupBy::None),
            _ => match s.strip_prefix("regex:") {
                Some(p) if !p.is_empty() => Ok(GroupBy::Regex(p.to_string())),
                _ => Err(SplitError::GroupBySyntax(s.to_string())),
            },
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::Auto => f.write_str("auto"),
            GroupBy::Source => f.write_str("source"),
            GroupBy::Parent => f.write_str("parent"),
            GroupBy::Regex(p) => write!(f, "regex:{p}"),
            GroupBy::None => f.write_str("none"),
        }
    }
}

impl From<GroupBy> for String {
    fn from(g: GroupBy) -> String {
        g.to_string()
    }
}

impl TryFrom<String> for GroupBy {
    type Error = SplitError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Group keys for a list of images, plus how they were found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grouping {
    /// One key per input path, same order.
    pub keys: Vec<String>,
    /// `--group-by source` only: images whose `output` row was found.
    pub annotated: usize,
    /// `--group-by source` only: images without a row whose path inside their
    /// class folder is an annotated source (the originals `maskforge mask`
    /// copies into an `unmasked` class); they join that source's group.
    pub originals_joined: usize,
    /// `--group-by source` only: images with no row at all, each its own group.
    pub unannotated: usize,
}

impl GroupBy {
    /// Replaces `Auto` by what it means for this root: `Source` when the
    /// mask stage's annotations are there (merged or still in shards, which
    /// [`GroupBy::precheck`] then refuses), else `None`.
    pub fn resolve(&self, root: &Path) -> GroupBy {
        match self {
            GroupBy::Auto if root.join(ANNOTATIONS_FILE).is_file() || has_shard_annotations(root) => GroupBy::Source,
            GroupBy::Auto => GroupBy::None,
            other => other.clone(),
        }
    }

    /// Checks what can be checked without the image list (annotations file
    /// present, pattern compiles), so errors come before any slow work.
    pub fn precheck(&self, root: &Path) -> Result<(), SplitError> {
        match self.resolve(root) {
            GroupBy::Source => {
                let path = root.join(ANNOTATIONS_FILE);
                if path.is_file() {
                    Ok(())
                } else if has_shard_annotations(root) {
                    Err(SplitError::UnmergedShards(root.to_path_buf()))
                } else {
                    Err(SplitError::MissingAnnotations(path))
                }
            }
            GroupBy::Regex(p) => compile(&p).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The group key of each path (relative to `root`, `/`-separated, the
    /// first component being the class folder).
    pub fn keys(&self, root: &Path, rel_paths: &[String]) -> Result<Grouping, SplitError> {
        match self.resolve(root) {
            GroupBy::Auto | GroupBy::None => Ok(Grouping { keys: rel_paths.to_vec(), ..Grouping::default() }),
            GroupBy::Parent => Ok(Grouping {
                keys: rel_paths
                    .iter()
                    .map(|p| p.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("").to_string())
                    .collect(),
                ..Grouping::default()
            }),
            GroupBy::Regex(pattern) => regex_keys(&pattern, rel_paths),
            GroupBy::Source => {
                let annotations = read_annotations(&root.join(ANNOTATIONS_FILE))?;
                Ok(source_keys(&annotations, rel_paths))
            }
        }
    }
}

/// `annotations.shard-I-of-N.csv` files of `maskforge mask --shard` runs
/// that were not merged yet.
fn has_shard_annotations(root: &Path) -> bool {
    mask_files::has_shard_files(root, mask_files::ANNOTATIONS)
}

fn compile(pattern: &str) -> Result<regex::Regex, SplitError> {
    regex::Regex::new(pattern).map_err(|e| SplitError::Regex {
        pattern: pattern.to_string(),
        message: e.to_string().split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

fn regex_keys(pattern: &str, rel_paths: &[String]) -> Result<Grouping, SplitError> {
    let re = compile(pattern)?;
    let mut keys = Vec::with_capacity(rel_paths.len());
    let mut unmatched: Vec<&str> = Vec::new();
    for p in rel_paths {
        match re.captures(p) {
            Some(caps) => {
                let m = caps.get(1).or_else(|| caps.get(0));
                keys.push(m.map(|m| m.as_str()).unwrap_or("").to_string());
            }
            None => unmatched.push(p),
        }
    }
    // An image without a key would silently be its own group, which is the
    // leak the grouping exists to prevent: refuse instead.
    if !unmatched.is_empty() {
        let examples = unmatched.iter().take(3).map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
        return Err(SplitError::RegexNoMatch {
            pattern: pattern.to_string(),
            unmatched: unmatched.len(),
            total: rel_paths.len(),
            examples,
        });
    }
    Ok(Grouping { keys, ..Grouping::default() })
}

/// `output` → `source` from annotations.csv (one row per face, so several
/// rows may share an output; they name the same source).
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    /// The source photo of each output path (both relative, `/`-separated).
    pub source_of_output: HashMap<String, String>,
}

/// Reads the `source` and `output` columns of `annotations.csv` (see
/// [`maskforge_contracts::read_output_sources`]); other columns are ignored.
pub fn read_annotations(path: &Path) -> Result<Annotations, SplitError> {
    if !path.is_file() {
        return Err(SplitError::MissingAnnotations(path.to_path_buf()));
    }
    let source_of_output = maskforge_contracts::read_output_sources(path).map_err(|e| match e {
        ContractError::Format { path, message } => SplitError::Annotations { path, message },
        ContractError::Io { path, source } => SplitError::Io { path, source },
        other => SplitError::Annotations { path: path.to_path_buf(), message: other.to_string() },
    })?;
    Ok(Annotations { source_of_output })
}

fn source_keys(annotations: &Annotations, rel_paths: &[String]) -> Grouping {
    let sources: HashSet<&str> = annotations.source_of_output.values().map(String::as_str).collect();
    let mut g = Grouping { keys: Vec::with_capacity(rel_paths.len()), ..Grouping::default() };
    for p in rel_paths {
        if let Some(source) = annotations.source_of_output.get(p) {
            g.annotated += 1;
            g.keys.push(source.clone());
        } else if let Some(inside_class) = p.split_once('/').map(|(_, rest)| rest).filter(|r| sources.contains(r)) {
            g.originals_joined += 1;
            g.keys.push(inside_class.to_string());
        } else {
            g.unannotated += 1;
            g.keys.push(p.clone());
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_and_prints() {
        for s in ["auto", "source", "parent", "none", "regex:^[^/]+/([^/]+)/"] {
            assert_eq!(s.parse::<GroupBy>().unwrap().to_string(), s);
        }
        assert!("regex:".parse::<GroupBy>().is_err());
        assert!("folder".parse::<GroupBy>().is_err());
    }

    #[test]
    fn parent_none_and_regex_keys() {
        let root = Path::new("/nonexistent");
        let p = paths(&["masked/p1/a.jpg", "masked/p1/b.jpg", "unmasked/p1/c.jpg", "unmasked/d.jpg"]);
        assert_eq!(GroupBy::Parent.keys(root, &p).unwrap().keys, ["masked/p1", "masked/p1", "unmasked/p1", "unmasked"]);
        assert_eq!(GroupBy::None.keys(root, &p).unwrap().keys, p);
        // Person folder regardless of class: one person never crosses classes' splits.
        let by_person = GroupBy::Regex(r"^[^/]+/([^/]+)/".into());
        let err = by_person.keys(root, &p).unwrap_err();
        assert!(matches!(err, SplitError::RegexNoMatch { unmatched: 1, total: 4, .. }), "{err}");
        assert!(err.to_string().contains("unmasked/d.jpg"), "{err}");
        let keys = by_person.keys(root, &p[..3]).unwrap().keys;
        assert_eq!(keys, ["p1", "p1", "p1"]);
        assert!(matches!(GroupBy::Regex("(".into()).precheck(root), Err(SplitError::Regex { .. })));
    }

    #[test]
    fn source_groups_from_annotations_with_originals_and_strays() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join(ANNOTATIONS_FILE),
            "source,output,face,variant,class,template\n\
             p1/a.jpg,correct/p1/a.jpg,0,correct,correct,t1\n\
             p1/a.jpg,correct/p1/a.jpg,1,correct,correct,t1\n\
             p1/a.jpg,chin/p1/a.jpg,0,chin,incorrect,t2\n\
             \"p2/b,c.jpg\",correct/p2/b.jpg,0,correct,correct,t1\n",
        )
        .unwrap();
        let p =
            paths(&["chin/p1/a.jpg", "correct/p1/a.jpg", "correct/p2/b.jpg", "unmasked/p1/a.jpg", "unmasked/zz.jpg"]);
        assert_eq!(GroupBy::Auto.resolve(root), GroupBy::Source);
        let g = GroupBy::Auto.keys(root, &p).unwrap();
        assert_eq!(g.keys, ["p1/a.jpg", "p1/a.jpg", "p2/b,c.jpg", "p1/a.jpg", "unmasked/zz.jpg"]);
        assert_eq!((g.annotated, g.originals_joined, g.unannotated), (3, 1, 1));

        std::fs::remove_file(root.join(ANNOTATIONS_FILE)).unwrap();
        std::fs::write(root.join("annotations.shard-1-of-2.csv"), "source,output\n").unwrap();
        assert_eq!(GroupBy::Auto.resolve(root), GroupBy::Source, "shards mean source grouping was intended");
        let err = GroupBy::Auto.precheck(root).unwrap_err();
        assert!(err.to_string().contains("maskforge merge"), "{err}");
        std::fs::remove_file(root.join("annotations.shard-1-of-2.csv")).unwrap();
        assert_eq!(GroupBy::Auto.resolve(root), GroupBy::None);
        assert!(matches!(GroupBy::Source.precheck(root), Err(SplitError::MissingAnnotations(_))));
        std::fs::write(root.join(ANNOTATIONS_FILE), "src,out\na,b\n").unwrap();
        let err = GroupBy::Source.keys(root, &p).unwrap_err();
        assert!(err.to_string().contains("no \"source\" column"), "{err}");
    }
}
