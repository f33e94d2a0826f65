//! What happens between units: the test file's pages cached (or not), the
//! disk settled (dirty pages written back), and the quiet-machine gates: a
//! unit waits for an idle machine, and a block whose units lost unequal
//! shares of the CPU to the hypervisor (steal) is left out and run again.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::results::Sample;
use crate::sut::proc::{cpu_times, dirty_bytes, CpuTimes};

/// Reads a test file once so that its pages are cached before the first
/// unit: no variant pays for reading it from disk.
pub(crate) async fn warm_page_cache(file: &Path) {
    let file = file.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        if let Ok(mut f) = std::fs::File::open(&file) {
            let mut buf = vec![0u8; 1 << 20];
            while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// Asks the kernel to bring back any page of `file` that left the page
/// cache since [`warm_page_cache`] (memory reclaim on a shared host can
/// take cold pages away between units), so that no unit's client reads its
/// file from disk. The read-ahead runs in the background; [`settle_disk`]
/// then waits for the disk to go quiet.
pub(crate) fn recall_page_cache(file: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(file) {
        // SAFETY: a valid open descriptor; the advice has no memory effects.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
    }
}

/// Lets the disk finish the previous unit's writes before the next unit starts:
/// without this, a large upload's writeback lands in the next measurement
/// (whichever variant that is) and inflates the noise. After `sync`, waits
/// until the page cache holds under 32 MiB of unwritten data and the data
/// directory's disk has had no request in flight for 100 ms (discards of
/// the deleted data directory included). Bounded to 60 s.
pub(crate) async fn settle_disk(device: Option<&str>) {
    let _ = tokio::task::spawn_blocking(|| {
        // SAFETY: sync(2) has no arguments and no failure mode.
        unsafe { libc::sync() };
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while dirty_bytes().is_some_and(|d| d > 32 << 20) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(device) = device else { return };
    let inflight = format!("/sys/block/{device}/inflight");
    let mut quiet = 0;
    while quiet < 5 && Instant::now() < deadline {
        let idle = std::fs::read_to_string(&inflight)
            .map(|t| t.split_whitespace().all(|n| n == "0"))
            .unwrap_or(true);
        quiet = if idle { quiet + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The machine counts as idle when its CPUs are at most this busy (a fraction).
const IDLE_BUSY: f64 = 0.10;

/// The share of the machine's CPU time stolen by the hypervisor between two readings.
pub(crate) fn steal_share(a: CpuTimes, b: CpuTimes) -> Option<f64> {
    let total = b.total.checked_sub(a.total)?;
    (total > 0).then(|| b.steal.saturating_sub(a.steal) as f64 / total as f64)
}

/// Whether a block's samples spoil it: a unit had to start on a busy
/// machine, or the hypervisor took CPU time away from its units unequally,
/// the one that lost the most losing more than `steal_gap` (a fraction of
/// the machine's CPU time) more than the one that lost the least. Steal
/// that hits every unit of a block alike (a host that is steadily busy)
/// slows every variant alike and cancels out of their ratios. Units shorter
/// than [`STEAL_MIN_SECONDS`] are not judged: the kernel counts CPU time in
/// ticks (100 a second per CPU here), too coarse for a share of a shorter one.
pub(crate) fn spoiled_by(samples: &[Sample], steal_gap: Option<f64>) -> Option<Disturbance> {
    if samples
        .iter()
        .any(|s| s.machine_busy_before.is_some_and(|b| b > IDLE_BUSY))
    {
        return Some(Disturbance::BusyBefore);
    }
    let gap = steal_gap?;
    let steals: Vec<f64> = samples
        .iter()
        .filter(|s| s.seconds >= STEAL_MIN_SECONDS)
        .filter_map(|s| s.steal_during)
        .collect();
    let lo = steals.iter().copied().reduce(f64::min)?;
    let hi = steals.iter().copied().reduce(f64::max)?;
    (hi - lo > gap).then_some(Disturbance::Steal)
}

/// The shortest unit whose steal share [`spoiled_by`] judges, seconds.
const STEAL_MIN_SECONDS: f64 = 1.0;

/// Why a block was left out and run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disturbance {
    /// A unit had to start while other work kept the machine busy.
    BusyBefore,
    /// The hypervisor took CPU time away from the block's units unequally.
    Steal,
}

/// Waits, up to `max`, for a quarter second in which the machine's CPUs are
/// at most 10 % busy (the bench itself is idle between units): other work
/// on a shared machine comes in bursts, and a unit started during one
/// measures the burst. Returns the seconds waited and how busy the last
/// quarter second was (a fraction of all CPUs).
pub(crate) async fn wait_for_idle(max: Duration) -> (f64, Option<f64>) {
    idle_gate(
        max,
        Duration::from_millis(250),
        &SystemClock(Instant::now()),
        cpu_times,
    )
    .await
}

/// Time as the idle gate sees it: since it started, and sleeping.
trait GateClock {
    /// Time since the gate started.
    fn elapsed(&self) -> Duration;
    /// Waits `d`.
    async fn sleep(&self, d: Duration);
}

/// The real clock, started at the instant held.
struct SystemClock(Instant);

impl GateClock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// The idle gate of [`wait_for_idle`], with the window, the clock and the
/// source of CPU times as parameters (so that tests can script what the
/// machine does): reads the times, waits a `window`, reads them again, and
/// stops at the first window at most [`IDLE_BUSY`] busy, or when another
/// window would pass `max`. A machine whose times cannot be read is not
/// waited for.
async fn idle_gate(
    max: Duration,
    window: Duration,
    clock: &impl GateClock,
    mut times: impl FnMut() -> Option<CpuTimes>,
) -> (f64, Option<f64>) {
    loop {
        let Some(a) = times() else {
            return (0.0, None);
        };
        clock.sleep(window).await;
        let Some(b) = times() else {
            return (0.0, None);
        };
        let busy = busy_share(a, b);
        if busy <= IDLE_BUSY || clock.elapsed() + window > max {
            return (clock.elapsed().as_secs_f64(), Some(busy));
        }
    }
}

/// The share of the machine's CPU time that was busy between two readings.
fn busy_share(a: CpuTimes, b: CpuTimes) -> f64 {
    b.busy.saturating_sub(a.busy) as f64 / b.total.saturating_sub(a.total).max(1) as f64
}

/// Whether a configuration whose blocks were disturbed `disturbed` times
/// stops as `StopReason::MachineBusy`: after more disturbed blocks than it
/// may measure (and at least three), the machine is too busy to measure on,
/// and running on would only take time.
pub(crate) fn too_busy_to_go_on(disturbed: u32, max_blocks: u32) -> bool {
    disturbed > max_blocks.max(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_a_share_of_all_cpu_time() {
        let a = CpuTimes {
            busy: 0,
            total: 1000,
            steal: 10,
        };
        let b = CpuTimes {
            busy: 300,
            total: 1400,
            steal: 30,
        };
        assert!((steal_share(a, b).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(steal_share(a, a), None);
        assert_eq!(steal_share(b, a), None);
    }

    fn unit(busy_before: Option<f64>, steal: Option<f64>) -> Sample {
        Sample {
            machine_busy_before: busy_before,
            steal_during: steal,
            seconds: 2.5,
            ..Sample::default()
        }
    }

    /// CPU times that advance by `busy` of every 100 jiffies at each reading.
    fn scripted(busy: &[u64]) -> impl FnMut() -> Option<CpuTimes> + '_ {
        let mut at = CpuTimes {
            busy: 0,
            total: 0,
            steal: 0,
        };
        let mut readings = 0;
        move || {
            // Two readings per window: the start and the end of it.
            if readings > 0 && readings % 2 == 1 {
                let b = busy[(readings / 2).min(busy.len() - 1)];
                at.busy += b;
                at.total += 100;
            }
            readings += 1;
            Some(at)
        }
    }

    /// A clock that moves only when the gate sleeps, by exactly as long.
    #[derive(Default)]
    struct FakeClock(std::cell::Cell<Duration>);

    impl GateClock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }
        async fn sleep(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    async fn gate(max_ms: u64, busy: &[u64]) -> (f64, Option<f64>) {
        let window = Duration::from_millis(250);
        idle_gate(
            Duration::from_millis(max_ms),
            window,
            &FakeClock::default(),
            scripted(busy),
        )
        .await
    }

    #[tokio::test]
    async fn the_idle_gate_opens_at_the_first_quiet_window() {
        // Busy, busy, then 5 % busy: three windows.
        assert_eq!(gate(30_000, &[90, 50, 5]).await, (0.75, Some(0.05)));
        // Quiet at once: one window; at most 10 % busy is quiet.
        assert_eq!(gate(30_000, &[10]).await, (0.25, Some(0.10)));
        assert_eq!(gate(30_000, &[11, 0]).await, (0.5, Some(0.0)));
    }

    #[tokio::test]
    async fn the_idle_gate_gives_up_at_its_limit_and_says_how_busy_it_was() {
        // Never quiet: it stops at the last window that ends within the limit.
        assert_eq!(gate(1_000, &[100]).await, (1.0, Some(1.0)));
        assert_eq!(gate(900, &[40]).await, (0.75, Some(0.4)));
        // A limit shorter than a window still looks once.
        assert_eq!(gate(100, &[100]).await, (0.25, Some(1.0)));
        // No /proc/stat: nothing to wait for, nothing known.
        let none = idle_gate(
            Duration::from_secs(30),
            Duration::from_millis(250),
            &FakeClock::default(),
            || None,
        )
        .await;
        assert_eq!(none, (0.0, None));
    }

    #[test]
    fn busy_is_a_share_of_all_cpu_time() {
        let a = CpuTimes {
            busy: 100,
            total: 1000,
            steal: 0,
        };
        let b = CpuTimes {
            busy: 130,
            total: 1200,
            steal: 0,
        };
        assert!((busy_share(a, b) - 0.15).abs() < 1e-12);
        // A clock that did not move is not a division by zero.
        assert_eq!(busy_share(a, a), 0.0);
    }

    #[test]
    fn a_configuration_stops_as_machine_busy_after_too_many_disturbed_blocks() {
        // At least three disturbed blocks are tolerated, however few are planned...
        assert!(!too_busy_to_go_on(3, 2));
        assert!(too_busy_to_go_on(4, 2));
        // ...and as many as the configuration may measure.
        assert!(!too_busy_to_go_on(10, 10));
        assert!(too_busy_to_go_on(11, 10));
        assert!(!too_busy_to_go_on(0, 0));
    }

    #[test]
    fn a_block_is_spoiled_by_a_busy_start_or_by_unequal_steal() {
        let quiet = [unit(Some(0.02), Some(0.01)), unit(Some(0.05), Some(0.049))];
        assert_eq!(spoiled_by(&quiet, Some(0.04)), None);

        // A steadily busy host slows every unit alike: kept.
        let steady = [unit(Some(0.02), Some(0.10)), unit(Some(0.02), Some(0.13))];
        assert_eq!(spoiled_by(&steady, Some(0.04)), None);

        let unequal = [
            unit(Some(0.02), Some(0.01)),
            unit(Some(0.02), Some(0.03)),
            unit(Some(0.02), Some(0.0601)),
        ];
        assert_eq!(spoiled_by(&unequal, Some(0.05)), Some(Disturbance::Steal));
        // `--steal-gap none` keeps it.
        assert_eq!(spoiled_by(&unequal, None), None);

        let busy = [unit(Some(0.2), Some(0.5)), unit(None, None)];
        assert_eq!(spoiled_by(&busy, None), Some(Disturbance::BusyBefore));
        assert_eq!(spoiled_by(&busy, Some(0.04)), Some(Disturbance::BusyBefore));

        // Units too short for the kernel's ticks are not judged.
        let short = unequal.clone().map(|u| Sample { seconds: 0.05, ..u });
        assert_eq!(spoiled_by(&short, Some(0.05)), None);

        // Machines that report no steal (no /proc/stat) spoil nothing.
        assert_eq!(spoiled_by(&[unit(None, None)], Some(0.04)), None);
        assert_eq!(spoiled_by(&[], Some(0.04)), None);
    }
}
