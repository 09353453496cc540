//! When `berth apply --serve --interval` polls its manifest next, and what it
//! says about the origin. Pure: the serve loop passes in the failure count
//! and a random number, so every delay here is exact in a test; only
//! [`random_u64`] at the end touches the kernel.
//!
//! A fleet that polls one CDN must not poll in step: each wait is the
//! interval plus a random jitter (never less than the interval). While the
//! origin fails, the wait doubles per failed try up to a cap, so a dead
//! origin is not hammered at the normal rate; the first success resets it.

use std::time::Duration;

/// The jitter of `--jitter` when none is given: 10% of the wait.
pub const DEFAULT_JITTER: Jitter = Jitter::Percent(10);
/// The longest backoff when `--backoff-max` is not given: one hour, the
/// longest a device should take to notice that its origin is back.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Doublings of the interval at most, so a short interval stays short: a
/// 10 s poll backs off to 80 s, not an hour.
const MAX_DOUBLINGS: u32 = 3;

/// `--jitter`: how much later than the interval a poll may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// A share of each wait (backed-off waits included), 0 to 100.
    Percent(u32),
    /// At most this much later, whatever the wait.
    Fixed(Duration),
}

impl Jitter {
    /// `10%` or a duration such as `30s` or `2m`; `0` (either way) turns it off.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return p
                .parse::<u32>()
                .ok()
                .filter(|p| *p <= 100)
                .map(Jitter::Percent)
                .ok_or_else(|| format!("\"{text}\" is not a percentage from 0% to 100%"));
        }
        crate::manifest::units::duration_secs(t)
            .map(|s| Jitter::Fixed(Duration::from_secs(u64::from(s))))
            .map_err(|_| {
                format!("\"{text}\" is neither a duration nor a percentage; use e.g. 30s or 10%")
            })
    }

    /// The largest extra delay on top of `wait`.
    fn span(self, wait: Duration) -> Duration {
        match self {
            Jitter::Percent(p) => wait * p.min(100) / 100,
            Jitter::Fixed(d) => d,
        }
    }
}

/// The poll schedule of one serve loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// `--interval`: the wait after a pass whose fetch worked.
    pub interval: Duration,
    /// `--jitter`.
    pub jitter: Jitter,
    /// The longest backed-off wait before jitter: the smallest of
    /// `--backoff-max` and 8 × interval, never below the interval itself
    /// (with an interval of an hour or more there is no backoff).
    pub cap: Duration,
}

impl Schedule {
    /// The schedule of `interval`, with `backoff_max` (`None`: one hour).
    pub fn new(interval: Duration, jitter: Jitter, backoff_max: Option<Duration>) -> Self {
        let doubled = interval.saturating_mul(1 << MAX_DOUBLINGS);
        let cap = backoff_max
            .unwrap_or(DEFAULT_BACKOFF_MAX)
            .min(doubled)
            .max(interval);
        Schedule {
            interval,
            jitter,
            cap,
        }
    }

    /// The wait after a pass. `failures` is the number of fetches in a row
    /// that failed (0: the last one worked); `random` any random number.
    /// The result is in [base, base + jitter], base = interval × 2^failures
    /// up to the cap: the interval is never shorter than asked. Since the
    /// first wait after start is jittered too, a fleet that boots together
    /// spreads its first poll over the jitter (the pass at start, which
    /// gives the device its containers, is never delayed).
    pub fn next(&self, failures: u32, random: u64) -> Duration {
        let factor = 1u32 << failures.min(MAX_DOUBLINGS);
        let base = self.interval.saturating_mul(factor).min(self.cap);
        base + uniform(self.jitter.span(base), random)
    }
}

/// `random` spread evenly (to a millisecond) over [0, span].
fn uniform(span: Duration, random: u64) -> Duration {
    let ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random % ms.saturating_add(1))
}

/// Decides what the serve loop says about the origin: each change of state
/// once, so a device whose origin is down for a day logs two lines, not a
/// thousand.
#[derive(Debug, Default)]
pub struct StateLog {
    /// Fetches in a row that failed.
    failures: u32,
    /// The error last printed, while failing.
    last: Option<String>,
}

impl StateLog {
    /// Fetches in a row that failed: the backoff's exponent.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A fetch failed with `error`: the line to print, if it is news (the
    /// first failure, or a different error than the one printed).
    pub fn failed(&mut self, error: &str) -> Option<String> {
        self.failures = self.failures.saturating_add(1);
        if self.last.as_deref() == Some(error) {
            return None;
        }
        self.last = Some(error.to_owned());
        Some(error.to_owned())
    }

    /// A fetch worked: the line to print when it ends a run of failures.
    pub fn succeeded(&mut self) -> Option<String> {
        let tries = std::mem::take(&mut self.failures);
        self.last = None;
        (tries > 0).then(|| format!("origin reachable again after {tries} failed tries"))
    }
}

/// A random number for the jitter (not a secret: only spreads a fleet).
pub fn random_u64() -> u64 {
    random_with(true)
}

/// `getrandom(2)` (Linux 3.17) when `syscall` is set and the kernel has it
/// (ENOSYS under a seccomp filter or an old kernel), else /dev/urandom, else the clock and pid: jitter must never fail a poll.
fn random_with(syscall: bool) -> u64 {
    let mut buf = [0u8; 8];
    if syscall {
        // SAFETY: buf is valid for 8 writable bytes. GRND_NONBLOCK: early
        // at boot, before the pool is seeded, it answers EAGAIN rather than
        // wait, and /dev/urandom below never waits.
        let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), libc::GRND_NONBLOCK) };
        if n == 8 {
            return u64::from_ne_bytes(buf);
        }
    }
    use std::io::Read;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok()
    {
        return u64::from_ne_bytes(buf);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn jitter_is_a_duration_or_a_percentage() {
        assert_eq!(Jitter::parse("10%"), Ok(Jitter::Percent(10)));
        assert_eq!(Jitter::parse("30s"), Ok(Jitter::Fixed(secs(30))));
        assert_eq!(Jitter::parse("2m"), Ok(Jitter::Fixed(secs(120))));
        assert_eq!(Jitter::parse("0"), Ok(Jitter::Fixed(secs(0))));
        assert_eq!(Jitter::parse("0%"), Ok(Jitter::Percent(0)));
        assert!(Jitter::parse("101%").unwrap_err().contains("0% to 100%"));
        assert!(Jitter::parse("soon")
            .unwrap_err()
            .contains("e.g. 30s or 10%"));
    }

    /// The wait is never below the interval and at most jitter above it:
    /// random 0 gives the interval, a random at the top gives interval + j.
    #[test]
    fn the_wait_is_the_interval_plus_up_to_the_jitter() {
        let s = Schedule::new(secs(300), DEFAULT_JITTER, None);
        assert_eq!(s.next(0, 0), secs(300));
        assert_eq!(s.next(0, 30_000), secs(330));
        assert_eq!(s.next(0, 30_001), secs(300), "wraps around");
        assert_eq!(s.next(0, 12_345), Duration::from_millis(312_345));
        for r in [1, 7, u64::MAX, 1 << 40, 999_999_937] {
            let w = s.next(0, r);
            assert!(w >= secs(300) && w <= secs(330), "{w:?}");
        }
        let fixed = Schedule::new(secs(300), Jitter::Fixed(secs(5)), None);
        assert_eq!(fixed.next(0, 5000), secs(305));
        let off = Schedule::new(secs(300), Jitter::Percent(0), None);
        assert_eq!(off.next(0, u64::MAX), secs(300));
    }

    /// While the origin fails the wait doubles up to the cap (jitter on
    /// top, a percentage of the longer wait); one success resets it.
    #[test]
    fn failures_back_off_to_the_cap() {
        let s = Schedule::new(secs(300), Jitter::Percent(0), None);
        let waits: Vec<u64> = (0..6).map(|k| s.next(k, 0).as_secs()).collect();
        assert_eq!(waits, [300, 600, 1200, 2400, 2400, 2400], "8 x 300 s");
        assert_eq!(s.next(u32::MAX, 0), secs(2400));
        let s = Schedule::new(secs(600), Jitter::Percent(10), None);
        assert_eq!(s.next(3, 0), secs(3600), "an hour at most");
        assert_eq!(
            s.next(3, u64::MAX % 360_001),
            secs(3600) + Duration::from_millis(u64::MAX % 360_001)
        );
        assert_eq!(s.next(9, 360_000), secs(3960), "10% of the capped wait");
        // An interval above the cap is not shortened; --backoff-max wins below 8 x.
        assert_eq!(
            Schedule::new(secs(7200), DEFAULT_JITTER, None).cap,
            secs(7200)
        );
        let s = Schedule::new(secs(1), Jitter::Percent(0), Some(secs(2)));
        let waits: Vec<u64> = (0..4).map(|k| s.next(k, 0).as_secs()).collect();
        assert_eq!(waits, [1, 2, 2, 2]);
    }

    #[test]
    fn the_log_speaks_once_per_change_of_state() {
        let mut log = StateLog::default();
        assert_eq!(log.succeeded(), None, "ok -> ok is quiet");
        assert_eq!(log.failed("unreachable"), Some("unreachable".into()));
        assert_eq!(log.failed("unreachable"), None, "the same error again");
        assert_eq!(log.failures(), 2);
        assert_eq!(
            log.failed("http status 500"),
            Some("http status 500".into())
        );
        assert_eq!(log.failed("http status 500"), None);
        assert_eq!(
            log.succeeded().as_deref(),
            Some("origin reachable again after 4 failed tries")
        );
        assert_eq!(log.failures(), 0);
        assert_eq!(log.succeeded(), None);
        assert_eq!(
            log.failed("unreachable"),
            Some("unreachable".into()),
            "a new run of failures prints its error again"
        );
    }

    /// Both sources, the getrandom syscall and the /dev/urandom fallback
    /// (kernels without it answer ENOSYS), give varying numbers.
    #[test]
    fn random_numbers_come_from_getrandom_or_urandom() {
        for syscall in [true, false] {
            let a: Vec<u64> = (0..4).map(|_| random_with(syscall)).collect();
            assert!(a.windows(2).any(|w| w[0] != w[1]), "{syscall}: {a:?}");
        }
    }
}
