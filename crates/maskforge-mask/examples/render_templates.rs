//! Renders every built-in template flat, in its default colour, to PNG files
//! in the given folder (for looking at the artwork).
use maskforge_mask::template::TemplateSet;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/templates".into()));
    std::fs::create_dir_all(&out)?;
    let set = TemplateSet::builtin()?;
    for t in set.templates() {
        let r = t.rendered()?;
        let lvl = r.pixels.base();
        let c = t.default_colour.0;
        let mut img = image::RgbImage::new(lvl.width, lvl.height);
        for (i, p) in img.pixels_mut().enumerate() {
            let [m, ar, ag, ab, a] = lvl.data[i];
            let bg = if ((i as u32 % lvl.width) / 32 + (i as u32 / lvl.width) / 32).is_multiple_of(2) {
                200.0
            } else {
                150.0
            };
            let pre = [ar, ag, ab];
            for k in 0..3 {
                let v = m as f32 * c[k] as f32 / 255.0 + pre[k] as f32 + bg * (1.0 - a as f32 / 255.0);
                p.0[k] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        img.save(out.join(format!("{}.png", t.name())))?;
        println!("{} recolourable={}", t.name(), r.recolourable);
    }
    Ok(())
}
