//! The one place that talks rtnetlink: the other net modules build
//! [`Request`]s as plain data (codec.rs lays out the bytes, reply.rs
//! reads the answers) and hand them to
//! a [`Netlink`] handle, which sends them, reads the ack or error, and
//! collects dump replies.
//!
//! A handle lives in one network namespace: the one its socket was created in.
//! [`Netlink::open_in`] creates the socket on a short-lived helper thread that
//! `setns`es into the target namespace first; the socket keeps that namespace
//! for its whole life, so the calling thread never changes namespace.

use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::codec::{self, CodecError, Request};
use super::reply::{self, Reply, Step};

/// Receive buffer size: a dump of a few hundred links fits several times
/// over (the kernel fills dump datagrams up to 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// How long a reply may take (SO_RCVTIMEO). The kernel answers rtnetlink
/// requests in microseconds, or in a few hundred milliseconds under rtnl
/// lock contention; a socket silent for 5 s is wedged (a lost reply, a
/// stuck driver holding rtnl), and without a limit `apply` would hang on
/// it forever, holding its lock.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// One reply message, copied out of the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// nlmsg_type (RTM_NEWLINK, RTM_NEWADDR, ...).
    pub kind: u16,
    /// Everything after the nlmsghdr: family header and attributes.
    pub body: Vec<u8>,
}

/// A synchronous rtnetlink socket bound to one network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// The receive timeout set on `fd`, for the error message.
    timeout: Duration,
}

/// A netlink socket address: port `pid` (0: the kernel, or "assign one" in bind).
fn sockaddr(pid: u32) -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain integers; all-zero is a valid value and
    // fills its private padding field, which cannot be named.
    let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
    addr.nl_family = libc::sa_family_t::try_from(libc::AF_NETLINK).unwrap_or_default();
    addr.nl_pid = pid;
    addr
}

/// `-1` from a libc call becomes the thread's errno.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain syscall with constant arguments; the result is checked.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let addr = sockaddr(0);
        let len = libc::socklen_t::try_from(mem::size_of::<libc::sockaddr_nl>())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let ptr = (&addr as *const libc::sockaddr_nl).cast::<libc::sockaddr>();
        // SAFETY: `ptr` points to a live sockaddr_nl of `len` bytes. Port 0
        // lets the kernel assign a unique port id; connect to port 0 (the
        // kernel) so recv only sees the kernel's messages.
        check(unsafe { libc::bind(fd.as_raw_fd(), ptr, len) })?;
        // SAFETY: as above.
        check(unsafe { libc::connect(fd.as_raw_fd(), ptr, len) })?;
        // Extended acks give the kernel's text for EINVAL; harmless where
        // unsupported (kernels before 4.12 answer ENOPROTOOPT).
        let one: libc::c_int = 1;
        let one_len = libc::socklen_t::try_from(mem::size_of::<libc::c_int>()).unwrap_or(4);
        // SAFETY: `one` is a live c_int of `one_len` bytes; the result is ignored.
        let _ = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_EXT_ACK,
                (&one as *const libc::c_int).cast(),
                one_len,
            )
        };
        let nl = Netlink {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
            timeout: REPLY_TIMEOUT,
        };
        nl.set_timeout(REPLY_TIMEOUT)?;
        Ok(nl)
    }

    /// Sets the receive timeout: the longest a reply may take.
    // time_t and suseconds_t are 32 bits on some targets (mips, armv7
    // before musl 1.2): the conversions can fail there.
    #[allow(clippy::unnecessary_fallible_conversions, clippy::useless_conversion)]
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            // Capped at a day: fits a 32-bit time_t.
            tv_sec: timeout.as_secs().min(86_400).try_into().unwrap_or_default(),
            tv_usec: timeout.subsec_micros().try_into().unwrap_or_default(),
        };
        let len = libc::socklen_t::try_from(mem::size_of::<libc::timeval>())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `tv` is a live timeval of `len` bytes; the result is checked.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                len,
            )
        })?;
        Ok(())
    }

    /// Opens a socket inside the network namespace `ns` (an open
    /// `/proc/PID/ns/net` or any other netns fd).
    pub fn open_in(ns: BorrowedFd<'_>) -> io::Result<Self> {
        let raw = ns.as_raw_fd();
        // The helper thread setns()es and dies; only this thread's namespace
        // changes, and the socket it creates stays in the target namespace.
        let joined = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    // SAFETY: `raw` is a valid fd borrowed for the scope of this
                    // thread; setns only changes the calling (helper) thread.
                    if unsafe { libc::setns(raw, libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Netlink::open()
                })
                .join()
        });
        joined.unwrap_or_else(|_| Err(io::Error::other("netns helper thread panicked")))
    }

    /// Opens a socket inside the network namespace of process `pid`.
    pub fn open_pid(pid: u32) -> io::Result<Self> {
        let file = File::open(format!("/proc/{pid}/ns/net"))?;
        Netlink::open_in(file.as_fd())
    }

    /// Sends a request that changes something and waits for the kernel's ack.
    pub fn request(&mut self, req: Request) -> io::Result<()> {
        self.request_flags(&req, codec::NLM_F_REQUEST | codec::NLM_F_ACK)
    }

    /// Sends a create request (`NLM_F_CREATE | NLM_F_EXCL`): fails with
    /// EEXIST instead of silently changing an existing object.
    pub fn create(&mut self, req: Request) -> io::Result<()> {
        self.request_flags(
            &req,
            codec::NLM_F_REQUEST | codec::NLM_F_ACK | codec::NLM_F_CREATE | codec::NLM_F_EXCL,
        )
    }

    /// Sends a get request for one object and returns the reply.
    pub fn get(&mut self, req: Request) -> io::Result<Message> {
        let seq = self.send(&req, codec::NLM_F_REQUEST)?;
        let mut reply = None;
        self.read_replies(seq, |m| {
            reply = Some(m);
            true
        })?;
        reply.ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Sends a dump request and returns every reply message.
    pub fn dump(&mut self, req: Request) -> io::Result<Vec<Message>> {
        let seq = self.send(&req, codec::NLM_F_REQUEST | codec::NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.read_replies(seq, |m| {
            out.push(m);
            false
        })?;
        Ok(out)
    }

    fn request_flags(&mut self, req: &Request, flags: u16) -> io::Result<()> {
        let seq = self.send(req, flags)?;
        self.read_replies(seq, |_| false)
    }

    fn send(&mut self, req: &Request, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = req.encode(flags, self.seq).map_err(invalid)?;
        loop {
            // SAFETY: `bytes` is a live buffer of `bytes.len()` bytes.
            let sent =
                unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
            match usize::try_from(sent) {
                Ok(n) if n == bytes.len() => return Ok(self.seq),
                // A datagram goes whole or not at all; a short count is a bug.
                Ok(_) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Err(_) => {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// Reads until the ack, error or end of dump for `seq`. `on_msg` gets every
    /// data message and returns true when it needs no more (single get).
    fn read_replies(
        &mut self,
        seq: u32,
        mut on_msg: impl FnMut(Message) -> bool,
    ) -> io::Result<()> {
        loop {
            let len = self.recv()?;
            let mut copy = |r: Reply<'_>| {
                on_msg(Message {
                    kind: r.kind,
                    body: r.body.to_vec(),
                })
            };
            match reply::parse_datagram(&self.buf[..len], seq, &mut copy) {
                Ok(Step::Done) => return Ok(()),
                Ok(Step::More) => {}
                Err(CodecError::Kernel { errno, message }) => {
                    return Err(kernel_error(errno, message));
                }
                Err(e) => return Err(invalid(e)),
            }
        }
    }

    /// One datagram into the buffer; MSG_TRUNC makes the kernel report its
    /// real length so a reply too big for the buffer is an error, not a
    /// silently cut dump.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            // SAFETY: `self.buf` is a live, writable buffer of its length.
            let got = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            match usize::try_from(got) {
                Ok(n) if n > self.buf.len() => {
                    return Err(invalid(CodecError::Truncated {
                        what: "datagram larger than the receive buffer",
                    }))
                }
                Ok(n) => return Ok(n),
                Err(_) => {
                    let err = io::Error::last_os_error();
                    if err.kind() == io::ErrorKind::WouldBlock {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "netlink did not answer within {} s (the kernel's rtnetlink is wedged)",
                                self.timeout.as_secs_f32()
                            ),
                        ));
                    }
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(err);
                    }
                }
            }
        }
    }
}

/// A request the kernel refused: its errno and, when the kernel sent one, its
/// extended-ack text (e.g. "Unknown device type"), which says more than the
/// errno does.
#[derive(Debug)]
pub struct KernelError {
    pub errno: i32,
    pub message: Option<String>,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        match &self.message {
            Some(m) => write!(f, " (the kernel says: {m})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for KernelError {}

fn kernel_error(errno: i32, message: Option<String>) -> io::Error {
    match message {
        None => io::Error::from_raw_os_error(errno),
        Some(_) => io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            KernelError { errno, message },
        ),
    }
}

/// The errno of a netlink failure, whether or not the kernel added text.
pub fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error().or_else(|| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<KernelError>())
            .map(|k| k.errno)
    })
}

fn invalid(e: CodecError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that never answers (nothing was asked) fails after its
    /// receive timeout instead of blocking `apply` forever.
    #[test]
    fn a_silent_socket_times_out_with_a_clear_error() {
        let mut nl = Netlink::open().unwrap();
        nl.timeout = Duration::from_millis(200);
        nl.set_timeout(nl.timeout).unwrap();
        let start = std::time::Instant::now();
        let err = nl.read_replies(1, |_| true).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(3));
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            err.to_string()
                .starts_with("netlink did not answer within 0.2 s"),
            "{err}"
        );
    }
}
