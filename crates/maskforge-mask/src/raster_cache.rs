//! Rendered template rasters kept on disk. Rendering the eight built-in SVGs
//! at [`RENDER_SIZE`] takes about 3 s of CPU (their fabric noise and blurs);
//! reading the rasters back takes milliseconds. A file is named by
//! everything its pixels depend on: the template's fingerprint (descriptor
//! and art), the render size, this crate's rendering code and the resolved
//! dependency versions (the workspace's Cargo.lock, at build time). So a
//! cached raster is the one rendering would give, and the outputs of a run
//! do not depend on the cache. The files are `maskforge_imageio::checked`
//! files: checksummed, written by rename (parallel runs never see half a
//! file; killed writers' leftovers are removed by the next write); one that
//! does not read back whole is rendered again and rewritten.

use crate::raster::{Level, Pyramid, RenderedTemplate, RENDER_SIZE};
use maskforge_rng::stable_hash;
use std::path::PathBuf;

/// Start of every cache file; a new layout gets a new one.
const MAGIC: &[u8; 8] = b"MFRAST02";
/// Bytes of the body before the pixels: width, height, scale, recolourable.
const HEADER_LEN: usize = 4 + 4 + 4 + 1;

/// The code whose changes invalidate cached rasters.
const RENDER_CODE: [&str; 3] =
    [include_str!("template.rs"), include_str!("raster.rs"), include_str!("raster_cache.rs")];

/// What names a template's raster: the template's name and fingerprint
/// (`Template::raster_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RasterKey<'a> {
    /// The template's name.
    pub name: &'a str,
    /// Hash of the template's descriptor and artwork ([`crate::Template::fingerprint`]).
    pub fingerprint: u64,
}

/// A folder of cached template rasters (see the module docs).
#[derive(Clone, Debug)]
pub struct RasterCache {
    dir: PathBuf,
    renderer: u64,
}

impl RasterCache {
    /// A cache in `dir` (created when first written). `None` when this build
    /// cannot name its dependency versions, so it could not tell its own
    /// rasters from another build's.
    pub fn new(dir: impl Into<PathBuf>) -> Option<RasterCache> {
        let lock = option_env!("MASKFORGE_LOCK_HASH")?;
        let mut key = lock.as_bytes().to_vec();
        for code in RENDER_CODE {
            key.extend_from_slice(&stable_hash(code.as_bytes()).to_le_bytes());
        }
        Some(RasterCache { dir: dir.into(), renderer: stable_hash(&key) })
    }

    /// The file of a template's raster.
    pub fn path(&self, key: RasterKey) -> PathBuf {
        self.dir.join(format!("{}-{:016x}-{RENDER_SIZE}-{:016x}.raster", key.name, key.fingerprint, self.renderer))
    }

    /// The cached raster of a template, if there is a whole one.
    pub(crate) fn load(&self, key: RasterKey) -> Option<RenderedTemplate> {
        decode(maskforge_imageio::read_checked(&self.path(key), MAGIC)?.body())
    }

    /// Writes `raster` for a template, then removes the rasters another
    /// renderer (another build) wrote over an hour ago
    /// (`maskforge_imageio::checked::remove_superseded`). Best effort: a
    /// cache that cannot be written only means rendering again next time.
    pub(crate) fn store(&self, key: RasterKey, raster: &RenderedTemplate) {
        let path = self.path(key);
        if maskforge_imageio::write_checked(&path, MAGIC, &encode(raster)).is_ok() {
            let own = format!("-{:016x}.raster", self.renderer);
            maskforge_imageio::checked::remove_superseded(&path, |name| {
                name.ends_with(".raster") && !name.ends_with(&own)
            });
        }
    }
}

/// The body of a cache file: the header, then the base level's pixels.
fn encode(raster: &RenderedTemplate) -> Vec<u8> {
    let base = raster.pixels.base();
    let mut bytes = Vec::with_capacity(HEADER_LEN + base.data.len() * 5);
    bytes.extend_from_slice(&base.width.to_le_bytes());
    bytes.extend_from_slice(&base.height.to_le_bytes());
    bytes.extend_from_slice(&raster.scale.to_bits().to_le_bytes());
    bytes.push(raster.recolourable as u8);
    bytes.extend(base.data.iter().flatten());
    bytes
}

fn decode(body: &[u8]) -> Option<RenderedTemplate> {
    if body.len() < HEADER_LEN {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
    let (width, height) = (u32_at(0), u32_at(4));
    let scale = f32::from_bits(u32_at(8));
    let pixels = &body[HEADER_LEN..];
    if pixels.len() != width as usize * height as usize * 5 || width == 0 || height == 0 {
        return None;
    }
    let data = pixels.chunks_exact(5).map(|p| [p[0], p[1], p[2], p[3], p[4]]).collect();
    Some(RenderedTemplate {
        pixels: Pyramid::build(Level::new(width, height, data)),
        scale,
        recolourable: body[12] != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateSet;

    fn same(a: &RenderedTemplate, b: &RenderedTemplate) -> bool {
        let (x, y) = (a.pixels.base(), b.pixels.base());
        (x.width, x.height, &x.data, a.scale, a.recolourable) == (y.width, y.height, &y.data, b.scale, b.recolourable)
            && a.pixels.levels.len() == b.pixels.levels.len()
    }

    #[test]
    fn a_cached_raster_is_the_rendered_one_and_a_damaged_file_is_rendered_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RasterCache::new(dir.path()).expect("the workspace build knows its Cargo.lock");
        let surgical = TemplateSet::builtin().unwrap().select_spec("surgical").unwrap();
        let template = &surgical.templates()[0];
        let rendered = template.rendered().unwrap();

        let key = template.raster_key();
        cache.store(key, &rendered);
        let path = cache.path(key);
        assert!(path.is_file());
        assert!(same(&cache.load(key).expect("read back"), &rendered));

        // A fresh set of templates takes the raster from the file, not from
        // rendering: a (checksummed) file with one pixel changed shows through.
        let mut marked = RenderedTemplate {
            pixels: rendered.pixels.clone(),
            scale: rendered.scale,
            recolourable: rendered.recolourable,
        };
        marked.pixels.levels[0].data[7] = [1, 2, 3, 4, 5];
        maskforge_imageio::write_checked(&path, MAGIC, &encode(&marked)).unwrap();
        let fresh = TemplateSet::builtin().unwrap().select_spec("surgical").unwrap();
        fresh.use_raster_cache(&cache);
        assert_eq!(fresh.templates()[0].rendered().unwrap().pixels.base().data[7], [1, 2, 3, 4, 5]);
        cache.store(key, &rendered);

        // One flipped byte, or a cut file: not used, and rewritten by the next render.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[MAGIC.len() + HEADER_LEN + 1000] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.load(key).is_none());
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.load(key).is_none());
        let again = TemplateSet::builtin().unwrap().select_spec("surgical").unwrap();
        again.use_raster_cache(&cache);
        assert!(same(&again.templates()[0].rendered().unwrap(), &rendered));
        assert!(same(&cache.load(key).expect("rewritten"), &rendered));
    }

    #[test]
    fn a_store_removes_old_rasters_of_other_renderers_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RasterCache::new(dir.path()).unwrap();
        let set = TemplateSet::builtin().unwrap();
        let surgical = set.select_spec("surgical").unwrap();
        let template = &surgical.templates()[0];
        let other_renderer = RasterCache { renderer: cache.renderer ^ 1, ..cache.clone() };
        let aged = |path: PathBuf, hours: u64| {
            std::fs::write(&path, b"x").unwrap();
            let when = std::time::SystemTime::now() - std::time::Duration::from_secs(hours * 3600);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
            path
        };
        let old = aged(other_renderer.path(set.templates()[1].raster_key()), 2);
        let recent = aged(dir.path().join(format!("cloth-0-1024-{:016x}.raster", cache.renderer ^ 2)), 0);
        let own_other_template = aged(cache.path(set.templates()[1].raster_key()), 2);
        let not_a_raster = aged(dir.path().join("notes.txt"), 2);
        cache.store(template.raster_key(), &template.rendered().unwrap());
        assert!(cache.load(template.raster_key()).is_some());
        assert!(!old.exists(), "another build's raster of two hours ago is kept");
        for kept in [recent, own_other_template, not_a_raster] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
    }

    #[test]
    fn another_template_or_renderer_is_another_file() {
        let cache = RasterCache::new("/tmp/x").unwrap();
        let set = TemplateSet::builtin().unwrap();
        let paths: std::collections::BTreeSet<_> = set.templates().iter().map(|t| cache.path(t.raster_key())).collect();
        assert_eq!(paths.len(), set.templates().len());
        let other = RasterCache { renderer: cache.renderer ^ 1, ..cache.clone() };
        let key = set.templates()[0].raster_key();
        assert_ne!(other.path(key), cache.path(key));
    }
}
