//! Class folders and output file names: `class/dir/stem[__ext][__variant][__faceK].ext`.

pub use crate::options::UNMASKED_KEY;
use crate::options::{OutputFormat, UnmaskedMode, VariantMode};
use maskforge_mask::MaskVariant;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The class key of whole images with a bare face (`--bare-faces CLASS`).
pub const BARE_KEY: &str = "bare_faces";

/// Decides where every output goes.
#[derive(Clone, Debug)]
pub struct Naming {
    /// Variant name or [`UNMASKED_KEY`] → class folder.
    classes: HashMap<String, String>,
    /// Classes that several variants (or the originals) feed: their files get
    /// a `__variant` suffix so they do not overwrite each other.
    suffixed_classes: HashSet<String>,
    format: OutputFormat,
    /// Sources whose output name would collide with another's after a format
    /// change (`a.jpg` and `a.png` both to `a.png`): they keep `__ext`.
    ext_suffixed: HashSet<String>,
}

impl Naming {
    /// The naming of a run: its variants and mode, class folders
    /// (`class_map`, else the variant's name), originals' mode, output
    /// format, and the sources whose names keep their extension.
    pub fn new(
        variants: &[(MaskVariant, f32)],
        mode: VariantMode,
        class_map: &HashMap<String, String>,
        unmasked: UnmaskedMode,
        format: OutputFormat,
        ext_suffixed: HashSet<String>,
    ) -> Naming {
        let class_for = |key: &str| class_map.get(key).cloned().unwrap_or_else(|| key.to_string());
        let mut classes: HashMap<String, String> =
            MaskVariant::ALL.iter().map(|v| (v.as_str().to_string(), class_for(v.as_str()))).collect();
        classes.insert(UNMASKED_KEY.into(), class_for(UNMASKED_KEY));
        let mut producers: HashMap<String, usize> = HashMap::new();
        match mode {
            VariantMode::Each => {
                for (v, _) in variants {
                    *producers.entry(classes[v.as_str()].clone()).or_default() += 1;
                }
            }
            VariantMode::Random => {
                let set: BTreeSet<&String> = variants.iter().map(|(v, _)| &classes[v.as_str()]).collect();
                for c in set {
                    *producers.entry(c.clone()).or_default() += 1;
                }
            }
        }
        if unmasked != UnmaskedMode::None {
            *producers.entry(classes[UNMASKED_KEY].clone()).or_default() += 1;
        }
        let suffixed_classes = producers.into_iter().filter(|(_, n)| *n > 1).map(|(c, _)| c).collect();
        Naming { classes, suffixed_classes, format, ext_suffixed }
    }

    /// Files whole images with a bare face under `class` ([`BARE_KEY`]);
    /// their names get the `__variant` suffix when several variants may
    /// land there.
    pub fn with_bare_class(mut self, class: &str, variants: usize) -> Naming {
        self.classes.insert(BARE_KEY.into(), class.to_string());
        if variants > 1 {
            self.suffixed_classes.insert(class.to_string());
        }
        self
    }

    /// The class folder of a variant name, [`UNMASKED_KEY`] or [`BARE_KEY`].
    pub fn class_of<'k>(&'k self, key: &'k str) -> &'k str {
        self.classes.get(key).map(String::as_str).unwrap_or(key)
    }

    /// Every class key with its folder, sorted (as recorded in the settings).
    pub fn classes(&self) -> BTreeMap<String, String> {
        self.classes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// `class/dir/stem[__ext][__variant][__faceK].ext` for a source path;
    /// `keep_ext` keeps the source's extension whatever the output format
    /// (linked or copied originals); `face` > 0 gets a suffix (crops).
    pub fn output_rel(&self, source: &str, class: &str, variant: &str, face: Option<usize>, keep_ext: bool) -> String {
        let (dir, file) = match source.rsplit_once('/') {
            Some((d, f)) => (Some(d), f),
            None => (None, source),
        };
        let (stem, ext) = match file.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s, e),
            _ => (file, ""),
        };
        let out_ext = match self.format {
            _ if keep_ext => ext.to_string(),
            OutputFormat::Same => ext.to_string(),
            OutputFormat::Jpg => "jpg".into(),
            OutputFormat::Png => "png".into(),
        };
        let mut name = stem.to_string();
        if !keep_ext && self.ext_suffixed.contains(source) {
            name.push_str(&format!("__{}", ext.to_ascii_lowercase()));
        }
        if self.suffixed_classes.contains(class) {
            name.push_str(&format!("__{variant}"));
        }
        if let Some(k) = face.filter(|&k| k > 0) {
            name.push_str(&format!("__face{k}"));
        }
        let file = if out_ext.is_empty() { name } else { format!("{name}.{out_ext}") };
        match dir {
            Some(d) => format!("{class}/{d}/{file}"),
            None => format!("{class}/{file}"),
        }
    }
}

/// The sources whose output names collide once the extension is replaced
/// (same path but for the extension), for [`Naming::new`]. Only needed
/// when the output format is not `Same`.
pub fn extension_collisions<'a>(sources: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    let mut by_stem: HashMap<&str, Vec<&str>> = HashMap::new();
    for rel in sources {
        let stem = rel.rsplit_once('.').map(|(s, _)| s).unwrap_or(rel);
        by_stem.entry(stem).or_default().push(rel);
    }
    by_stem.into_values().filter(|l| l.len() > 1).flatten().map(str::to_string).collect()
}

/// The name of draw `draw` of `output` (`--draws`): the output itself for
/// the first draw, `stem__drawK.ext` for the others.
pub fn with_draw(output: String, draw: u32) -> String {
    with_suffix(output, "draw", draw)
}

/// The name of framing `k` of a crop (`--framings`): the crop itself for the
/// standard framing, `stem__frameK.ext` for the others.
pub fn with_framing(output: String, k: u32) -> String {
    with_suffix(output, "frame", k)
}

/// `stem__{tag}{n}.ext` for n > 0; the output itself for 0.
fn with_suffix(output: String, tag: &str, n: u32) -> String {
    if n == 0 {
        return output;
    }
    let (dir, file) = output.rsplit_once('/').map_or(("", output.as_str()), |(d, f)| (d, f));
    let file = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}__{tag}{n}.{ext}"),
        _ => format!("{file}__{tag}{n}"),
    };
    if dir.is_empty() {
        file
    } else {
        format!("{dir}/{file}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(
        mode: VariantMode,
        map: &[(&str, &str)],
        unmasked: UnmaskedMode,
        format: OutputFormat,
        ext: &[&str],
    ) -> Naming {
        let variants = [(MaskVariant::Correct, 1.0), (MaskVariant::NoseExposed, 1.0), (MaskVariant::Chin, 1.0)];
        let map = map.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Naming::new(&variants, mode, &map, unmasked, format, ext.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn later_draws_get_a_suffix_before_the_extension() {
        assert_eq!(with_draw("correct/p/a.jpg".into(), 0), "correct/p/a.jpg");
        assert_eq!(with_draw("correct/p/a__face1.jpg".into(), 2), "correct/p/a__face1__draw2.jpg");
        assert_eq!(with_draw("correct/a".into(), 1), "correct/a__draw1");
        assert_eq!(with_draw("a.png".into(), 3), "a__draw3.png");
        assert_eq!(with_framing(with_draw("m/a__face1.jpg".into(), 2), 1), "m/a__face1__draw2__frame1.jpg");
        assert_eq!(with_framing("u/a__face0.jpg".into(), 0), "u/a__face0.jpg");
    }

    #[test]
    fn shared_classes_get_variant_suffixes_and_crops_face_suffixes() {
        let map = [("correct", "masked"), ("nose_exposed", "incorrect"), ("chin", "incorrect"), ("unmasked", "plain")];
        let n = naming(VariantMode::Each, &map, UnmaskedMode::Encode, OutputFormat::Same, &[]);
        assert_eq!(n.output_rel("p/a.jpg", "masked", "correct", None, false), "masked/p/a.jpg");
        assert_eq!(n.output_rel("p/a.jpg", "incorrect", "chin", Some(0), false), "incorrect/p/a__chin.jpg");
        assert_eq!(n.output_rel("a.jpg", "incorrect", "chin", Some(2), false), "incorrect/a__chin__face2.jpg");
        assert_eq!(n.output_rel("a.jpg", n.class_of(UNMASKED_KEY), "unmasked", None, true), "plain/a.jpg");
        // In random mode one output per image: a shared class needs no suffix.
        let n = naming(VariantMode::Random, &map, UnmaskedMode::None, OutputFormat::Same, &[]);
        assert_eq!(n.output_rel("a.jpg", "incorrect", "chin", None, false), "incorrect/a.jpg");
    }

    #[test]
    fn format_changes_keep_colliding_names_apart() {
        let ext = extension_collisions(["x.jpg", "x.png", "y.jpg", ".z", "d/.z"]);
        assert_eq!(ext, ["x.jpg", "x.png"].iter().map(|s| s.to_string()).collect());
        let n = naming(VariantMode::Each, &[], UnmaskedMode::Hardlink, OutputFormat::Jpg, &["x.jpg", "x.png"]);
        assert_eq!(n.output_rel("x.png", "chin", "chin", None, false), "chin/x__png.jpg");
        assert_eq!(n.output_rel("y.png", "chin", "chin", None, false), "chin/y.jpg");
        assert_eq!(n.output_rel("x.png", "unmasked", "unmasked", None, true), "unmasked/x.png");
        assert_eq!(n.output_rel("noext", "chin", "chin", None, false), "chin/noext.jpg");
    }
}
