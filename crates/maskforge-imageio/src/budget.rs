//! [`DecodeBudget`]: the bytes that the decoding workers of one run may hold
//! at once. Without it N workers that meet N large photos together need N
//! times the memory of one, whatever the machine has.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The most worker threads a stage may run (`--jobs`, `--workers`): each is
/// an OS thread with its own stack and its own decoded image.
pub const MAX_JOBS: usize = 1024;

/// The smallest default budget: what one large photo takes to decode.
pub const MIN_DEFAULT_BUDGET: u64 = 1 << 30;

/// The default budget where the available memory is unknown.
const UNKNOWN_MEMORY_BUDGET: u64 = 4 << 30;

/// A byte budget shared by the workers of one run (clones share it). Each
/// decode reserves what it will allocate before allocating and gives it
/// back when done, so the decodes in flight together never hold more than
/// the budget; one image larger than the whole budget is decoded alone.
/// Reservations are granted in the order they were asked for, so a large
/// image is never starved by a stream of small ones; a thread holds at most
/// one at a time (a second would wait on the first).
#[derive(Clone, Debug)]
pub struct DecodeBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    total: u64,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    in_use: u64,
    /// The ticket the next reservation gets, and the one allowed in next.
    next_ticket: u64,
    serving: u64,
}

/// Bytes held from a [`DecodeBudget`] until dropped.
#[must_use = "the bytes are given back when the reservation is dropped"]
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl DecodeBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Self {
        let shared = Shared { total, state: Mutex::new(State::default()), changed: Condvar::new() };
        DecodeBudget { shared: Arc::new(shared) }
    }

    /// The default budget: half the memory the kernel reports available
    /// (`MemAvailable` in `/proc/meminfo`), at least [`MIN_DEFAULT_BUDGET`];
    /// 4 GiB where that is unknown. Read once, when the run starts.
    pub fn from_available_memory() -> Self {
        Self::new(default_budget(mem_available()))
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> u64 {
        self.shared.total
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        self.lock().in_use
    }

    /// Waits until `bytes` fit beside the reservations held (or none is
    /// held, for a request larger than the budget), then holds them.
    pub fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let total = self.shared.total;
        while state.serving != ticket || (state.in_use > 0 && state.in_use.saturating_add(bytes) > total) {
            state = self.shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.in_use += bytes;
        state.serving += 1;
        // The next ticket may fit too.
        self.shared.changed.notify_all();
        Reservation { budget: self, bytes }
    }

    // Only arithmetic runs under the lock: a poisoned one is still consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Reservation<'_> {
    /// The bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut state = self.budget.lock();
        state.in_use -= self.bytes;
        self.budget.shared.changed.notify_all();
    }
}

/// Half of `available` bytes, at least [`MIN_DEFAULT_BUDGET`].
fn default_budget(available: Option<u64>) -> u64 {
    available.map_or(UNKNOWN_MEMORY_BUDGET, |a| a / 2).max(MIN_DEFAULT_BUDGET)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes (Linux only).
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn workers_never_hold_more_than_the_budget() {
        let budget = DecodeBudget::new(100);
        let (now, peak) = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|s| {
            for i in 0..8u64 {
                let (budget, now, peak) = (&budget, &now, &peak);
                s.spawn(move || {
                    for _ in 0..20 {
                        let bytes = 30 + i * 5;
                        let _r = budget.reserve(bytes);
                        let held = now.fetch_add(bytes, Ordering::SeqCst) + bytes;
                        peak.fetch_max(held, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        now.fetch_sub(bytes, Ordering::SeqCst);
                    }
                });
            }
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= 100, "{peak} bytes held at once");
        // 65 is the largest single reservation: more means two overlapped.
        assert!(peak > 65, "the workers never decoded side by side ({peak})");
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn an_image_larger_than_the_budget_is_decoded_alone() {
        let budget = DecodeBudget::new(100);
        let small = budget.reserve(10);
        std::thread::scope(|s| {
            let big = s.spawn(|| {
                let r = budget.reserve(1000);
                assert_eq!(budget.in_use(), 1000, "not alone");
                r.bytes()
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!big.is_finished(), "granted beside another reservation");
            drop(small);
            assert_eq!(big.join().unwrap(), 1000);
        });
        assert_eq!(budget.in_use(), 0);
        // Clones share one budget.
        let clone = budget.clone();
        let _r = clone.reserve(40);
        assert_eq!(budget.in_use(), 40);
    }

    #[test]
    fn the_default_is_half_the_available_memory_with_a_floor() {
        let meminfo = "MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   22804920 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(22_804_920 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(default_budget(Some(16 << 30)), 8 << 30);
        assert_eq!(default_budget(Some(100 << 20)), MIN_DEFAULT_BUDGET);
        assert_eq!(default_budget(None), 4 << 30);
        assert!(DecodeBudget::from_available_memory().total() >= MIN_DEFAULT_BUDGET);
    }
}
