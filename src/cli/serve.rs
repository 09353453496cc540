//! `berth apply --serve`: berth as the main process of its procd, systemd or
//! sysvinit service. It applies the manifest, then waits: SIGHUP (procd's
//! reload, `systemctl reload`) or the --interval timer applies again; SIGTERM or
//! SIGINT stops every container, dependents first, and exits.
//!
//! A failed pass is reported and the service stays up: the next signal or tick
//! tries again, and the containers that did start keep running. Containers
//! outlive a crash of this process (their monitors are separate), and the
//! restarted service converges without touching them.

use std::path::PathBuf;
use std::time::Duration;

use super::apply::{apply, local_host, runtime_dir, store_root};
use super::error::{bail, Context, Result};
use super::{load_manifest, Global, ManifestArgs};
use crate::host::records::RecordStore;
use crate::host::Host;
use crate::model::Desired;
use crate::plan::start_order;

/// Apply, then serve signals until SIGTERM or SIGINT.
pub fn serve(
    global: &Global,
    args: &ManifestArgs,
    prune: bool,
    interval: Option<u64>,
) -> Result<()> {
    let signals = block_signals().context("block SIGHUP, SIGTERM and SIGINT")?;
    loop {
        if let Err(e) = apply(global, args, prune) {
            eprintln!("berth: {e:#}");
        }
        let sig = wait(&signals, interval.map(Duration::from_secs));
        match sig {
            Some(libc::SIGTERM) | Some(libc::SIGINT) => return stop_all(global, args),
            // SIGHUP or the interval: apply again.
            _ => eprintln!("berth: applying {} again", args.display_name()),
        }
    }
}

/// Stop every container the state store knows, dependents first.
fn stop_all(global: &Global, args: &ManifestArgs) -> Result<()> {
    // The manifest says where the store is; if it cannot be read now, the
    // command line and defaults still do.
    let desired = load_manifest(args)
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
                let ts = libc::timespec {
                    // Capped at a year: fits a 32-bit time_t.
                    tv_sec: t.as_secs().min(31_536_000).try_into().unwrap_or_default(),
                    tv_nsec: 0,
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
