//! Seeded randomness for training: shuffles and augmentations.
//!
//! A thin wrapper over the project's one generator (`maskforge_rng`), so a
//! seed gives the same augmentations and shuffles on every platform and with
//! every dependency version: a resumed run and its uninterrupted twin see the
//! same images. Training draws indices with the generator's fast variant.

use maskforge_rng::SplitMix64;

/// A seeded stream for shuffles and augmentations.
#[derive(Clone, Debug)]
pub struct Rng(SplitMix64);

impl Rng {
    /// The stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(SplitMix64::new(seed))
    }

    /// An independent stream for `(seed, a, b)`, e.g. (run seed, epoch,
    /// sample index): the draws for one sample do not depend on which
    /// thread handles it or in which order.
    pub fn derive(seed: u64, a: u64, b: u64) -> Self {
        let x = SplitMix64::new(seed ^ 0x6A09_E667_F3BC_C908).next_u64() ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let y = SplitMix64::new(x).next_u64() ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        Rng::new(y)
    }

    /// The next 64 uniform bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.next_f64()
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below_fast(n as u64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        self.0.shuffle_fast(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_independent_streams() {
        let a: Vec<u64> = (0..4).map(|_| Rng::derive(1, 2, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::derive(1, 2, 3).next_u64(), Rng::derive(1, 2, 4).next_u64());
        assert_ne!(Rng::derive(1, 2, 3).next_u64(), Rng::derive(1, 3, 3).next_u64());
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(r.below(3) < 3);
        }
        let mut v: Vec<u32> = (0..50).collect();
        Rng::new(1).shuffle(&mut v);
        let mut w: Vec<u32> = (0..50).collect();
        Rng::new(1).shuffle(&mut w);
        assert_eq!(v, w);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
    }

    /// Literal values of this version: shuffles and augmentations of every
    /// seeded run depend on them, so a change must be deliberate.
    #[test]
    fn golden_values_are_pinned() {
        let mut r = Rng::derive(42, 1, 2);
        assert_eq!([r.next_u64(), r.next_u64()], [0x6db8_8170_7b39_ca44, 0xbc75_fa37_5acc_3dcd]);
        let mut r = Rng::new(1);
        let below: Vec<usize> = (0..8).map(|_| r.below(10)).collect();
        assert_eq!(below, [5, 7, 9, 4, 4, 7, 8, 5]);
        let mut v: Vec<u32> = (0..10).collect();
        Rng::new(42).shuffle(&mut v);
        assert_eq!(v, [8, 3, 6, 5, 4, 0, 9, 2, 1, 7]);
    }
}
