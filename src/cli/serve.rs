//! `berth apply --serve`: berth as the main process of its procd, systemd or
//! sysvinit service. It applies the manifest, then waits: SIGHUP (procd's
//! reload, `systemctl reload`) or the --interval timer applies again; SIGTERM or
//! SIGINT stops every container, dependents first, and exits.
//!
//! A failed pass is reported and the service stays up: the next signal or tick
//! tries again, and the containers that did start keep running. Containers
//! outlive a crash of this process (their monitors are separate), and the
//! restarted service converges without touching them.
//!
//! A URL manifest is polled with a conditional GET: the loop keeps the last
//! text and its validators in memory (never on flash), and a 304 after a pass
//! that worked costs one request and nothing else. The waits come from
//! [`Schedule`] (jitter, backoff while the origin fails), the log lines about
//! the origin from [`StateLog`].
//!
//! With `--mqtt`, a thread ([`broker`](super::broker)) keeps the device's
//! status on the fleet's broker and rings SIGUSR1 when an `apply` comes:
//! a pass like a poll's (a conditional fetch), skipped when the device
//! already runs the version the doorbell names.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::apply::{apply_target, local_host, runtime_dir, store_root, Target, Waiting};
use super::broker::{Agent, BrokerArgs, Paths};
use super::error::{bail, Context, Error, Result};
use super::schedule::{random_u64, Jitter, Schedule, StateLog};
use super::source::load_manifest_text;
use super::trust::Trust;
use super::{load_manifest, Global, ManifestArgs};
use crate::cli::context::{absolute, DEFAULT_ROOT};
use crate::host::records::RecordStore;
use crate::host::store::fetch::{self, Conditional, Validators};
use crate::host::trusted::{Kind, TrustStore};
use crate::host::Host;
use crate::model::Desired;
use crate::plan::start_order;

/// How `--serve` polls: `--interval`, `--jitter`, `--backoff-max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// Apply again every this many seconds; `None`: only on SIGHUP.
    pub interval: Option<u64>,
    /// How much later than the interval a poll may come.
    pub jitter: Jitter,
    /// The longest wait while the origin fails (`None`: the default).
    pub backoff_max: Option<Duration>,
}

/// Doorbell passes come at least this far apart: a flood of `apply`
/// messages costs the origin one conditional GET per this, not one each.
const DOORBELL_GAP: Duration = Duration::from_secs(2);

/// Apply, then serve signals until SIGTERM or SIGINT. Every pass waits for
/// what it started and rolls back what turns out unhealthy.
pub fn serve(
    global: &Global,
    args: &ManifestArgs,
    prune: bool,
    polling: &Polling,
    waiting: Waiting,
    broker: &BrokerArgs,
) -> Result<()> {
    let waiting = Waiting {
        wait: true,
        ..waiting
    };
    let signals = block_signals().context("block SIGHUP, SIGTERM, SIGINT and SIGUSR1")?;
    let schedule = polling
        .interval
        .map(|n| Schedule::new(Duration::from_secs(n), polling.jitter, polling.backoff_max));
    let url = args.source.starts_with("http://") || args.source.starts_with("https://");
    let mut origin = Origin {
        paths: paths_of(global, &Desired::default()),
        ..Origin::default()
    };
    let agent = start_agent(args, broker, &origin.paths)?;
    // The pass at start and after SIGHUP fetches unconditionally.
    let mut force = true;
    let mut last_error: Option<String> = None;
    // What the status says of the last pass that fetched or applied something.
    let mut reported: Option<String> = None;
    let mut last_doorbell: Option<Instant> = None;
    loop {
        origin.touched = false;
        let result = if url {
            origin.pass(global, args, prune, force, waiting)
        } else {
            origin.apply_file(global, args, prune, waiting)
        };
        // The same error pass after pass (a refused manifest, a container
        // that cannot start) is said once, until it changes or clears.
        let said = result.err().map(|e| format!("{e:#}"));
        if let Some(e) = said.as_ref().filter(|e| Some(*e) != last_error.as_ref()) {
            eprintln!("berth: {e}");
        }
        if said.is_some() || origin.touched {
            reported = said.clone();
        }
        last_error = said;
        if let Some(a) = &agent {
            a.applied(origin.paths.clone(), reported.clone());
        }
        let passed = Instant::now();
        let next = schedule.map(|s| passed + s.next(origin.log.failures(), random_u64()));
        let signal = loop {
            let left = next.map(|t| t.saturating_duration_since(Instant::now()));
            match wait(&signals, left) {
                // A doorbell: from the broker thread, or `kill -USR1`.
                Some(libc::SIGUSR1) => {
                    let wanted = agent.as_ref().map_or(0, Agent::take_wanted);
                    let running = accepted_version(global);
                    if wanted > 0 && running.is_some_and(|v| v >= wanted) {
                        continue;
                    }
                    if let Some(t) = last_doorbell {
                        std::thread::sleep(DOORBELL_GAP.saturating_sub(t.elapsed()));
                    }
                    last_doorbell = Some(Instant::now());
                    break Some(libc::SIGUSR1);
                }
                other => break other,
            }
        };
        match signal {
            Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                let stopped = stop_all(global, args, origin.last.map(|(text, _)| text));
                if let Some(a) = agent {
                    a.applied(origin.paths.clone(), reported);
                    a.stop();
                }
                return stopped;
            }
            Some(libc::SIGUSR1) => {
                force = false;
                eprintln!("berth: doorbell: applying {} again", args.display_name());
            }
            Some(_) => {
                force = true;
                eprintln!("berth: applying {} again", args.display_name());
            }
            None => {
                force = false;
                if !url {
                    eprintln!("berth: applying {} again", args.display_name());
                }
            }
        }
    }
}

/// Start the broker thread when `--mqtt` is given.
fn start_agent(args: &ManifestArgs, broker: &BrokerArgs, paths: &Paths) -> Result<Option<Agent>> {
    let Some(url) = &broker.url else {
        return Ok(None);
    };
    let device_id = args.identity.device_id();
    let topics = super::broker::Topics::new(&broker.prefix, &device_id, &args.identity.groups);
    let will = crate::fleet::mqtt::Will {
        topic: topics.presence,
        payload: b"offline".to_vec(),
        retain: true,
    };
    let ca = args.fetch.manifest_options().ca_bundle;
    let options = broker.options(url, &device_id, ca, Some(will))?;
    eprintln!("berth: fleet broker {url}, device id `{device_id}`");
    Ok(Some(Agent::start(
        options,
        device_id,
        args.identity.groups.clone(),
        broker.prefix.clone(),
        paths.clone(),
    )))
}

/// The version of the manifest the device accepted last, if signed.
fn accepted_version(global: &Global) -> Option<u64> {
    let root = absolute(global.root.clone().unwrap_or_else(|| DEFAULT_ROOT.into()));
    let doc = TrustStore::new(&root).load(Kind::Manifest).ok().flatten()?;
    Some(doc.accepted.version)
}

/// The store and runtime dirs of an apply of `desired`.
fn paths_of(global: &Global, desired: &Desired) -> Paths {
    Paths {
        store_root: store_root(global, desired),
        run_root: runtime_dir(global, desired),
    }
}

/// What the loop remembers of a URL manifest between passes.
#[derive(Default)]
struct Origin {
    /// The last text fetched and its validators.
    last: Option<(String, Validators)>,
    /// The last pass applied without an error.
    applied: bool,
    log: StateLog,
    /// Where the last pass applied to.
    paths: Paths,
    /// This pass applied a manifest or refused one.
    touched: bool,
}

impl Origin {
    /// One pass: fetch (conditionally unless `force`), then apply what
    /// changed, or again what failed last time. A fetch error is the
    /// origin's (it counts for the backoff and is printed once per change,
    /// here); an apply error is the pass's, returned to be printed. A
    /// forced pass (SIGHUP) applies the kept text when the fetch fails.
    fn pass(
        &mut self,
        global: &Global,
        args: &ManifestArgs,
        prune: bool,
        force: bool,
        waiting: Waiting,
    ) -> Result<()> {
        let since = match (&self.last, force) {
            (Some((_, v)), false) => v.clone(),
            _ => Validators::default(),
        };
        let opts = args.fetch.manifest_options();
        let max = u64::try_from(args.max_size).unwrap_or(u64::MAX);
        // Read each pass: the keys directory and the accepted key list.
        let trust = Trust::load(&args.trust)?;
        match fetch::fetch_text_if_changed(&args.source, &opts, max, &since) {
            Err(e) => {
                let e = Error::from(e).context("manifest");
                if let Some(line) = self.log.failed(&format!("{e:#}")) {
                    eprintln!("berth: {line}");
                }
                match (&self.last, &trust) {
                    // At start with the origin down: what the device accepted last.
                    (None, Some(t)) => match t.stored(&args.source, &e)? {
                        Some(text) => self.keep(text, Validators::default()),
                        None => return Ok(()),
                    },
                    (None, None) => return Ok(()),
                    (Some(_), _) if !force => return Ok(()),
                    (Some(_), _) => eprintln!("berth: applying the manifest fetched last"),
                }
            }
            Ok(Conditional::NotModified) => {
                self.note_success();
                if self.applied {
                    return Ok(());
                }
                eprintln!("berth: applying {} again", args.display_name());
            }
            Ok(Conditional::Changed { text, validators }) => {
                self.note_success();
                let checked = match &trust {
                    Some(t) => t.check_fetched(&args.source, text, &opts),
                    None => Ok(text),
                };
                match checked {
                    Ok(text) => self.keep(text, validators),
                    Err(refused) => {
                        let refused = refused.context("manifest");
                        let Some((_, kept)) = self.last.as_mut() else {
                            // At start: what the device accepted last.
                            let stored = match &trust {
                                Some(t) => t.stored(&args.source, &refused)?,
                                None => None,
                            };
                            let text = stored.ok_or(refused)?;
                            self.keep(text, validators);
                            return self.apply_kept(global, args, prune, waiting);
                        };
                        // Keep running what was accepted; poll the refused
                        // document's validators so it is not fetched again.
                        *kept = validators;
                        self.touched = true;
                        return Err(refused);
                    }
                }
            }
        }
        self.apply_kept(global, args, prune, waiting)
    }

    fn keep(&mut self, text: String, validators: Validators) {
        self.last = Some((text, validators));
    }

    /// Apply the kept text.
    fn apply_kept(
        &mut self,
        global: &Global,
        args: &ManifestArgs,
        prune: bool,
        waiting: Waiting,
    ) -> Result<()> {
        // Never an empty default: that would prune every container.
        let Some((text, _)) = &self.last else {
            return Ok(());
        };
        self.applied = false;
        let loaded = load_manifest_text(args, text.clone())?;
        let result = self.apply_loaded(global, args, prune, loaded, waiting);
        // Rolled back, refused or unhealthy: settled until the origin has a
        // newer manifest; trying it again on every poll changes nothing.
        self.applied = result.is_ok() || result.as_ref().is_err_and(super::apply::settled);
        result
    }

    /// A pass over a local manifest file.
    fn apply_file(
        &mut self,
        global: &Global,
        args: &ManifestArgs,
        prune: bool,
        waiting: Waiting,
    ) -> Result<()> {
        self.apply_loaded(global, args, prune, load_manifest(args)?, waiting)
    }

    /// Apply a loaded manifest, noting where it applies to.
    fn apply_loaded(
        &mut self,
        global: &Global,
        args: &ManifestArgs,
        prune: bool,
        loaded: crate::manifest::Loaded,
        waiting: Waiting,
    ) -> Result<()> {
        self.touched = true;
        let target = Target::of(global, args, loaded);
        self.paths = paths_of(global, &target.desired);
        apply_target(global, args, prune, target, waiting)
    }

    fn note_success(&mut self) {
        if let Some(line) = self.log.succeeded() {
            eprintln!("berth: {line}");
        }
    }
}

/// Stop every container the state store knows, dependents first. `kept`:
/// the URL manifest's last text, so a dead origin does not hold up the stop.
fn stop_all(global: &Global, args: &ManifestArgs, kept: Option<String>) -> Result<()> {
    // The manifest says where the store is; if it cannot be read now, the
    // command line and defaults still do.
    let loaded = match kept {
        Some(text) => load_manifest_text(args, text),
        None => load_manifest(args),
    };
    let desired = loaded
        .map(|l| l.desired)
        .unwrap_or_else(|_| Desired::default());
    let state = RecordStore::new(store_root(global, &desired));
    let records = state.load()?;
    let running = Desired {
        containers: records
            .iter()
            .map(|(n, r)| (n.clone(), r.spec.clone()))
            .collect(),
        settings: desired.settings.clone(),
        ..Desired::default()
    };
    let mut host = local_host(global, &running)?;
    let mut failed = 0;
    for name in start_order(&running).iter().rev() {
        match host.stop(name) {
            // The supervisor goes on whether or not anyone reads its stdout.
            Ok(()) => {
                let _ = outln!("! stop {name}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("berth: stop `{name}`: {}", crate::host::chain(&e));
            }
        }
    }
    let dir: PathBuf = runtime_dir(global, &desired);
    if failed > 0 {
        bail!(
            "{failed} container(s) did not stop (runtime dir `{}`)",
            dir.display()
        );
    }
    Ok(())
}

/// Block the service signals so they queue for `wait` instead of killing us.
/// Threads started later (downloads) inherit the mask.
fn block_signals() -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to our own sigset; the signal numbers are valid.
    let rc = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(set)
}

/// The next service signal, or `None` when `timeout` passed first.
fn wait(set: &libc::sigset_t, timeout: Option<Duration>) -> Option<i32> {
    loop {
        let rc = match timeout {
            Some(t) => {
                // tv_nsec is an i32 on 32-bit targets: fallible there.
                #[allow(clippy::unnecessary_fallible_conversions)]
                let ts = libc::timespec {
                    // Capped at a year: fits a 32-bit time_t.
                    tv_sec: t.as_secs().min(31_536_000).try_into().unwrap_or_default(),
                    tv_nsec: t.subsec_nanos().try_into().unwrap_or_default(),
                };
                // SAFETY: valid set and timespec; no siginfo wanted.
                unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) }
            }
            // SAFETY: valid set; no siginfo wanted.
            None => unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) },
        };
        if rc > 0 {
            return Some(rc);
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if err == Some(libc::EAGAIN) {
            return None;
        }
        // EINTR from a stray signal: wait again.
    }
}
