//! The MQTT side of `berth apply --serve --mqtt URL` (docs/fleet.md, "Push
//! and status through MQTT"): a thread that keeps a session with the broker,
//! rings the serve loop's doorbell (SIGUSR1) when an `apply` arrives on one
//! of the device's `cmd` topics, and keeps a retained status document and
//! presence on the device's own topics.
//!
//! A message never carries trust: a doorbell only makes the device fetch
//! and verify its manifest from the origin, as SIGHUP does. Without a
//! broker, or while it is down, the serve loop polls as before; the thread
//! reconnects with backoff and jitter and republishes the status when the
//! broker is back.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::args::{Opt, Parsed};
use super::error::{Context, Result};
use super::schedule::random_u64;
use super::UsageError;
use crate::fleet::mqtt::{check_prefix, parse_doorbell, Connect, Doorbell, Publish, Shown, Will};
use crate::fleet::time::format_rfc3339;
use crate::host::history::{History, Revision};
use crate::host::mqtt::{BrokerUrl, MqttFailure, Options, Session};
use crate::host::runtime::rundir;

/// `--mqtt URL`.
pub const MQTT: Opt = Opt::value(
    "mqtt",
    "URL",
    "With --serve: the fleet's MQTT broker, mqtt://HOST[:1883] or mqtts://HOST[:8883], for \
     the `apply` doorbell and the device's retained status",
)
.env("BERTH_MQTT");
/// `--mqtt-user NAME`.
pub const MQTT_USER: Opt =
    Opt::value("mqtt-user", "NAME", "User name at the broker").env("BERTH_MQTT_USER");
/// `--mqtt-password-file FILE`.
pub const MQTT_PASSWORD_FILE: Opt = Opt::path(
    "mqtt-password-file",
    "FILE",
    "The broker password: the first line of FILE",
)
.env("BERTH_MQTT_PASSWORD_FILE");
/// `--mqtt-keepalive SECS`.
pub const MQTT_KEEPALIVE: Opt = Opt::value(
    "mqtt-keepalive",
    "SECS",
    "Seconds between pings to the broker; it says `offline` after 1.5 times this \
     without a word [default: 60]",
)
.env("BERTH_MQTT_KEEPALIVE");
/// `--topic-prefix PREFIX`.
pub const TOPIC_PREFIX: Opt = Opt::value(
    "topic-prefix",
    "PREFIX",
    "Start of every MQTT topic: PREFIX<device-id>/status, PREFIX<group>/cmd [default: berth/]",
)
.env("BERTH_TOPIC_PREFIX");

/// The keepalive asked of the broker when none is given: it publishes the
/// Last Will (offline) after 1.5 times this without a packet.
const KEEPALIVE_SECS: u16 = 60;
/// How often the thread looks for a change of a container's state or health.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// An unchanged status is published again this often: `last seen`.
const HEARTBEAT: Duration = Duration::from_secs(3600);
/// The longest wait between two tries to reach the broker.
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The largest packet a device takes from its broker: a doorbell is a few bytes.
const MAX_PACKET: usize = 4096;
/// The status document's limit.
pub const MAX_STATUS: usize = 16 * 1024;
/// Containers listed in a status at most; the rest are counted.
const MAX_LISTED: usize = 64;

/// The broker options of the command line.
#[derive(Debug, Clone, Default)]
pub struct BrokerArgs {
    /// `--mqtt`; `None`: no broker.
    pub url: Option<BrokerUrl>,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub prefix: String,
    /// `--mqtt-keepalive`, seconds.
    pub keepalive: u16,
}

impl BrokerArgs {
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let url = p
            .string("mqtt")?
            .map(|u| BrokerUrl::parse(&u).map_err(|e| UsageError(format!("--mqtt: {e}"))))
            .transpose()?;
        let prefix = p.string("topic-prefix")?.unwrap_or_else(|| "berth/".into());
        check_prefix(&prefix).map_err(|e| UsageError(format!("--topic-prefix: {e}")))?;
        let keepalive = match p.num::<u16>("mqtt-keepalive")? {
            None => KEEPALIVE_SECS,
            Some(k @ 1..=3600) => k,
            Some(k) => {
                return Err(UsageError(format!(
                    "--mqtt-keepalive: {k} is not from 1 to 3600 seconds"
                )))
            }
        };
        Ok(BrokerArgs {
            url,
            user: p.string("mqtt-user")?,
            password_file: p.path("mqtt-password-file"),
            prefix,
            keepalive,
        })
    }

    /// Session options for `client_id`, with the password read now.
    pub fn options(
        &self,
        url: &BrokerUrl,
        client_id: &str,
        ca_bundle: PathBuf,
        will: Option<Will>,
    ) -> Result<Options> {
        let password = match &self.password_file {
            Some(f) => {
                let text = std::fs::read_to_string(f).with_context(|| {
                    format!(
                        "--mqtt-password-file: read `{}`; it holds the broker password on its first line",
                        f.display()
                    )
                })?;
                Some(text.lines().next().unwrap_or_default().as_bytes().to_vec())
            }
            None => None,
        };
        Ok(Options {
            url: url.clone(),
            connect: Connect {
                client_id: client_id.to_string(),
                keepalive_secs: self.keepalive,
                username: self.user.clone(),
                password,
                will,
            },
            ca_bundle,
            timeout: Duration::from_secs(10),
            max_packet: MAX_PACKET,
            max_queued: 16,
        })
    }
}

/// Where the status comes from: the store and runtime dirs the serve loop
/// applied to last.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub store_root: PathBuf,
    pub run_root: PathBuf,
}

/// What the serve loop and the thread share.
#[derive(Default)]
struct Shared {
    paths: Paths,
    /// Why the last pass that fetched or applied something failed.
    error: Option<String>,
    /// A pass ended since the thread last looked.
    applied: bool,
    /// The service stops: publish the last status, then `offline`.
    stop: bool,
    /// The highest version a doorbell asked for since the last pass; 0: any.
    wanted: u64,
}

type Link = Arc<(Mutex<Shared>, Condvar)>;

fn lock(link: &Link) -> std::sync::MutexGuard<'_, Shared> {
    // A panicked holder left plain data behind: still usable.
    link.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running agent thread.
pub struct Agent {
    link: Link,
    thread: JoinHandle<()>,
}

impl Agent {
    /// Start the thread. The caller has blocked SIGUSR1, which it rings.
    pub fn start(
        options: Options,
        device_id: String,
        groups: Vec<String>,
        prefix: String,
        paths: Paths,
    ) -> Agent {
        let link: Link = Arc::default();
        lock(&link).paths = paths;
        let topics = Topics::new(&prefix, &device_id, &groups);
        let mut worker = Worker {
            options,
            device_id,
            groups,
            topics,
            link: link.clone(),
            published: None,
            junk: JunkLog::default(),
        };
        let thread = std::thread::spawn(move || worker.run());
        Agent { link, thread }
    }

    /// A pass ended: say so on the status topic. `error`: why the last pass
    /// that fetched or applied a manifest failed (a refused signature, a
    /// container that cannot start).
    pub fn applied(&self, paths: Paths, error: Option<String>) {
        let mut s = lock(&self.link);
        (s.paths, s.error, s.applied) = (paths, error, true);
        self.link.1.notify_all();
    }

    /// The version the last doorbells asked for (0: none named), cleared.
    pub fn take_wanted(&self) -> u64 {
        std::mem::take(&mut lock(&self.link).wanted)
    }

    /// Publish the final status and `offline`, and say goodbye (waits at
    /// most the session's timeout).
    pub fn stop(self) {
        lock(&self.link).stop = true;
        self.link.1.notify_all();
        let _ = self.thread.join();
    }
}

/// The device's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub status: String,
    pub presence: String,
    /// Its own, its groups' and `all`'s `cmd`.
    pub cmd: Vec<String>,
}

impl Topics {
    pub fn new(prefix: &str, device_id: &str, groups: &[String]) -> Self {
        let mut cmd = vec![format!("{prefix}{device_id}/cmd")];
        cmd.extend(groups.iter().map(|g| format!("{prefix}{g}/cmd")));
        cmd.push(format!("{prefix}all/cmd"));
        Topics {
            status: format!("{prefix}{device_id}/status"),
            presence: format!("{prefix}{device_id}/presence"),
            cmd,
        }
    }
}

/// Why the session loop ended without an error.
enum Ended {
    Stopped,
}

struct Worker {
    options: Options,
    device_id: String,
    groups: Vec<String>,
    topics: Topics,
    link: Link,
    /// The status body last published (without its time), and when.
    published: Option<(String, Instant)>,
    junk: JunkLog,
}

impl Worker {
    fn run(&mut self) {
        let mut failures: u32 = 0;
        let mut said: Option<String> = None;
        loop {
            let result = Session::connect(&self.options).and_then(|mut s| {
                if failures > 0 {
                    eprintln!("berth: broker {} reachable again", self.options.url);
                }
                failures = 0;
                said = None;
                self.session(&mut s).map(|ended| (s, ended))
            });
            match result {
                Ok((s, Ended::Stopped)) => return s.disconnect(),
                Err(e) => {
                    let line = crate::host::chain(&e);
                    if said.as_ref() != Some(&line) {
                        eprintln!("berth: broker: {line}; polling goes on, retrying");
                        said = Some(line);
                    }
                    failures = failures.saturating_add(1);
                }
            }
            // The published status is gone with the session: publish anew.
            self.published = None;
            let wait = backoff(failures, random_u64());
            let until = Instant::now() + wait;
            let mut shared = lock(&self.link);
            while !shared.stop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                shared = match self.link.1.wait_timeout(shared, left) {
                    Ok((g, _)) => g,
                    Err(e) => e.into_inner().0,
                };
            }
            if shared.stop {
                return;
            }
        }
    }

    /// One connected session: presence, subscriptions, then messages and
    /// status until the service stops or the session fails.
    fn session(&mut self, s: &mut Session) -> Result<Ended, MqttFailure> {
        s.publish(&self.topics.presence, b"online", true)?;
        s.subscribe(&self.topics.cmd)?;
        self.publish_status(s, true)?;
        let mut checked = Instant::now();
        loop {
            if let Some(msg) = s.next(Duration::from_secs(1))? {
                self.doorbell(&msg);
            }
            let (stop, now) = {
                let mut shared = lock(&self.link);
                // A pass ended: look now (a poll's 304 changes nothing).
                (shared.stop, std::mem::take(&mut shared.applied))
            };
            if stop {
                self.publish_status(s, true)?;
                s.publish(&self.topics.presence, b"offline", true)?;
                return Ok(Ended::Stopped);
            }
            if now || checked.elapsed() >= CHECK_EVERY {
                checked = Instant::now();
                self.publish_status(s, false)?;
            }
        }
    }

    /// A message on a `cmd` topic: ring the serve loop, or log it (bounded).
    fn doorbell(&mut self, msg: &Publish) {
        // A retained `apply` would ring at every reconnect: only live ones count.
        if msg.retain {
            return self.junk.say(
                &msg.topic,
                "a retained message (publish doorbells without retain)",
                &msg.payload,
            );
        }
        match parse_doorbell(&msg.payload) {
            Ok(Doorbell::Apply { version }) => {
                let mut shared = lock(&self.link);
                shared.wanted = shared.wanted.max(version.unwrap_or(0));
                drop(shared);
                // SAFETY: signalling our own process; SIGUSR1 is blocked in
                // every thread and taken by the serve loop's sigtimedwait.
                unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
            }
            Err(why) => self.junk.say(&msg.topic, &why, &msg.payload),
        }
    }

    /// Publish the status when it changed (or `force`), or when the last one
    /// is an hour old.
    fn publish_status(&mut self, s: &mut Session, force: bool) -> Result<(), MqttFailure> {
        let (paths, error) = {
            let shared = lock(&self.link);
            (shared.paths.clone(), shared.error.clone())
        };
        let body = status_body(&self.device_id, &self.groups, &paths, error.as_deref());
        let stale = match &self.published {
            Some((last, at)) => *last != body || at.elapsed() >= HEARTBEAT,
            None => true,
        };
        if !(force || stale) {
            return Ok(());
        }
        let doc = with_time(&body, now_rfc3339());
        s.publish(&self.topics.status, doc.as_bytes(), true)?;
        self.published = Some((body, Instant::now()));
        Ok(())
    }
}

/// The wait before try `failures + 1` to reach the broker: 1 s doubling to
/// five minutes, plus up to half again, so a fleet whose broker restarts
/// does not reconnect in one burst.
fn backoff(failures: u32, random: u64) -> Duration {
    let base = Duration::from_secs(1u64 << failures.min(9)).min(BACKOFF_MAX);
    let span = u64::try_from(base.as_millis() / 2)
        .unwrap_or(u64::MAX)
        .max(1);
    base + Duration::from_millis(random % span)
}

/// Logs garbage from the broker: a line per kind of junk and minute at
/// most, each payload shown as at most 64 escaped bytes.
#[derive(Default)]
struct JunkLog {
    last: Option<Instant>,
    quiet: u64,
}

impl JunkLog {
    fn say(&mut self, topic: &str, why: &str, payload: &[u8]) {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            self.quiet += 1;
            return;
        }
        let more = match std::mem::take(&mut self.quiet) {
            0 => String::new(),
            n => format!(" ({n} more ignored in the last minute)"),
        };
        let topic: String = topic.chars().take(128).collect();
        eprintln!(
            "berth: broker: ignored on `{}`: {why}: \"{}\"{more}",
            Shown(topic.as_bytes()),
            Shown(payload)
        );
        self.last = Some(Instant::now());
    }
}

fn now_rfc3339() -> String {
    format_rfc3339(i64::try_from(rundir::now()).unwrap_or(0))
}

/// The status document without its time, so two can be compared.
#[derive(Serialize)]
struct StatusDoc<'a> {
    device: &'a str,
    berth: &'static str,
    bucket: u8,
    groups: &'a [String],
    /// The manifest running healthy (the last good state).
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<Revision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_apply: Option<ApplyDoc>,
    containers: Vec<ContainerDoc>,
    /// Why the last pass that fetched or applied a manifest failed: a
    /// refused signature or version, a container that cannot start.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Containers not listed to keep the document within its limit.
    #[serde(skip_serializing_if = "is_zero")]
    unlisted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct ApplyDoc {
    result: &'static str,
    #[serde(flatten)]
    revision: Revision,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    at: String,
}

#[derive(Serialize)]
struct ContainerDoc {
    name: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'static str>,
    restarts: u32,
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The status of the device now, as JSON without the `time` field.
pub fn status_body(
    device_id: &str,
    groups: &[String],
    paths: &Paths,
    error: Option<&str>,
) -> String {
    let history = History::new(&paths.store_root);
    let last_apply = history.last_apply().ok().flatten().map(|a| ApplyDoc {
        result: a.outcome.as_str(),
        revision: a.revision,
        reason: a.reason.map(|r| cut(&r, 256)),
        at: format_rfc3339(i64::try_from(a.at).unwrap_or(0)),
    });
    let manifest = history.last_good().ok().flatten().map(|g| g.revision);
    let mut containers: Vec<ContainerDoc> = super::status::all_rows_brief(&paths.run_root)
        .into_iter()
        .map(|r| ContainerDoc {
            name: cut(&r.name, 64),
            state: r.state,
            health: r.health.as_ref().map(|h| h.status.as_str()),
            restarts: r.restarts,
        })
        .collect();
    let unlisted = containers.len().saturating_sub(MAX_LISTED);
    containers.truncate(MAX_LISTED);
    let doc = StatusDoc {
        device: device_id,
        berth: env!("CARGO_PKG_VERSION"),
        bucket: crate::fleet::mqtt::bucket(device_id),
        groups: &groups[..groups.len().min(16)],
        manifest,
        last_apply,
        containers,
        error: error.map(|e| cut(e, 256)),
        unlisted,
    };
    serde_json::to_string(&doc).unwrap_or_else(|_| "{}".into())
}

/// `body` with `"time"` added first.
fn with_time(body: &str, time: String) -> String {
    match body.strip_prefix('{') {
        Some(rest) => format!("{{\"time\":\"{time}\",{rest}"),
        None => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_of_a_device() {
        let t = Topics::new("isp/", "rtr1", &["lab".into(), "b10".into()]);
        assert_eq!(t.status, "isp/rtr1/status");
        assert_eq!(t.presence, "isp/rtr1/presence");
        assert_eq!(
            t.cmd,
            ["isp/rtr1/cmd", "isp/lab/cmd", "isp/b10/cmd", "isp/all/cmd"]
        );
    }

    #[test]
    fn backoff_doubles_to_five_minutes_with_jitter() {
        assert_eq!(backoff(0, 0), Duration::from_secs(1));
        assert_eq!(backoff(3, 0), Duration::from_secs(8));
        assert_eq!(backoff(30, 0), BACKOFF_MAX);
        assert!(backoff(30, u64::MAX) < BACKOFF_MAX * 3 / 2);
        assert!(backoff(2, 1999) > Duration::from_secs(4));
    }

    #[test]
    fn the_status_of_an_empty_device_is_small_json() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths {
            store_root: d.path().join("store"),
            run_root: d.path().join("run"),
        };
        let body = status_body("rtr1", &["lab".into()], &paths, None);
        let doc = with_time(&body, "2026-12-02T00:00:00Z".into());
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["device"], "rtr1");
        assert_eq!(v["time"], "2026-12-02T00:00:00Z");
        assert_eq!(v["bucket"], crate::fleet::mqtt::bucket("rtr1"));
        assert_eq!(v["containers"], serde_json::json!([]));
        assert!(v.get("last_apply").is_none());
        assert!(doc.len() < 300, "{doc}");
    }

    #[test]
    fn the_status_stays_within_its_limit() {
        // The most a device can say: 64 containers listed with the longest
        // names, a reason of control bytes (escaped to six each), 16 groups.
        let worst = StatusDoc {
            device: &"d".repeat(64),
            berth: env!("CARGO_PKG_VERSION"),
            bucket: 99,
            groups: &vec!["g".repeat(64); 16],
            manifest: Some(Revision {
                sha256: "f".repeat(64),
                version: Some(u64::MAX),
            }),
            last_apply: Some(ApplyDoc {
                result: "rolled-back",
                revision: Revision {
                    sha256: "f".repeat(64),
                    version: Some(u64::MAX),
                },
                reason: Some(cut(&"\u{1}".repeat(4096), 256)),
                at: "2026-12-02T00:00:00Z".into(),
            }),
            containers: (0..MAX_LISTED)
                .map(|_| ContainerDoc {
                    name: "n".repeat(64),
                    state: "running (no monitor)",
                    health: Some("unhealthy"),
                    restarts: u32::MAX,
                })
                .collect(),
            error: Some(cut(&"\u{1}".repeat(4096), 256)),
            unlisted: usize::MAX,
        };
        let body = serde_json::to_string(&worst).unwrap();
        let doc = with_time(&body, "2026-12-02T00:00:00Z".into());
        assert!(doc.len() <= MAX_STATUS, "{} bytes", doc.len());
        assert_eq!(cut("é", 1), "");
    }
}
