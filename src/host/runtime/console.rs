//! A full-OS container's console: a pty from the host's /dev/ptmx whose
//! slave is the init's stdio and is bound on /dev/console inside (as LXC and
//! systemd-nspawn give one), so systemd and procd can say what they do. The
//! monitor copies what the container writes there into its log. Each start
//! gets a new pty: nothing a previous run set on it carries over.

use std::borrow::Cow;
use std::os::unix::io::RawFd;
use std::path::PathBuf;

use super::{spawn, RuntimeError};

/// The two ends of a container's console.
#[derive(Debug)]
pub struct Console {
    /// The monitor's end, nonblocking.
    pub master: RawFd,
    /// The container's end: its init's stdin, stdout and stderr.
    pub slave: RawFd,
    /// The slave's host path, bound on the container's /dev/console.
    pub path: PathBuf,
}

impl Console {
    /// A new pty; `owner` (the host ids of the container's root, with a user
    /// namespace) gets the slave, so that the init can open /dev/console.
    pub fn open(owner: Option<(u32, u32)>) -> Result<Console, RuntimeError> {
        let (master, slave, path) = super::join::open_pty()?;
        // Dropped (both fds closed) if a step below fails.
        let console = Console {
            master,
            slave,
            path,
        };
        // SAFETY: flag and owner calls on fds we own, a valid winsize.
        unsafe {
            let flags = libc::fcntl(master, libc::F_GETFL);
            if flags < 0 || libc::fcntl(master, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0 {
                return Err(RuntimeError::sys("make the console nonblocking"));
            }
            // A 0x0 window makes some programs print one column wide.
            let ws = libc::winsize {
                ws_row: 24,
                ws_col: 160,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
            if let Some((uid, gid)) = owner {
                if libc::fchown(slave, uid, gid) != 0 {
                    return Err(RuntimeError::sys(
                        "give the console to the container's root",
                    ));
                }
            }
        }
        Ok(console)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        spawn::close(self.master);
        spawn::close(self.slave);
    }
}

/// The host ids of the container's root when it has a user namespace: they
/// own its console and its cgroup tree.
pub fn root_ids(spec: &crate::model::Spec) -> Option<(u32, u32)> {
    let user = spec.namespaces.user.as_ref()?;
    let root = |maps: &[crate::model::IdMap]| {
        maps.iter()
            .find(|m| m.inside == 0 && m.count > 0)
            .map(|m| m.outside)
    };
    Some((root(&user.uid)?, root(&user.gid)?))
}

/// Console output as it goes into the log: without the carriage return the
/// terminal adds before every newline (ONLCR), nor any other.
pub fn strip_cr(data: &[u8]) -> Cow<'_, [u8]> {
    if data.contains(&b'\r') {
        Cow::Owned(data.iter().copied().filter(|&b| b != b'\r').collect())
    } else {
        Cow::Borrowed(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_returns_are_dropped() {
        assert_eq!(&*strip_cr(b"- init -\r\n"), b"- init -\n");
        assert_eq!(&*strip_cr(b"a\rb\r\r\n\n"), b"ab\n\n");
        assert!(matches!(strip_cr(b"plain\n"), Cow::Borrowed(_)));
    }

    /// The console is a terminal the container owns, and what the container
    /// writes on its end comes out at the monitor's.
    #[test]
    fn written_text_reaches_the_master() {
        let c = Console::open(None).expect("a pty from /dev/ptmx");
        // SAFETY: isatty/write/read on fds of the console and a valid buffer.
        unsafe {
            assert_eq!(libc::isatty(c.slave), 1);
            assert_eq!(libc::write(c.slave, b"up\n".as_ptr().cast(), 3), 3);
            let mut buf = [0u8; 16];
            let mut n = -1;
            for _ in 0..100 {
                n = libc::read(c.master, buf.as_mut_ptr().cast(), buf.len());
                if n > 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let n = usize::try_from(n).unwrap();
            assert_eq!(&*strip_cr(&buf[..n]), b"up\n");
        }
    }
}
