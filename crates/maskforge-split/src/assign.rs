//! Assigning groups to train/val/test.
//!
//! * [`Method::Exact`]: groups are put in a seeded random order, then each
//!   goes to the split that is furthest below its target share of the group's
//!   classes. For groups of one class this keeps every class within one
//!   group's size of its target in every split (see `greedy_stays_within_one_group`).
//! * [`Method::Stable`]: a group's split depends only on SHA-256(seed, key),
//!   so adding images later never moves an existing group; the shares are
//!   then only as close to the ratios as chance makes them.
//!
//! The random numbers come from our own SplitMix64, not from a crate, so a
//! dependency upgrade can never change a published split.

use crate::SplitError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The three sides of a split, in manifest order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// What the model is fitted on (`train.csv`).
    Train,
    /// What model selection and early stopping look at (`val.csv`).
    Val,
    /// Held out for the final evaluation (`test.csv`).
    Test,
}

impl Split {
    /// The three splits, in manifest order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `train`, `val` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Position in [`Split::ALL`] (0, 1, 2).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The manifest file name, `train.csv` etc.
    pub fn manifest_name(self) -> String {
        format!("{}.csv", self.name())
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Requested fractions; train gets the rest.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratios {
    /// Share of images for validation, in `[0, 1)`.
    pub val: f64,
    /// Share of images for test, in `[0, 1)`; 0 writes no test split.
    pub test: f64,
}

impl Ratios {
    /// Checks the ratios: each in [0, 1), together below 1 (train keeps the
    /// rest) and above 0 (otherwise there is nothing to split).
    pub fn new(val: f64, test: f64) -> Result<Ratios, SplitError> {
        for (name, r) in [("--val", val), ("--test", test)] {
            if !r.is_finite() || !(0.0..1.0).contains(&r) {
                return Err(SplitError::Ratios(format!("{name} {r} must be a fraction in [0, 1)")));
            }
        }
        if val + test >= 1.0 {
            return Err(SplitError::Ratios(format!(
                "--val {val} + --test {test} = {} leaves nothing for train; they must add up to less than 1",
                val + test
            )));
        }
        if val + test == 0.0 {
            return Err(SplitError::Ratios("--val and --test are both 0: nothing to split".into()));
        }
        Ok(Ratios { val, test })
    }

    /// The share train gets: `1 − val − test`, above 0.
    pub fn train(&self) -> f64 {
        1.0 - self.val - self.test
    }

    /// Fractions indexed by [`Split::index`].
    pub fn fractions(&self) -> [f64; 3] {
        [self.train(), self.val, self.test]
    }

    /// The splits this ratio produces (test only when asked for).
    pub fn splits(&self) -> Vec<Split> {
        if self.test > 0.0 {
            vec![Split::Train, Split::Val, Split::Test]
        } else {
            vec![Split::Train, Split::Val]
        }
    }
}

/// How groups are assigned to splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Seeded greedy assignment: every class close to the ratios in every split.
    Exact,
    /// Hash of (seed, group key): adding images never moves an existing group.
    Stable,
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Method::Exact),
            "stable" => Ok(Method::Stable),
            other => Err(format!("unknown method {other:?}: expected exact or stable")),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Exact => "exact",
            Method::Stable => "stable",
        })
    }
}

/// The project's one seeded generator; the split draws with its unbiased
/// (rejection) variant, as it always has.
pub use maskforge_rng::SplitMix64;

/// One group to place: its images per class, as `(class_index, count)` pairs
/// (sparse, because most groups hold one or a few classes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCounts {
    /// The group key (source photo, parent folder, regex match...).
    pub key: String,
    /// Its images per class, `(class_index, count)`, non-zero counts only.
    pub per_class: Vec<(usize, u64)>,
}

/// The split of each group, in the order of `groups`.
///
/// `groups` must be in a fixed order (the callers sort them by key) so the
/// result depends only on the seed and the data.
pub fn assign_groups(
    groups: &[GroupCounts],
    num_classes: usize,
    ratios: Ratios,
    method: Method,
    seed: u64,
) -> Vec<Split> {
    match method {
        Method::Stable => groups.iter().map(|g| stable_split(&g.key, ratios, seed)).collect(),
        Method::Exact => exact_assign(groups, num_classes, ratios, seed),
    }
}

/// The split of a group under [`Method::Stable`]: a uniform number in [0, 1)
/// from SHA-256(seed, key), compared with the cumulative ratios.
pub fn stable_split(key: &str, ratios: Ratios, seed: u64) -> Split {
    let mut h = Sha256::new();
    h.update(b"maskforge-split/stable/v1\0");
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable, so the comparison is exact.
    let u = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    if u < ratios.val {
        Split::Val
    } else if u < ratios.val + ratios.test {
        Split::Test
    } else {
        Split::Train
    }
}

fn exact_assign(groups: &[GroupCounts], num_classes: usize, ratios: Ratios, seed: u64) -> Vec<Split> {
    let fractions = ratios.fractions();
    let active: Vec<Split> = ratios.splits();
    let mut class_totals = vec![0u64; num_classes];
    for g in groups {
        for &(c, n) in &g.per_class {
            class_totals[c] += n;
        }
    }
    // assigned[c][s]: images of class c already in split s.
    let mut assigned = vec![[0u64; 3]; num_classes];
    let mut order: Vec<usize> = (0..groups.len()).collect();
    SplitMix64::new(seed).shuffle_unbiased(&mut order);

    let mut result = vec![Split::Train; groups.len()];
    for gi in order {
        let g = &groups[gi];
        // Score of a split: how far below target it is for this group's
        // classes, each class's shortfall as a fraction of the class, weighted
        // by the group's images in it. With one class this is just "the split
        // with the largest shortfall", which bounds the error by one group.
        let mut best = active[0];
        let mut best_score = f64::NEG_INFINITY;
        for &s in &active {
            let score: f64 = g
                .per_class
                .iter()
                .map(|&(c, n)| {
                    let total = class_totals[c] as f64;
                    let deficit = fractions[s.index()] * total - assigned[c][s.index()] as f64;
                    n as f64 * deficit / total
                })
                .sum();
            // Strict: ties go to the earlier split (train, then val, then test).
            if score > best_score {
                best = s;
                best_score = score;
            }
        }
        for &(c, n) in &g.per_class {
            assigned[c][best.index()] += n;
        }
        result[gi] = best;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
        // This version's `below` (Lemire) and shuffle: every split depends on them.
        let mut r = SplitMix64::new(0);
        let below: Vec<u64> = (0..8).map(|_| r.below_unbiased(10)).collect();
        assert_eq!(below, [8, 4, 0, 9, 1, 3, 1, 7]);
        let mut v: Vec<u32> = (0..10).collect();
        SplitMix64::new(42).shuffle_unbiased(&mut v);
        assert_eq!(v, [8, 3, 6, 5, 4, 0, 9, 2, 1, 7]);
    }

    #[test]
    fn below_is_in_range_and_shuffle_is_a_permutation() {
        let mut r = SplitMix64::new(7);
        for n in [1u64, 2, 3, 10, 1 << 40] {
            for _ in 0..1000 {
                assert!(r.below_unbiased(n) < n);
            }
        }
        let mut v: Vec<u32> = (0..100).collect();
        r.shuffle_unbiased(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn ratios_are_checked() {
        assert!(Ratios::new(0.2, 0.0).is_ok());
        assert!(Ratios::new(0.2, 0.2).is_ok());
        for (v, t) in [(0.5, 0.5), (1.0, 0.0), (-0.1, 0.0), (f64::NAN, 0.0), (0.0, 0.0), (0.9, 0.2)] {
            assert!(Ratios::new(v, t).is_err(), "{v} {t}");
        }
    }

    /// Single-class groups of random sizes: every class in every split ends
    /// within one (largest) group of its target.
    #[test]
    fn greedy_stays_within_one_group() {
        let mut rng = SplitMix64::new(99);
        for trial in 0..200u64 {
            let num_classes = 1 + rng.below_unbiased(4) as usize;
            let ratios = if trial % 2 == 0 { Ratios::new(0.2, 0.0).unwrap() } else { Ratios::new(0.2, 0.2).unwrap() };
            let max_size = 1 + rng.below_unbiased(6);
            let groups: Vec<GroupCounts> = (0..(5 + rng.below_unbiased(300)))
                .map(|i| GroupCounts {
                    key: format!("g{i:05}"),
                    per_class: vec![(
                        rng.below_unbiased(num_classes as u64) as usize,
                        1 + rng.below_unbiased(max_size),
                    )],
                })
                .collect();
            let splits = assign_groups(&groups, num_classes, ratios, Method::Exact, trial);
            for c in 0..num_classes {
                let mut per_split = [0u64; 3];
                let mut largest = 0;
                for (g, s) in groups.iter().zip(&splits) {
                    for &(gc, n) in &g.per_class {
                        if gc == c {
                            per_split[s.index()] += n;
                            largest = largest.max(n);
                        }
                    }
                }
                let total: u64 = per_split.iter().sum();
                for s in Split::ALL {
                    let target = ratios.fractions()[s.index()] * total as f64;
                    let err = (per_split[s.index()] as f64 - target).abs();
                    assert!(
                        err <= largest as f64 + 1e-9,
                        "trial {trial} class {c} {s}: {} vs target {target}, largest group {largest}",
                        per_split[s.index()]
                    );
                }
            }
        }
    }

    #[test]
    fn exact_depends_on_seed_and_is_reproducible() {
        let groups: Vec<GroupCounts> =
            (0..100).map(|i| GroupCounts { key: format!("{i}"), per_class: vec![(0, 1)] }).collect();
        let r = Ratios::new(0.2, 0.0).unwrap();
        let a = assign_groups(&groups, 1, r, Method::Exact, 1);
        assert_eq!(a, assign_groups(&groups, 1, r, Method::Exact, 1));
        assert_ne!(a, assign_groups(&groups, 1, r, Method::Exact, 2));
        assert_eq!(a.iter().filter(|s| **s == Split::Val).count(), 20);
    }

    #[test]
    fn stable_is_a_function_of_key_and_seed_only_with_about_the_right_shares() {
        let r = Ratios::new(0.2, 0.1).unwrap();
        let mut counts = [0usize; 3];
        for i in 0..20_000 {
            let key = format!("person{i}");
            let s = stable_split(&key, r, 5);
            assert_eq!(s, stable_split(&key, r, 5));
            counts[s.index()] += 1;
        }
        // 20k draws: binomial std of the val count is ~57, so ±300 is > 5 sigma.
        assert!((counts[1] as i64 - 4000).abs() < 300, "{counts:?}");
        assert!((counts[2] as i64 - 2000).abs() < 300, "{counts:?}");
        assert_ne!(
            (0..50).map(|i| stable_split(&format!("k{i}"), r, 1)).collect::<Vec<_>>(),
            (0..50).map(|i| stable_split(&format!("k{i}"), r, 2)).collect::<Vec<_>>()
        );
    }
}
