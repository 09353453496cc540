//! The time limits of one HTTP connection (http.rs): one deadline over
//! connect, redirects, TLS and the head (and the body of a manifest), a
//! minimum throughput over a sliding window for an image's body, and the
//! longest wait per read, checked around every read and write of the socket.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::transfer::{FetchError, Limits, MinRate};

/// The time limits of one connection, checked around every read and write.
pub(super) struct Clock {
    /// The URL asked for, for errors.
    pub(super) url: String,
    pub(super) limits: Limits,
    pub(super) deadline: Instant,
    /// Set once the head is read: the body's throughput meter.
    pub(super) body: Option<Meter>,
}

impl Clock {
    pub(super) fn deadline_applies(&self) -> bool {
        self.body.is_none() || self.limits.deadline_covers_body
    }

    /// The longest the next read or write may wait, or the deadline's error.
    pub(super) fn wait(&self, now: Instant) -> Result<Duration, FetchError> {
        if !self.deadline_applies() {
            return Ok(self.limits.stall);
        }
        let left = self.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(self.deadline_error());
        }
        Ok(left.min(self.limits.stall))
    }

    pub(super) fn deadline_error(&self) -> FetchError {
        FetchError::Deadline {
            url: self.url.clone(),
            secs: self.limits.deadline.as_secs(),
        }
    }

    /// A read or write that waited its whole time: the deadline, or a stall.
    pub(super) fn timed_out(&self, now: Instant) -> FetchError {
        if self.deadline_applies() && now >= self.deadline {
            return self.deadline_error();
        }
        FetchError::Stalled {
            url: self.url.clone(),
            secs: self.limits.stall.as_secs(),
        }
    }

    /// `n` bytes arrived: the throughput rule, in the body.
    pub(super) fn received(&mut self, n: usize, now: Instant) -> Result<(), FetchError> {
        let Some(meter) = &mut self.body else {
            return Ok(());
        };
        match meter.add(n, now) {
            Ok(()) => Ok(()),
            Err((rate, span)) => Err(FetchError::TooSlow {
                url: self.url.clone(),
                rate,
                secs: span.as_secs(),
                min: meter.rule.map_or(0, |r| r.bytes_per_sec),
            }),
        }
    }
}

/// Bytes received over a sliding window: a few samples of (time, total so
/// far), at least one of them a window old, so the average over the last
/// window is one subtraction.
pub(super) struct Meter {
    pub(super) rule: Option<MinRate>,
    pub(super) start: Instant,
    pub(super) total: u64,
    pub(super) samples: VecDeque<(Instant, u64)>,
}

/// Samples per window: the average's span is off by at most 1/8 window.
pub(super) const SAMPLES_PER_WINDOW: u32 = 8;

impl Meter {
    pub(super) fn new(rule: Option<MinRate>, start: Instant) -> Self {
        Meter {
            rule,
            start,
            total: 0,
            samples: VecDeque::from([(start, 0)]),
        }
    }

    /// Count `n` bytes; `Err((rate, span))` when the rule fails.
    pub(super) fn add(&mut self, n: usize, now: Instant) -> Result<(), (u64, Duration)> {
        let Some(rule) = self.rule else {
            return Ok(());
        };
        self.total += u64::try_from(n).unwrap_or(u64::MAX);
        let step = rule.window / SAMPLES_PER_WINDOW;
        if self
            .samples
            .back()
            .map_or(true, |(t, _)| now.duration_since(*t) >= step)
        {
            self.samples.push_back((now, self.total));
        }
        // Keep exactly one sample at least a window old: the baseline.
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= rule.window)
        {
            self.samples.pop_front();
        }
        let (t0, b0) = self.samples.front().copied().unwrap_or((self.start, 0));
        let span = now.duration_since(t0);
        if now.duration_since(self.start) < rule.grace || span < rule.window {
            return Ok(());
        }
        let millis = u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1);
        let rate = (self.total - b0).saturating_mul(1000) / millis;
        if rate < rule.bytes_per_sec {
            return Err((rate, span));
        }
        Ok(())
    }
}

/// A TCP connection under its [`Clock`]: each read or write may wait only
/// as long as the deadline and the stall time allow, so a server that sends
/// one byte a second still fails in time.
pub(super) struct Timed {
    pub(super) tcp: TcpStream,
    pub(super) clock: Clock,
    /// The read timeout last set: most reads need the same one (the stall
    /// time), so most reads cost no setsockopt.
    pub(super) read_timeout: Option<Duration>,
}

impl Timed {
    pub(super) fn new(tcp: TcpStream, clock: Clock) -> Self {
        Timed {
            tcp,
            clock,
            read_timeout: None,
        }
    }

    pub(super) fn start_body(&mut self, now: Instant) {
        self.clock.body = Some(Meter::new(self.clock.limits.min_rate, now));
    }
}

/// Whether an I/O error is the socket timeout firing.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wait = self
            .clock
            .wait(Instant::now())
            .map_err(FetchError::into_io)?;
        if self.read_timeout != Some(wait) {
            self.tcp.set_read_timeout(Some(wait))?;
            self.read_timeout = Some(wait);
        }
        match self.tcp.read(buf) {
            Ok(n) => {
                self.clock
                    .received(n, Instant::now())
                    .map_err(FetchError::into_io)?;
                Ok(n)
            }
            Err(e) if is_timeout(&e) => Err(self.clock.timed_out(Instant::now()).into_io()),
            Err(e) => Err(e),
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wait = self
            .clock
            .wait(Instant::now())
            .map_err(FetchError::into_io)?;
        self.tcp.set_write_timeout(Some(wait))?;
        match self.tcp.write(buf) {
            Err(e) if is_timeout(&e) => Err(self.clock.timed_out(Instant::now()).into_io()),
            other => other,
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}
