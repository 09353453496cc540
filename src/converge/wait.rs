//! `apply --wait`: after a plan ran, wait until every container it started
//! is healthy (its probe passed) or, without a probe, runs steadily; fail
//! at once when one exits, restarts or turns unhealthy, and at the deadline
//! when one is still starting.

use std::time::{Duration, Instant};

use crate::host::runtime::health::{settle_time, HealthStatus};
use crate::host::runtime::rundir::Phase;
use crate::host::runtime::{ContainerState, Status};
use crate::host::{chain, Host};
use crate::model::{Desired, Spec};
use crate::plan::Action;

use super::Report;

/// How long a container without a probe must run, with the same init and
/// no restart, to count as up.
pub const STEADY: Duration = Duration::from_secs(2);
/// Between two looks at the state files (tmpfs reads).
const POLL: Duration = Duration::from_millis(200);
/// Added to the probes' own worst case: the monitor's start and the reads.
const SLACK: Duration = Duration::from_secs(5);

/// A container that did not come up, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unready {
    pub container: String,
    pub reason: String,
}

impl std::fmt::Display for Unready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container `{}` {}", self.container, self.reason)
    }
}

/// The containers `report` started, restarted or recreated that should run.
pub fn started(report: &Report, desired: &Desired) -> Vec<String> {
    let mut names: Vec<String> = report
        .done
        .iter()
        .filter_map(|a| match a {
            Action::Start { container }
            | Action::Restart { container, .. }
            | Action::Recreate { container, .. } => Some(container.clone()),
            _ => None,
        })
        .filter(|n| desired.containers.get(n).is_some_and(|s| s.autostart))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The default deadline for `names`: the slowest probe's worst case (start
/// period, then every retry running into its timeout), or STEADY.
pub fn default_deadline(desired: &Desired, names: &[String]) -> Duration {
    names
        .iter()
        .filter_map(|n| desired.containers.get(n))
        .map(|s| s.health.as_ref().map_or(STEADY, settle_time))
        .max()
        .unwrap_or(STEADY)
        + SLACK
}

/// What a look at one container found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Up,
    /// Not yet; what it waits for.
    Pending(String),
    Failed(String),
}

/// The first look at a container: its init and restart count then.
#[derive(Debug, Clone, Copy)]
struct Seen {
    pid: i32,
    restarts: u32,
    at: Instant,
}

/// Judge one look. `seen` is filled at the first look that finds it running.
fn verdict(
    spec: &Spec,
    status: &Status,
    st: Option<&ContainerState>,
    seen: &mut Option<Seen>,
    now: Instant,
) -> Verdict {
    let error = st.and_then(|s| s.error.clone());
    let restarts = st.map_or(0, |s| s.restarts);
    let pid = match status {
        Status::Running { pid, .. } => *pid,
        Status::Restarting => {
            return match seen {
                // Exited after it was seen running: a crash, whatever follows.
                Some(_) => Verdict::Failed(exited(st)),
                None => Verdict::Pending("restarting".into()),
            };
        }
        Status::Stopping { .. } => return Verdict::Failed("is being stopped".into()),
        Status::Missing => return Verdict::Failed("has no runtime record".into()),
        // The init is gone but its monitor has not written the exit yet.
        Status::Stopped { .. }
            if st.is_some_and(|s| matches!(s.phase, Phase::Running | Phase::Starting)) =>
        {
            return Verdict::Pending("exiting".into())
        }
        Status::Stopped { .. } => {
            return Verdict::Failed(match error {
                Some(e) => format!("did not start: {e}"),
                None => exited(st),
            })
        }
    };
    let first = *seen.get_or_insert(Seen {
        pid,
        restarts,
        at: now,
    });
    if restarts != first.restarts || pid != first.pid {
        return Verdict::Failed(format!("{} and was restarted", exited(st)));
    }
    let Some(_) = &spec.health else {
        return if now.duration_since(first.at) >= STEADY {
            Verdict::Up
        } else {
            Verdict::Pending("running for less than 2 s".into())
        };
    };
    let health = st.and_then(|s| s.health.as_ref());
    let last = health
        .and_then(|h| h.last_failure.clone())
        .map_or(String::new(), |f| format!(": last check: {f}"));
    match health.map(|h| h.status) {
        Some(HealthStatus::Healthy) => Verdict::Up,
        Some(HealthStatus::Unhealthy) => Verdict::Failed(format!(
            "unhealthy: {}",
            health
                .and_then(|h| h.last_failure.clone())
                .unwrap_or_else(|| "its check failed".into())
        )),
        Some(HealthStatus::Starting) | None => Verdict::Pending(format!("not healthy yet{last}")),
    }
}

fn exited(st: Option<&ContainerState>) -> String {
    match st.and_then(|s| s.last_exit) {
        Some(e) if e.signal.is_some() => format!("was killed by signal {}", e.signal.unwrap_or(0)),
        Some(e) => format!("exited with code {}", e.code),
        None => "exited".into(),
    }
}

/// Wait for every container of `names` to be up within `deadline`.
pub fn wait(
    host: &mut dyn Host,
    desired: &Desired,
    names: &[String],
    deadline: Duration,
) -> Result<(), Unready> {
    let start = Instant::now();
    // (name, first look, what it waits for); removed once up.
    let mut pending: Vec<(&str, Option<Seen>, String)> = names
        .iter()
        .map(|n| (n.as_str(), None, String::new()))
        .collect();
    loop {
        let now = Instant::now();
        let mut up = Vec::new();
        for (name, seen, waiting_for) in pending.iter_mut() {
            let Some(spec) = desired.containers.get(*name) else {
                up.push(*name);
                continue;
            };
            let look = host.condition(name).map_err(|e| Unready {
                container: name.to_string(),
                reason: format!("cannot be read: {}", chain(&e)),
            })?;
            match verdict(spec, &look.0, look.1.as_ref(), seen, now) {
                Verdict::Up => up.push(*name),
                Verdict::Pending(why) => *waiting_for = why,
                Verdict::Failed(reason) => {
                    return Err(Unready {
                        container: name.to_string(),
                        reason,
                    })
                }
            }
        }
        pending.retain(|(n, _, _)| !up.contains(n));
        let Some((name, _, why)) = pending.first() else {
            return Ok(());
        };
        if start.elapsed() >= deadline {
            return Err(Unready {
                container: name.to_string(),
                reason: format!("did not come up within {} s ({why})", deadline.as_secs()),
            });
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::runtime::health::HealthState;
    use crate::host::runtime::ExitInfo;
    use crate::model::{HealthSpec, Probe};

    fn spec(health: bool) -> Spec {
        let mut s = Spec::new("dns", "bb", None);
        s.health = health.then_some(HealthSpec {
            probe: Probe::Tcp(53),
            interval_secs: 10,
            timeout_secs: 5,
            retries: 3,
            start_period_secs: 0,
        });
        s
    }

    fn state(restarts: u32, health: Option<HealthStatus>) -> ContainerState {
        let mut st = ContainerState::new("dns");
        st.restarts = restarts;
        st.last_exit = Some(ExitInfo {
            code: 3,
            signal: None,
        });
        st.health = health.map(|status| HealthState {
            status,
            last_failure: Some("connect to port 53: refused".into()),
            ..HealthState::new(0)
        });
        st
    }

    const RUNNING: Status = Status::Running {
        pid: 7,
        supervised: true,
    };

    #[test]
    fn a_probe_decides_when_there_is_one() {
        let t = Instant::now();
        let mut seen = None;
        let sp = spec(true);
        let st = state(0, Some(HealthStatus::Starting));
        assert!(matches!(
            verdict(&sp, &RUNNING, Some(&st), &mut seen, t),
            Verdict::Pending(w) if w.contains("refused")
        ));
        let st = state(0, Some(HealthStatus::Healthy));
        assert_eq!(verdict(&sp, &RUNNING, Some(&st), &mut seen, t), Verdict::Up);
        let st = state(0, Some(HealthStatus::Unhealthy));
        assert_eq!(
            verdict(&sp, &RUNNING, Some(&st), &mut seen, t),
            Verdict::Failed("unhealthy: connect to port 53: refused".into())
        );
    }

    #[test]
    fn without_a_probe_it_must_run_steadily() {
        let t = Instant::now();
        let mut seen = None;
        let sp = spec(false);
        let st = state(0, None);
        assert!(matches!(
            verdict(&sp, &RUNNING, Some(&st), &mut seen, t),
            Verdict::Pending(_)
        ));
        assert_eq!(
            verdict(&sp, &RUNNING, Some(&st), &mut seen, t + STEADY),
            Verdict::Up
        );
        // A restart in between is a crash.
        let mut seen = None;
        verdict(&sp, &RUNNING, Some(&st), &mut seen, t);
        let again = state(1, None);
        assert_eq!(
            verdict(&sp, &RUNNING, Some(&again), &mut seen, t + STEADY),
            Verdict::Failed("exited with code 3 and was restarted".into())
        );
        assert_eq!(
            verdict(
                &sp,
                &Status::Restarting,
                Some(&again),
                &mut seen,
                t + STEADY
            ),
            Verdict::Failed("exited with code 3".into())
        );
    }

    #[test]
    fn a_container_that_is_down_fails_at_once() {
        let t = Instant::now();
        let sp = spec(true);
        let mut st = state(0, None);
        let stopped = Status::Stopped { exit: None };
        st.phase = Phase::Running;
        assert_eq!(
            verdict(&sp, &stopped, Some(&st), &mut None, t),
            Verdict::Pending("exiting".into()),
            "the monitor has yet to record the exit"
        );
        st.phase = Phase::Exited;
        assert_eq!(
            verdict(&sp, &stopped, Some(&st), &mut None, t),
            Verdict::Failed("exited with code 3".into())
        );
        st.error = Some("exec `dnsmasq` in the container: not found".into());
        assert_eq!(
            verdict(&sp, &stopped, Some(&st), &mut None, t),
            Verdict::Failed("did not start: exec `dnsmasq` in the container: not found".into())
        );
        // Restarting before it was ever seen up: still waiting (backoff).
        assert!(matches!(
            verdict(&sp, &Status::Restarting, Some(&st), &mut None, t),
            Verdict::Pending(_)
        ));
    }

    #[test]
    fn the_deadline_covers_the_slowest_probe() {
        let mut d = Desired::default();
        d.containers.insert("dns".into(), spec(true));
        d.containers.insert("web".into(), spec(false));
        let both = ["dns".to_string(), "web".to_string()];
        assert_eq!(
            default_deadline(&d, &both),
            settle_time(&spec(true).health.unwrap()) + SLACK
        );
        assert_eq!(default_deadline(&d, &both[1..]), STEADY + SLACK);
    }
}
