//! Tiles images into a labelled contact sheet: `tile OUT.png CELL COLS FILE...`
//! (a quick way to look at outputs side by side).
use maskforge_mask::sheet::{contact_sheet, thumbnail, SheetItem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: tile OUT.png CELL COLS FILE...");
        std::process::exit(2);
    }
    let cell: u32 = args[1].parse()?;
    let cols: usize = args[2].parse()?;
    let mut items = Vec::new();
    for f in &args[3..] {
        let img = image::open(f)?.to_rgb8();
        let label = std::path::Path::new(f)
            .iter()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        items.push(SheetItem { thumbnail: thumbnail(&img, None, cell), label });
    }
    contact_sheet(&items, cols, cell).save(&args[0])?;
    Ok(())
}
