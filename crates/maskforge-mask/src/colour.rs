//! Mask colours: named colours, `#rgb` / `#rrggbb` hex, and the choice rule
//! (`--colour`): fixed, optionally weighted colours to draw from, or each
//! template's own weighted palette.

use crate::rng::SplitMix64;
use std::fmt;
use std::sync::OnceLock;

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Colour(pub [u8; 3]);

/// Why a colour or a `--colour` list was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ColourError {
    /// Neither a known name nor `#rgb` / `#rrggbb` (the text as given).
    #[error("unknown colour {0:?}: use a name ({names}) or hex like #3a5fcd", names = NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown(String),
    /// A `name=weight` item whose weight is not a finite number >= 0.
    #[error("{0:?}: the weight after '=' must be a number >= 0")]
    Weight(String),
    /// A colour appears twice in a list (the item as given).
    #[error("{0:?} is listed twice")]
    Duplicate(String),
    /// Every weight of the list is 0.
    #[error("all colour weights are 0: nothing to draw")]
    AllZero,
}

/// Colours masks are commonly made in.
const NAMED: &[(&str, [u8; 3])] = &[
    ("white", [244, 245, 242]),
    ("black", [38, 38, 42]),
    ("grey", [128, 130, 134]),
    ("gray", [128, 130, 134]),
    ("charcoal", [54, 56, 60]),
    ("lightgrey", [200, 202, 204]),
    ("blue", [52, 92, 178]),
    ("lightblue", [150, 196, 228]),
    ("surgicalblue", [136, 190, 222]),
    ("navy", [34, 44, 86]),
    ("teal", [40, 128, 128]),
    ("green", [70, 140, 90]),
    ("mint", [170, 222, 200]),
    ("olive", [104, 110, 62]),
    ("pink", [238, 170, 190]),
    ("red", [180, 40, 48]),
    ("maroon", [110, 30, 44]),
    ("orange", [230, 130, 50]),
    ("yellow", [236, 206, 70]),
    ("beige", [214, 196, 166]),
    ("brown", [110, 76, 52]),
    ("purple", [110, 70, 150]),
];

impl Colour {
    /// The colour of sRGB channels `r`, `g`, `b` (0–255).
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Colour([r, g, b])
    }

    /// Parses a colour name (case-insensitive) or `#rgb` / `#rrggbb`.
    pub fn parse(s: &str) -> Result<Colour, ColourError> {
        let t = s.trim();
        if let Some(hex) = t.strip_prefix('#') {
            let digits: Option<Vec<u8>> = hex.chars().map(|c| c.to_digit(16).map(|d| d as u8)).collect();
            return match digits.as_deref() {
                Some([r, g, b]) => Ok(Colour([r * 17, g * 17, b * 17])),
                Some([r1, r2, g1, g2, b1, b2]) => Ok(Colour([r1 * 16 + r2, g1 * 16 + g2, b1 * 16 + b2])),
                _ => Err(ColourError::Unknown(s.to_string())),
            };
        }
        let lower = t.to_ascii_lowercase();
        NAMED
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, c)| Colour(*c))
            .ok_or_else(|| ColourError::Unknown(s.to_string()))
    }

    /// The name if this is exactly a named colour, else `#rrggbb`.
    pub fn name(&self) -> String {
        NAMED
            .iter()
            .find(|(n, c)| *c == self.0 && *n != "gray")
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| self.hex())
    }

    /// `#rrggbb`, lowercase.
    pub fn hex(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Splits one item of a weighted list, `name` or `name=weight`; `Err` when
/// the weight is not a finite number >= 0 (or the name is empty).
pub(crate) fn split_weighted(item: &str) -> Result<(&str, Option<f32>), ()> {
    match item.split_once('=') {
        None if !item.trim().is_empty() => Ok((item.trim(), None)),
        None => Err(()),
        Some((name, w)) => match w.trim().parse::<f32>() {
            Ok(w) if w.is_finite() && w >= 0.0 && !name.trim().is_empty() => Ok((name.trim(), Some(w))),
            _ => Err(()),
        },
    }
}

/// How a face's mask colour is chosen.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ColourChoice {
    /// From the chosen template's own palette, drawn with its `palette_weights`.
    #[default]
    TemplatePalette,
    /// From these colours, with probability proportional to their weights
    /// (one given: always that one).
    Among(Vec<(Colour, f32)>),
}

impl ColourChoice {
    /// Parses `--colour`: `palette` (or `random`), or a comma-separated list of
    /// names / hex values, each optionally weighted: `black=3,navy,#102030=0.5`
    /// (a bare colour weighs 1). Weights are numbers >= 0, not all 0; each
    /// colour is listed once.
    pub fn parse(s: &str) -> Result<ColourChoice, ColourError> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("palette") || t.eq_ignore_ascii_case("random") {
            return Ok(ColourChoice::TemplatePalette);
        }
        let mut list: Vec<(Colour, f32)> = Vec::new();
        for item in t.split(',') {
            let (name, weight) = split_weighted(item).map_err(|()| ColourError::Weight(item.trim().to_string()))?;
            let colour = Colour::parse(name)?;
            if list.iter().any(|(c, _)| *c == colour) {
                return Err(ColourError::Duplicate(name.to_string()));
            }
            list.push((colour, weight.unwrap_or(1.0)));
        }
        if list.iter().all(|(_, w)| *w <= 0.0) {
            return Err(ColourError::AllZero);
        }
        Ok(ColourChoice::Among(list))
    }

    /// Draws a colour: from `palette` with `palette_weights` (the template's;
    /// equal weights when the lengths differ), or from the `Among` list;
    /// `fallback` (the template's default) when there is nothing to draw.
    pub fn choose(
        &self,
        rng: &mut SplitMix64,
        palette: &[Colour],
        palette_weights: &[f32],
        fallback: Colour,
    ) -> Colour {
        match self {
            ColourChoice::TemplatePalette if palette_weights.len() == palette.len() => {
                rng.weighted(palette_weights).map_or(fallback, |i| palette[i])
            }
            ColourChoice::TemplatePalette if palette.is_empty() => fallback,
            ColourChoice::TemplatePalette => palette[rng.below(palette.len())],
            ColourChoice::Among(list) => {
                let weights: Vec<f32> = list.iter().map(|(_, w)| *w).collect();
                rng.weighted(&weights).map_or(fallback, |i| list[i].0)
            }
        }
    }
}

/// sRGB (0..1) to linear light.
pub(crate) fn srgb_to_linear_exact(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear light (0..1) to sRGB.
pub(crate) fn linear_to_srgb_exact(c: f32) -> f32 {
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

const LUT_N: usize = 4096;

/// The sRGB transfer tabulated, for rendering and the photo statistics.
pub(crate) struct Srgb {
    to_linear: Vec<f32>,
    /// Indexed by `sqrt(linear)`, for precision in the shadows.
    to_srgb: Vec<f32>,
    /// sRGB byte to linear light.
    pub u8_to_linear: [f32; 256],
}

/// The tables, made on first use.
pub(crate) fn srgb() -> &'static Srgb {
    static S: OnceLock<Srgb> = OnceLock::new();
    S.get_or_init(|| {
        let to_linear = (0..LUT_N).map(|i| srgb_to_linear_exact(i as f32 / (LUT_N - 1) as f32)).collect();
        let to_srgb = (0..LUT_N)
            .map(|i| {
                let s = i as f32 / (LUT_N - 1) as f32;
                linear_to_srgb_exact(s * s)
            })
            .collect();
        let mut u8_to_linear = [0.0; 256];
        for (i, v) in u8_to_linear.iter_mut().enumerate() {
            *v = srgb_to_linear_exact(i as f32 / 255.0);
        }
        Srgb { to_linear, to_srgb, u8_to_linear }
    })
}

impl Srgb {
    /// sRGB (0..1, clamped) to linear light, from the table.
    #[inline]
    pub fn to_linear(&self, c: f32) -> f32 {
        self.to_linear[((c.clamp(0.0, 1.0) * (LUT_N - 1) as f32) + 0.5) as usize]
    }

    /// Linear light (0..1, clamped) to sRGB, from the table.
    #[inline]
    pub fn to_srgb(&self, lin: f32) -> f32 {
        self.to_srgb[((lin.clamp(0.0, 1.0).sqrt() * (LUT_N - 1) as f32) + 0.5) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_hex() {
        assert_eq!(Colour::parse("#fff").unwrap(), Colour([255, 255, 255]));
        assert_eq!(Colour::parse("#3a5FCD").unwrap(), Colour([0x3a, 0x5f, 0xcd]));
        assert_eq!(Colour::parse(" Navy ").unwrap(), Colour([34, 44, 86]));
        assert_eq!(Colour::parse("charcoal").unwrap(), Colour([54, 56, 60]));
        assert!(Colour::parse("#12345").is_err());
        assert!(Colour::parse("#ggg").is_err());
        assert!(Colour::parse("chartreuse").is_err());
        assert_eq!(Colour::parse("navy").unwrap().name(), "navy");
        assert_eq!(Colour::parse("#010203").unwrap().name(), "#010203");
    }

    #[test]
    fn choice_draws_from_the_right_list() {
        let mut rng = SplitMix64::new(3);
        let pal = [Colour([1, 1, 1]), Colour([2, 2, 2])];
        let fb = Colour([9, 9, 9]);
        for _ in 0..20 {
            assert!(pal.contains(&ColourChoice::TemplatePalette.choose(&mut rng, &pal, &[], fb)));
            assert_eq!(ColourChoice::TemplatePalette.choose(&mut rng, &pal, &[0.0, 1.0], fb), pal[1]);
        }
        assert_eq!(ColourChoice::TemplatePalette.choose(&mut rng, &[], &[], fb), fb);
        let c = ColourChoice::parse("black").unwrap();
        assert_eq!(c.choose(&mut rng, &pal, &[], fb), Colour([38, 38, 42]));
        assert_eq!(ColourChoice::parse("random").unwrap(), ColourChoice::TemplatePalette);
        assert_eq!(ColourChoice::parse(" Palette ").unwrap(), ColourChoice::TemplatePalette);
        assert!(ColourChoice::parse("black,#zz").is_err());
    }

    #[test]
    fn weighted_colour_lists_parse_and_draw_in_proportion() {
        let c = ColourChoice::parse("black=3, #102030=1,navy").unwrap();
        let black = Colour::parse("black").unwrap();
        let hex = Colour([0x10, 0x20, 0x30]);
        let navy = Colour::parse("navy").unwrap();
        assert_eq!(c, ColourChoice::Among(vec![(black, 3.0), (hex, 1.0), (navy, 1.0)]));
        let mut rng = SplitMix64::new(11);
        let n = 20_000;
        let mut counts = [0usize; 3];
        for _ in 0..n {
            let got = c.choose(&mut rng, &[], &[], Colour([0, 0, 0]));
            counts[[black, hex, navy].iter().position(|x| *x == got).unwrap()] += 1;
        }
        for (count, want) in counts.iter().zip([0.6, 0.2, 0.2]) {
            let share = *count as f64 / n as f64;
            assert!((share - want).abs() < 0.015, "{counts:?}");
        }
        // A zero weight is allowed as long as something is left to draw.
        let c = ColourChoice::parse("black=0,white").unwrap();
        for _ in 0..50 {
            assert_eq!(c.choose(&mut rng, &[], &[], black), Colour::parse("white").unwrap());
        }
    }

    #[test]
    fn srgb_tables_round_trip() {
        let l = srgb();
        for i in 0..=255u32 {
            let c = i as f32 / 255.0;
            let back = l.to_srgb(l.to_linear(c));
            assert!((back - c).abs() < 1.5 / 255.0, "{i}: {back}");
        }
    }

    #[test]
    fn bad_colour_lists_are_one_line_errors() {
        for (spec, want) in [
            ("black=-1", ColourError::Weight("black=-1".into())),
            ("black=x", ColourError::Weight("black=x".into())),
            ("black=nan", ColourError::Weight("black=nan".into())),
            ("black=inf", ColourError::Weight("black=inf".into())),
            ("=2", ColourError::Weight("=2".into())),
            ("black,,white", ColourError::Weight("".into())),
            ("nosuch=1", ColourError::Unknown("nosuch".into())),
            ("black=0,#fff=0", ColourError::AllZero),
            ("black,Black=2", ColourError::Duplicate("Black".into())),
        ] {
            let e = ColourChoice::parse(spec).unwrap_err();
            assert_eq!(e, want, "{spec}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}
