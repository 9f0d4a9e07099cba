//! Mask colours: named colours, `#rgb` / `#rrggbb` hex, and the choice rule
//! (`--colour`): fixed colours to draw from, or each template's own palette.

use crate::rng::SplitMix64;
use std::fmt;

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Colour(pub [u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown colour {0:?}: use a name ({names}) or hex like #3a5fcd", names = NAMED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
pub struct ColourError(pub String);

/// Colours masks are commonly made in.
const NAMED: &[(&str, [u8; 3])] = &[
    ("white", [244, 245, 242]),
    ("black", [38, 38, 42]),
    ("grey", [128, 130, 134]),
    ("gray", [128, 130, 134]),
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
                _ => Err(ColourError(s.to_string())),
            };
        }
        let lower = t.to_ascii_lowercase();
        NAMED.iter().find(|(n, _)| *n == lower).map(|(_, c)| Colour(*c)).ok_or_else(|| ColourError(s.to_string()))
    }

    /// The name if this is exactly a named colour, else `#rrggbb`.
    pub fn name(&self) -> String {
        NAMED
            .iter()
            .find(|(n, c)| *c == self.0 && *n != "gray")
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| self.hex())
    }

    pub fn hex(&self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0[0], self.0[1], self.0[2])
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a face's mask colour is chosen.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ColourChoice {
    /// From the chosen template's own palette (its descriptor's `palette`).
    #[default]
    TemplatePalette,
    /// Uniformly from these colours (one given: always that one).
    Among(Vec<Colour>),
}

impl ColourChoice {
    /// Parses `--colour`: `palette` (or `random`), or a comma-separated list of
    /// names / hex values.
    pub fn parse(s: &str) -> Result<ColourChoice, ColourError> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("palette") || t.eq_ignore_ascii_case("random") {
            return Ok(ColourChoice::TemplatePalette);
        }
        let colours = t.split(',').map(Colour::parse).collect::<Result<Vec<_>, _>>()?;
        Ok(ColourChoice::Among(colours))
    }

    /// Draws a colour; `palette` is the template's, `fallback` its default.
    pub fn choose(&self, rng: &mut SplitMix64, palette: &[Colour], fallback: Colour) -> Colour {
        let list = match self {
            ColourChoice::TemplatePalette => palette,
            ColourChoice::Among(list) => list.as_slice(),
        };
        if list.is_empty() {
            fallback
        } else {
            list[rng.below(list.len())]
        }
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
            assert!(pal.contains(&ColourChoice::TemplatePalette.choose(&mut rng, &pal, fb)));
        }
        assert_eq!(ColourChoice::TemplatePalette.choose(&mut rng, &[], fb), fb);
        let c = ColourChoice::parse("black").unwrap();
        assert_eq!(c.choose(&mut rng, &pal, fb), Colour([38, 38, 42]));
        assert_eq!(ColourChoice::parse("random").unwrap(), ColourChoice::TemplatePalette);
        assert!(ColourChoice::parse("black,#zz").is_err());
    }
}
