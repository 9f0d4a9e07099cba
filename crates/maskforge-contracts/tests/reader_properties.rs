//! Property tests of the manifest reader: whatever rows a manifest holds,
//! every row the reader accepts opens a file lexically under the dataset
//! root, and every row it does not accept is reported (accepted + skipped =
//! rows), with a `file:line` key.

use maskforge_contracts::{is_lexically_under, parse_manifest, ReadOptions, RelPath};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::{Component, Path};

/// A path field: plain relative paths, and every way to leave the root.
fn path_field() -> impl Strategy<Value = Vec<u8>> {
    let name = "[a-zA-Z0-9_ .,\"-]{1,8}";
    let rel = prop::collection::vec(name, 1..4).prop_map(|parts| parts.join("/"));
    prop_oneof![
        4 => rel.clone().prop_map(String::into_bytes),
        1 => rel.clone().prop_map(|r| format!("/{r}").into_bytes()),
        1 => (rel.clone(), 1..4usize).prop_map(|(r, n)| format!("{}{r}", "../".repeat(n)).into_bytes()),
        1 => (rel.clone(), rel.clone()).prop_map(|(a, b)| format!("{a}/../{b}").into_bytes()),
        1 => (rel.clone(), rel.clone()).prop_map(|(a, b)| format!("{a}/./{b}").into_bytes()),
        1 => rel.clone().prop_map(|r| format!("./{r}").into_bytes()),
        1 => rel.clone().prop_map(|r| format!("C:\\{}", r.replace('/', "\\")).into_bytes()),
        1 => rel.clone().prop_map(|r| format!("a\\..\\..\\{r}").into_bytes()),
        1 => rel.clone().prop_map(|r| format!("{r}\0x").into_bytes()),
        1 => Just(b"/etc/passwd".to_vec()),
        1 => Just(b"../../../etc/passwd".to_vec()),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
        1 => ".{0,16}".prop_map(String::into_bytes),
    ]
}

fn index_field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (0usize..6).prop_map(|i| i.to_string().into_bytes()),
        1 => any::<u64>().prop_map(|i| i.to_string().into_bytes()),
        1 => Just(b"-1".to_vec()),
        1 => Just(b" 1 ".to_vec()),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn class_field() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"masked".to_vec()),
        Just(b"unmasked".to_vec()),
        Just(b"incorrect".to_vec()),
        Just(b"nope".to_vec()),
        prop::collection::vec(any::<u8>(), 0..6),
    ]
}

/// A row: the five columns of the header, or a wrong number of fields.
fn row() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let good = (path_field(), index_field(), class_field(), "[a-z/]{0,6}", "[0-9]{1,4}|x")
        .prop_map(|(p, i, c, g, b)| vec![p, i, c, g.into_bytes(), b.into_bytes()]);
    let any_width = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..9);
    prop_oneof![8 => good, 1 => any_width]
}

/// The bytes of a manifest with these rows, and whether the header has an index column.
fn manifest(rows: &[Vec<Vec<u8>>], with_index: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    let index_name = if with_index { "class_index" } else { "unused" };
    w.write_record(["path", index_name, "class", "group", "bytes"]).unwrap();
    for r in rows {
        w.write_byte_record(&csv::ByteRecord::from(r.clone())).unwrap();
    }
    w.into_inner().unwrap()
}

fn classes() -> Vec<String> {
    vec!["incorrect".into(), "masked".into(), "unmasked".into()]
}

/// Paths any platform would read as leaving the root, whatever else they hold.
fn obviously_outside(path: &[u8]) -> bool {
    let s = String::from_utf8_lossy(path);
    s.starts_with('/') || s.contains('\\') || s.split('/').any(|p| p == "..") || s.is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn accepted_rows_stay_under_the_root_and_all_others_are_reported(
        rows in prop::collection::vec(row(), 0..40),
        with_index in prop::bool::weighted(0.8),
        with_classes in any::<bool>(),
    ) {
        let bytes = manifest(&rows, with_index);
        let classes = classes();
        let options = ReadOptions { classes: with_classes.then_some(classes.as_slice()) };
        let m = parse_manifest(Path::new("/manifests/train.csv"), &bytes, options).unwrap();

        prop_assert_eq!(m.entries.len() + m.skipped.len(), rows.len());
        // Keys are file:line and name distinct rows; accepted and skipped rows never overlap.
        let mut lines = BTreeSet::new();
        for e in &m.entries {
            prop_assert!(lines.insert(e.line));
        }
        for f in &m.skipped {
            let line: u64 = f.path.strip_prefix("train.csv:").expect("file:line key").parse().unwrap();
            prop_assert!(lines.insert(line), "line {} reported twice", line);
            prop_assert!(!f.reason.is_empty() && !f.reason.contains('\n'), "reason {:?}", f.reason);
        }

        // Where each row starts (fields may hold line breaks).
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
        let row_lines: Vec<u64> = reader.byte_records().map(|r| r.unwrap().position().unwrap().line()).collect();
        prop_assert_eq!(row_lines.len(), rows.len());
        let mut accepted = m.entries.iter();
        for (i, r) in rows.iter().enumerate() {
            let row_ok = m.entries.iter().any(|e| e.line == row_lines[i]);
            let path = &r[0];
            if obviously_outside(path) || r.len() != 5 {
                prop_assert!(!row_ok || r.len() != 5, "row {} with path {:?} accepted", i, String::from_utf8_lossy(path));
            }
            if row_ok {
                let e = accepted.next().unwrap();
                prop_assert_eq!(e.path.as_str().as_bytes(), path.as_slice());
                if with_classes {
                    prop_assert!(e.class_index < classes.len());
                }
            }
        }
        for root in [Path::new("/data/root"), Path::new("relative/root"), Path::new(".")] {
            for e in &m.entries {
                let file = e.path.under(root);
                prop_assert!(is_lexically_under(&file, root), "{} not under {}", file.display(), root.display());
                let rest = file.strip_prefix(root).unwrap();
                prop_assert!(rest.components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }

    #[test]
    fn any_accepted_string_joins_under_the_root(s in ".{0,24}") {
        if let Ok(p) = RelPath::new(&s) {
            let root = Path::new("/data/root");
            prop_assert!(is_lexically_under(&p.under(root), root));
            prop_assert!(!Path::new(&s).is_absolute());
            prop_assert!(Path::new(&s).components().all(|c| matches!(c, Component::Normal(_))));
        } else {
            // Refused strings are refused for a reason a user can read.
            prop_assert!(!RelPath::new(&s).unwrap_err().to_string().is_empty());
        }
    }
}
