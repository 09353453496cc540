//! One health probe, run by the monitor in a forked child so that the
//! monitor never blocks on it: a probe that hangs is killed (its whole
//! process group, the command inside the container too) at its timeout.
//!
//! - `exec`: the child enters the container as `berth exec` does (cgroups,
//!   namespaces, user, capabilities, seccomp, limits) and runs the command;
//! - `tcp` and `http`: the child joins only the container's network
//!   namespace, gives up root (uid and gid 65534), and connects to the port on
//!   the container's loopback; `http` sends a GET and reads the status line.
//!
//! The child's stdout and stderr come back through a pipe; the first
//! `health::MAX_OUTPUT` bytes are kept as the reason of a failure.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::health::MAX_OUTPUT;
use super::spawn::{self, ExitInfo};
use super::{join, RuntimeError};
use crate::model::{HttpProbe, Probe};

/// The unprivileged ids a network probe runs as.
const NOBODY: libc::uid_t = 65534;

/// A probe that runs.
#[derive(Debug)]
pub struct InFlight {
    /// The child, leader of its own process group.
    pub pid: i32,
    out: RawFd,
    output: Vec<u8>,
    deadline: Instant,
    timeout: Duration,
    timed_out: bool,
}

/// Start `probe` against the container of `run_dir`, whose init is `init_pid`.
pub fn start(
    probe: &Probe,
    run_dir: &Path,
    init_pid: i32,
    timeout: Duration,
) -> Result<InFlight, RuntimeError> {
    let (out_r, out_w) = spawn::pipe()?;
    // SAFETY: fork in the single-threaded monitor; the child only runs
    // `child`, which never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        spawn::close(out_r);
        spawn::close(out_w);
        return Err(RuntimeError::sys("fork a health probe"));
    }
    if pid == 0 {
        child(probe, run_dir, init_pid, out_w);
    }
    spawn::close(out_w);
    // Both sides set the group, so a kill at the timeout finds it whichever
    // runs first.
    // SAFETY: plain syscalls on our own child and descriptor.
    unsafe {
        libc::setpgid(pid, pid);
        libc::fcntl(out_r, libc::F_SETFL, libc::O_NONBLOCK);
    }
    Ok(InFlight {
        pid,
        out: out_r,
        output: Vec::new(),
        deadline: Instant::now() + timeout,
        timeout,
        timed_out: false,
    })
}

impl InFlight {
    /// The output pipe, to poll.
    pub fn fd(&self) -> RawFd {
        self.out
    }

    /// When the probe is killed.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Take what the probe wrote so far; beyond MAX_OUTPUT it is dropped,
    /// but still read, so the probe never blocks on a full pipe.
    pub fn read(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a valid buffer from our nonblocking pipe.
            let n = unsafe { libc::read(self.out, buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else { return };
            if n == 0 {
                return;
            }
            let room = MAX_OUTPUT.saturating_sub(self.output.len());
            self.output.extend_from_slice(&buf[..n.min(room)]);
        }
    }

    /// Kill the probe's process group: it ran past its timeout.
    pub fn kill(&mut self) {
        self.timed_out = true;
        // SAFETY: signalling our own child and its group.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
            libc::kill(self.pid, libc::SIGKILL);
        }
        // Nothing more is waited for after the timeout.
        self.deadline = Instant::now() + Duration::from_secs(3600);
    }

    /// The result once the child was reaped with `status`: none for a
    /// success, else why it failed, with its output.
    pub fn finish(mut self, status: libc::c_int) -> Option<String> {
        self.read();
        // Whatever is left of the group (a command that forked) goes too.
        // SAFETY: signalling the process group we made.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        let output = String::from_utf8_lossy(&self.output).trim().to_string();
        let exit = ExitInfo::from_wait(status);
        let why = if self.timed_out {
            format!("timed out after {} s", self.timeout.as_secs())
        } else if let Some(sig) = exit.signal {
            format!("killed by signal {sig}")
        } else if exit.code == 0 {
            return None;
        } else {
            format!("exit code {}", exit.code)
        };
        Some(if output.is_empty() {
            why
        } else {
            format!("{why}: {output}")
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        spawn::close(self.out);
    }
}

/// The probe child: never returns.
fn child(probe: &Probe, run_dir: &Path, init_pid: i32, out_w: RawFd) -> ! {
    // SAFETY: setting up our own process group, signal mask and stdio, on
    // descriptors we own.
    unsafe {
        libc::setpgid(0, 0);
        let mut none = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let null = libc::open(
            b"/dev/null\0".as_ptr().cast(),
            libc::O_RDWR | libc::O_CLOEXEC,
        );
        if null >= 0 {
            libc::dup2(null, 0);
        }
        libc::dup2(out_w, 1);
        libc::dup2(out_w, 2);
    }
    let code = match probe {
        Probe::Exec(argv) => match join::exec(run_dir, argv, false) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("{}", crate::host::chain(&e));
                match e {
                    RuntimeError::ExecFailed { code, .. } => code,
                    _ => 125,
                }
            }
        },
        Probe::Tcp(port) => report(connect(init_pid, *port).map(drop)),
        Probe::Http(http) => report(connect(init_pid, http.port).and_then(|s| get(s, http))),
    };
    let _ = std::io::stderr().flush();
    // SAFETY: ending the child without running the monitor's destructors.
    unsafe { libc::_exit(code) }
}

fn report(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(why) => {
            eprintln!("{why}");
            1
        }
    }
}

/// Join the network namespace of `init_pid`, drop root, connect to `port`
/// on its loopback.
fn connect(init_pid: i32, port: u16) -> Result<TcpStream, String> {
    let path = format!("/proc/{init_pid}/ns/net");
    let ns = fs::File::open(&path).map_err(|e| format!("open `{path}`: {e}"))?;
    // SAFETY: joining a namespace through an fd we opened, then dropping
    // every privilege; plain syscalls with valid arguments.
    unsafe {
        if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(format!(
                "join the container's network namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(NOBODY, NOBODY, NOBODY) != 0
            || libc::setresuid(NOBODY, NOBODY, NOBODY) != 0
        {
            return Err(format!("drop root: {}", std::io::Error::last_os_error()));
        }
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    drop(ns);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect(addr).map_err(|e| format!("connect to port {port}: {e}"))
}

/// `GET path` and check the status line.
fn get(mut s: TcpStream, http: &HttpProbe) -> Result<(), String> {
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: localhost:{}\r\nUser-Agent: berth-health\r\nConnection: close\r\n\r\n",
        http.path, http.port
    );
    let what = format!("GET {}", http.path);
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{what}: send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    // The status line is all that is read (at most 4 KiB of it).
    while !head.contains(&b'\n') && head.len() < 4096 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{what}: read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("").trim();
    let code = status_code(line).ok_or_else(|| {
        let shown: String = line.chars().take(80).collect();
        format!("{what}: not an HTTP answer: \"{shown}\"")
    })?;
    let good = match http.status {
        Some(want) => code == want,
        None => (200..400).contains(&code),
    };
    if good {
        Ok(())
    } else {
        Err(format!("{what}: {line}"))
    }
}

/// The code of an `HTTP/1.x NNN reason` status line.
fn status_code(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("HTTP/")?;
    let code = rest.split_whitespace().nth(1)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_code("HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(status_code("HTTP/1.1 204"), Some(204));
        assert_eq!(status_code("SSH-2.0-dropbear"), None);
        assert_eq!(status_code("HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code("HTTP/1.1 +20 OK"), None);
        assert_eq!(status_code(""), None);
    }
}
