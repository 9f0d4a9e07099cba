//! The text `maskforge split` prints about a plan: what was found and how
//! it was grouped, the table of images per class and split, and the train
//! statistics.

use crate::group::GroupBy;
use crate::plan::SplitPlan;
use crate::stats::Stats;
use std::fmt::Write;

impl SplitPlan {
    /// Images, classes and files decoded (in `seconds`), the seed (`default
    /// seed`: none was given), method and grouping, and the image files
    /// outside the class folders; one line each, no final newline.
    pub fn summary(&self, seconds: f64, default_seed: bool) -> String {
        let o = &self.options;
        let scanned = self.accepted() + self.failures.len();
        let mut s = format!(
            "{} images in {} classes under {} ({scanned} files decoded in {seconds:.1} s, {:.0} files/s)",
            self.accepted(),
            self.classes.len(),
            self.root.display(),
            scanned as f64 / seconds.max(1e-9),
        );
        let seed_note = if default_seed { " (default; --seed N to change)" } else { "" };
        let _ = write!(
            s,
            "\nseed {}{seed_note}, method {}, group-by {}: {} groups",
            o.seed, o.method, o.group_by, self.grouping.groups
        );
        if o.group_by == GroupBy::Source {
            let g = &self.grouping;
            let _ = write!(
                s,
                "\n  annotations.csv: {} images grouped by source, {} originals joined their source's group, {} images without a row (each its own group)",
                g.annotated, g.originals_joined, g.unannotated
            );
        }
        if self.outside_classes > 0 {
            let _ =
                write!(s, "\nignored {} image file(s) directly in ROOT (not in a class folder)", self.outside_classes);
        }
        s
    }

    /// Images per class (rows) and split (columns), with each cell's share
    /// of its class and a total row; no final newline.
    pub fn table(&self) -> String {
        let splits = self.splits();
        let counts = self.counts();
        let width = self.classes.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
        let mut lines = Vec::new();
        let mut header = format!("{:<width$} {:>2}", "class", "#");
        for s in &splits {
            let _ = write!(header, " {:>16}", s.name());
        }
        let _ = write!(header, " {:>8}", "total");
        lines.push(header);
        let cell = |n: u64, total: u64| format!("{n} ({:.1}%)", 100.0 * n as f64 / total.max(1) as f64);
        let mut column_totals = [0u64; 3];
        for c in &self.classes {
            let mut line = format!("{:<width$} {:>2}", c.name, c.index);
            for s in &splits {
                let n = counts[c.index][s.index()];
                column_totals[s.index()] += n;
                let _ = write!(line, " {:>16}", cell(n, c.count));
            }
            let _ = write!(line, " {:>8}", c.count);
            lines.push(line);
        }
        let total = self.accepted() as u64;
        let mut line = format!("{:<width$} {:>2}", "total", "");
        for s in &splits {
            let _ = write!(line, " {:>16}", cell(column_totals[s.index()], total));
        }
        let _ = write!(line, " {total:>8}");
        lines.push(line);
        lines.join("\n")
    }
}

/// Two lines: mean and std of a manifest's images, and the images and
/// weight of each class.
pub fn stats_summary(stats: &Stats) -> String {
    let fmt3 = |v: &[f64; 3]| format!("[{:.4}, {:.4}, {:.4}]", v[0], v[1], v[2]);
    let size = stats.stats_size.map(|s| format!(", resized to {s}x{s}")).unwrap_or_default();
    let weights: Vec<String> = stats
        .class_names
        .iter()
        .zip(stats.class_counts.iter().zip(&stats.class_weights))
        .map(|(name, (n, w))| match w {
            Some(w) => format!("{name} {n} (weight {w:.3})"),
            None => format!("{name} 0 (no weight)"),
        })
        .collect();
    format!(
        "{} statistics ({} images, {} pixels{size}): mean {} std {}\nclass counts: {}",
        stats.manifest,
        stats.images,
        stats.pixels,
        fmt3(&stats.mean),
        fmt3(&stats.std),
        weights.join(", ")
    )
}
