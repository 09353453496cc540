//! `berth status [NAME] [--json]`: what runs, from the state files and /proc
//! (truthful even when a monitor died): state, pid, uptime, restarts, last exit.

use std::path::Path;
use std::process::ExitCode;

use super::args::{Cmd, Opt, Parsed, Pos};
use super::error::{bail, Result};
use super::UsageError;
use serde::Serialize;

use super::context::Ctx;
use crate::fleet::time::format_rfc3339;
use crate::host::cgroup::CgroupStats;
use crate::host::history::{History, LastApply, Outcome, Revision};
use crate::host::runtime::health::{HealthState, HealthStatus};
use crate::host::runtime::rundir::{self, ContainerState};
use crate::host::runtime::{ExitInfo, Status};

/// `berth status`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::optional("NAME", "Only this container")],
    opts: &[Opt::flag("json", "Print JSON")],
    ..Cmd::new(
        "status",
        "Show container status: state, pid, uptime, restarts, last exit",
    )
};

/// Arguments of `berth status`.
#[derive(Debug)]
pub struct StatusArgs {
    /// Only this container
    pub name: Option<String>,
    /// Print JSON
    pub json: bool,
}

impl StatusArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            name: p.arg(0)?,
            json: p.has("json"),
        })
    }
}

/// One row of `status` and `ls`.
#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub state: &'static str,
    pub pid: Option<i32>,
    pub supervised: bool,
    pub uptime_secs: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<ExitInfo>,
    pub error: Option<String>,
    /// Addresses live in the container's network namespace (loopback left out).
    pub addresses: Vec<String>,
    /// The health check's verdict while it runs (containers with `health:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthState>,
    /// cgroup accounting: memory, CPU time, tasks, OOM kills.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<CgroupStats>,
}

/// The row of the container whose runtime dir is `dir`.
pub fn row(dir: &Path) -> Result<Option<Row>> {
    let (status, st) = rundir::status(dir)?;
    let Some(st) = st else { return Ok(None) };
    Ok(Some(make_row(&status, &st, true)))
}

/// Every container's row without its addresses (no netlink): what the
/// fleet status reads every few seconds. Unreadable ones are left out.
pub fn all_rows_brief(root: &Path) -> Vec<Row> {
    let mut rows: Vec<Row> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| match rundir::status(&e.path()) {
            Ok((status, Some(st))) => Some(make_row(&status, &st, false)),
            _ => None,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn make_row(status: &Status, st: &ContainerState, with_addresses: bool) -> Row {
    let (state, pid, supervised) = match status {
        Status::Missing => ("missing", None, false),
        Status::Running { pid, supervised } => (
            if *supervised {
                "running"
            } else {
                "running (no monitor)"
            },
            Some(*pid),
            *supervised,
        ),
        Status::Restarting => ("restarting", None, true),
        Status::Stopping { pid } => ("stopping", Some(*pid), true),
        Status::Stopped { exit: Some(_) } if st.phase == rundir::Phase::Exited => {
            ("exited", None, false)
        }
        Status::Stopped { .. } => ("stopped", None, false),
    };
    Row {
        name: st.name.clone(),
        state,
        pid,
        supervised,
        uptime_secs: pid
            .and(st.started_at)
            .map(|t| rundir::now().saturating_sub(t)),
        restarts: st.restarts,
        last_exit: st.last_exit,
        error: st.error.clone(),
        addresses: pid
            .filter(|_| with_addresses)
            .map(addresses)
            .unwrap_or_default(),
        health: st.health.clone().filter(|_| pid.is_some()),
        resources: None,
    }
}

fn addresses(pid: i32) -> Vec<String> {
    let Ok(pid) = u32::try_from(pid) else {
        return Vec::new();
    };
    crate::host::net::observe(crate::host::net::NetnsRef::Pid(pid))
        .map(|ifaces| {
            ifaces
                .iter()
                .flat_map(|i| i.addresses.iter().map(move |a| format!("{}={a}", i.name)))
                .collect()
        })
        .unwrap_or_default()
}

/// Every container under the runtime root, sorted by name.
pub fn all_rows(root: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(rows);
    };
    for e in entries.flatten() {
        if let Some(r) = row(&e.path())? {
            rows.push(r);
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

fn uptime(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{}h", s / 3600),
    }
}

/// Print rows as a table.
pub fn print_table(rows: &[Row]) -> Result<()> {
    outln!(
        "{:<20} {:<20} {:>7} {:>7} {:>8} {:>9}  ADDRESSES",
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST-EXIT"
    )?;
    for r in rows {
        let pid = r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let exit = r
            .last_exit
            .map(|e| e.code.to_string())
            .unwrap_or_else(|| "-".into());
        let addrs = if r.addresses.is_empty() {
            "-".to_string()
        } else {
            r.addresses.join(",")
        };
        let state = match &r.health {
            Some(h) => format!("{} ({})", r.state, h.status.as_str()),
            None => r.state.to_string(),
        };
        outln!(
            "{:<20} {:<20} {:>7} {:>7} {:>8} {:>9}  {addrs}",
            r.name,
            state,
            pid,
            uptime(r.uptime_secs),
            r.restarts,
            exit
        )?;
        if let Some(err) = &r.error {
            outln!("  error: {err}")?;
        }
        if let Some(h) = &r.health {
            if let (Some(why), true) = (&h.last_failure, h.status != HealthStatus::Healthy) {
                outln!("  last failed check: {why}")?;
            }
        }
    }
    Ok(())
}

fn print_resources(rows: &[Row]) -> Result<()> {
    let mib =
        |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1}M", b as f64 / 1048576.0));
    let num = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    let with_stats: Vec<(&Row, &CgroupStats)> = rows
        .iter()
        .filter_map(|r| Some((r, r.resources.as_ref()?)))
        .collect();
    if with_stats.is_empty() {
        return Ok(());
    }
    outln!(
        "\n{:<20} {:>9} {:>9} {:>10} {:>5} {:>5}",
        "NAME",
        "MEM",
        "MEM-PEAK",
        "CPU",
        "PIDS",
        "OOM"
    )?;
    for (r, s) in with_stats {
        let cpu = s
            .cpu_usage_usec
            .map_or("-".to_string(), |u| format!("{:.2}s", u as f64 / 1e6));
        outln!(
            "{:<20} {:>9} {:>9} {:>10} {:>5} {:>5}",
            r.name,
            mib(s.memory_current),
            mib(s.memory_peak),
            cpu,
            num(s.pids_current),
            num(s.oom_kills)
        )?;
    }
    Ok(())
}

/// Print the status of one or every container.
pub fn run(ctx: &Ctx, args: &StatusArgs) -> Result<ExitCode> {
    let mut rows = match &args.name {
        Some(name) => match row(&ctx.dir(name))? {
            Some(r) => vec![r],
            None => bail!("no container `{name}` in `{}`", ctx.run_root.display()),
        },
        None => all_rows(&ctx.run_root)?,
    };
    if let Ok(cg) = ctx.cgroups() {
        for r in &mut rows {
            r.resources = cg.stats(&r.name).ok();
        }
    }
    // The last waited apply, from the store (`--root`, else the default).
    let history = History::new(&ctx.store_root());
    let last_apply = history.last_apply().unwrap_or_else(|e| {
        eprintln!("berth: {}", crate::host::chain(&e));
        None
    });
    let last_good = history.last_good().ok().flatten().map(|g| Good {
        revision: g.revision,
        at: g.at,
    });
    if args.json {
        let doc = StatusDoc {
            containers: &rows,
            last_apply: last_apply.as_ref(),
            last_good: last_good.as_ref(),
        };
        outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        print_table(&rows)?;
        print_resources(&rows)?;
        if let Some(last) = &last_apply {
            print_last_apply(last, last_good.as_ref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `status --json`.
#[derive(Serialize)]
struct StatusDoc<'a> {
    containers: &'a [Row],
    /// How the last waited apply ended.
    last_apply: Option<&'a LastApply>,
    /// What a failed update would roll back to.
    last_good: Option<&'a Good>,
}

/// The last good state, without its desired state.
#[derive(Serialize)]
struct Good {
    revision: Revision,
    at: u64,
}

fn print_last_apply(last: &LastApply, good: Option<&Good>) -> Result<()> {
    let when = format_rfc3339(i64::try_from(last.at).unwrap_or(0));
    let (outcome, rev) = (last.outcome.as_str(), &last.revision);
    let line = match (&last.rolled_back_to, last.outcome) {
        (Some(to), Outcome::Refused) => {
            format!("{outcome} {rev} (rolled back to {to} at {when})")
        }
        (Some(to), _) => format!("{outcome} {rev} to {to} at {when}"),
        (None, _) => format!("{outcome} {rev} at {when}"),
    };
    outln!("\nlast apply: {line}")?;
    if let Some(why) = &last.reason {
        outln!("  reason: {why}")?;
    }
    if let Some(g) = good {
        outln!("  last good: {}", g.revision)?;
    }
    Ok(())
}
