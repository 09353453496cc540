//! The health state machine the monitor keeps for a container with a
//! `health:` check: `starting` until the first success, `healthy`, and
//! `unhealthy` after `retries` failures in a row. Failures inside the start
//! period do not count (a success still ends it), as Docker does. Plain data:
//! the monitor feeds it probe results and saves it in the state file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::HealthSpec;

/// Bytes kept of a failed probe's output.
pub const MAX_OUTPUT: usize = 1024;

/// The health of a container as its probes found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No success yet since the start.
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// What the monitor records after each probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub status: HealthStatus,
    /// Failures in a row that counted (outside the start period).
    pub failures: u32,
    /// Probes run since the init started.
    pub checks: u64,
    /// Seconds since the epoch: when the last probe ended.
    pub last_check: Option<u64>,
    /// Why the last failed probe failed, with its output (at most MAX_OUTPUT
    /// bytes). Kept across a restart, so it says why the restart happened.
    pub last_failure: Option<String>,
    /// Seconds since the epoch: when `status` last changed.
    pub since: u64,
}

impl HealthState {
    /// The state at a start of the init.
    pub fn new(now: u64) -> Self {
        HealthState {
            status: HealthStatus::Starting,
            failures: 0,
            checks: 0,
            last_check: None,
            last_failure: None,
            since: now,
        }
    }

    /// Begin again after a restart, keeping the last failure's reason.
    pub fn restarted(&self, now: u64) -> Self {
        HealthState {
            last_failure: self.last_failure.clone(),
            ..HealthState::new(now)
        }
    }

    /// Record one probe that ended at `now`, `running` after the init started.
    /// `failure`: none for a success, else why it failed. Returns true when
    /// the status changed.
    pub fn record(
        &mut self,
        spec: &HealthSpec,
        running: Duration,
        now: u64,
        failure: Option<String>,
    ) -> bool {
        let before = self.status;
        self.checks = self.checks.saturating_add(1);
        self.last_check = Some(now);
        match failure {
            None => {
                self.failures = 0;
                self.status = HealthStatus::Healthy;
            }
            Some(why) => {
                self.last_failure = Some(bounded(why));
                let grace = self.status == HealthStatus::Starting
                    && running < Duration::from_secs(spec.start_period_secs.into());
                if !grace {
                    self.failures = self.failures.saturating_add(1);
                    if self.failures >= spec.retries {
                        self.status = HealthStatus::Unhealthy;
                    }
                }
            }
        }
        if self.status != before {
            self.since = now;
        }
        self.status != before
    }

    /// How long to wait before the next probe. The first comes a second after
    /// the start, and in the start period probes come every second, so a
    /// container that is up is found healthy at once; after that, `interval`.
    pub fn next_delay(&self, spec: &HealthSpec, running: Duration) -> Duration {
        let interval = Duration::from_secs(spec.interval_secs.into());
        let in_start = self.status == HealthStatus::Starting
            && (self.checks == 0 || running < Duration::from_secs(spec.start_period_secs.into()));
        if in_start {
            interval.min(Duration::from_secs(1))
        } else {
            interval
        }
    }
}

/// The longest a container with this check can take to turn healthy or
/// unhealthy after a start: the first probe, the start period, and `retries`
/// probes that each run into the timeout.
pub fn settle_time(spec: &HealthSpec) -> Duration {
    let per_probe = u64::from(spec.interval_secs) + u64::from(spec.timeout_secs);
    Duration::from_secs(
        1 + u64::from(spec.start_period_secs)
            + u64::from(spec.timeout_secs)
            + u64::from(spec.retries) * per_probe,
    )
}

/// `text` cut to MAX_OUTPUT bytes at a character boundary, trimmed.
fn bounded(text: String) -> String {
    let text = text.trim();
    let mut end = text.len().min(MAX_OUTPUT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Probe;

    fn spec(retries: u32, start_period_secs: u32) -> HealthSpec {
        HealthSpec {
            probe: Probe::Tcp(80),
            interval_secs: 10,
            timeout_secs: 5,
            retries,
            start_period_secs,
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_success_makes_it_healthy_at_once() {
        let sp = spec(3, 0);
        let mut h = HealthState::new(100);
        assert_eq!(h.status, HealthStatus::Starting);
        assert!(h.record(&sp, S, 101, None));
        assert_eq!(
            (h.status, h.failures, h.checks, h.since),
            (HealthStatus::Healthy, 0, 1, 101)
        );
        assert!(!h.record(&sp, 11 * S, 111, None), "no change: same status");
    }

    #[test]
    fn retries_failures_in_a_row_make_it_unhealthy() {
        let sp = spec(3, 0);
        let mut h = HealthState::new(0);
        h.record(&sp, S, 1, None);
        assert!(!h.record(&sp, 11 * S, 11, Some("refused".into())));
        assert!(!h.record(&sp, 21 * S, 21, Some("refused".into())));
        assert_eq!(h.status, HealthStatus::Healthy, "two of three");
        assert!(h.record(&sp, 31 * S, 31, Some("refused".into())));
        assert_eq!(
            (h.status, h.failures, h.since),
            (HealthStatus::Unhealthy, 3, 31)
        );
        assert_eq!(h.last_failure.as_deref(), Some("refused"));
        // One success ends it, and the count starts again.
        assert!(h.record(&sp, 41 * S, 41, None));
        assert_eq!((h.status, h.failures), (HealthStatus::Healthy, 0));
        h.record(&sp, 51 * S, 51, Some("x".into()));
        h.record(&sp, 61 * S, 61, None);
        h.record(&sp, 71 * S, 71, Some("x".into()));
        h.record(&sp, 81 * S, 81, Some("x".into()));
        assert_eq!(h.status, HealthStatus::Healthy, "not in a row");
    }

    #[test]
    fn the_start_period_does_not_count_failures_but_a_success_ends_it() {
        let sp = spec(1, 30);
        let mut h = HealthState::new(0);
        for t in 1..30u32 {
            assert!(!h.record(&sp, t * S, t.into(), Some("not yet".into())));
        }
        assert_eq!((h.status, h.failures), (HealthStatus::Starting, 0));
        assert_eq!(h.last_failure.as_deref(), Some("not yet"), "still shown");
        // Past the start period, a failure counts.
        assert!(h.record(&sp, 30 * S, 30, Some("down".into())));
        assert_eq!(h.status, HealthStatus::Unhealthy);

        // A success inside the start period ends it: failures count again.
        let sp = spec(1, 30);
        let mut h = HealthState::new(0);
        h.record(&sp, 2 * S, 2, None);
        assert!(h.record(&sp, 3 * S, 3, Some("down".into())));
        assert_eq!(h.status, HealthStatus::Unhealthy);
    }

    #[test]
    fn probes_come_every_second_while_starting_then_every_interval() {
        let sp = spec(3, 20);
        let mut h = HealthState::new(0);
        assert_eq!(h.next_delay(&sp, Duration::ZERO), S, "first probe");
        h.record(&sp, S, 1, Some("no".into()));
        assert_eq!(h.next_delay(&sp, 2 * S), S, "in the start period");
        assert_eq!(h.next_delay(&sp, 25 * S), 10 * S, "after it");
        h.record(&sp, 3 * S, 3, None);
        assert_eq!(h.next_delay(&sp, 4 * S), 10 * S, "healthy");
        // Without a start period: the first probe early, then the interval.
        let sp = spec(3, 0);
        let mut h = HealthState::new(0);
        assert_eq!(h.next_delay(&sp, Duration::ZERO), S);
        h.record(&sp, S, 1, Some("no".into()));
        assert_eq!(h.next_delay(&sp, S), 10 * S);
    }

    #[test]
    fn a_restart_starts_over_but_keeps_the_reason() {
        let sp = spec(1, 0);
        let mut h = HealthState::new(0);
        h.record(&sp, S, 1, Some("exit code 1: no dnsmasq".into()));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        let r = h.restarted(5);
        assert_eq!(
            (r.status, r.failures, r.checks, r.since),
            (HealthStatus::Starting, 0, 0, 5)
        );
        assert_eq!(r.last_failure.as_deref(), Some("exit code 1: no dnsmasq"));
    }

    #[test]
    fn output_is_bounded_on_a_character_boundary() {
        let sp = spec(3, 0);
        let mut h = HealthState::new(0);
        h.record(&sp, S, 1, Some("é".repeat(MAX_OUTPUT)));
        let kept = h.last_failure.unwrap_or_default();
        assert!(kept.len() <= MAX_OUTPUT && kept.len() >= MAX_OUTPUT - 1);
        assert!(kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn settle_time_covers_the_start_period_and_every_retry() {
        // 1 + 30 + 5 + 3 * (10 + 5)
        assert_eq!(settle_time(&spec(3, 30)), Duration::from_secs(81));
    }
}
