//! The one place that talks rtnetlink: the other net modules build
//! `RouteNetlinkMessage`s as plain data and hand them to a [`Netlink`] handle,
//! which sends them, reads the ack or error, and collects dump replies.
//!
//! A handle lives in one network namespace: the one its socket was created in.
//! [`Netlink::open_in`] creates the socket on a short-lived helper thread that
//! `setns`es into the target namespace first; the socket keeps that namespace
//! for its whole life, so the calling thread never changes namespace.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Receive buffer size: a dump of a few hundred links fits several times over.
const RECV_BUF: usize = 64 * 1024;

/// A synchronous rtnetlink socket bound to one network namespace.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Extended acks give the kernel's text for EINVAL; harmless where unsupported.
        let _ = socket.set_ext_ack(true);
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
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
        use std::os::fd::AsFd;
        Netlink::open_in(file.as_fd())
    }

    /// Sends a request that changes something and waits for the kernel's ack.
    pub fn request(&mut self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.request_flags(msg, NLM_F_REQUEST | NLM_F_ACK)
    }

    /// Sends a create request (`NLM_F_CREATE | NLM_F_EXCL`): fails with
    /// EEXIST instead of silently changing an existing object.
    pub fn create(&mut self, msg: RouteNetlinkMessage) -> io::Result<()> {
        self.request_flags(msg, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Sends a get request for one object and returns the reply.
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<RouteNetlinkMessage> {
        let seq = self.send(msg, NLM_F_REQUEST)?;
        let mut reply = None;
        self.read_replies(seq, |m| {
            reply = Some(m);
            true
        })?;
        reply.ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Sends a dump request and returns every reply message.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.read_replies(seq, |m| {
            out.push(m);
            false
        })?;
        Ok(out)
    }

    fn request_flags(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let seq = self.send(msg, flags)?;
        self.read_replies(seq, |_| false)
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;
        Ok(self.seq)
    }

    /// Reads until the ack, error or end of dump for `seq`. `on_msg` gets every
    /// data message and returns true when it needs no more (single get).
    fn read_replies(
        &mut self,
        seq: u32,
        mut on_msg: impl FnMut(RouteNetlinkMessage) -> bool,
    ) -> io::Result<()> {
        loop {
            let len = self.socket.recv(&mut &mut self.buf[..], 0)?;
            if parse_datagram(&self.buf[..len], seq, &mut on_msg)? == Step::Done {
                return Ok(());
            }
        }
    }
}

/// Whether a request's answer is complete after one datagram.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    Done,
}

/// Walks the messages of one datagram for request `seq`: an ack ends it,
/// an error ends it with the errno, NLMSG_DONE ends a dump; data messages go
/// to `on_msg`, and one that returns true (a plain get, which has no
/// trailer) ends it after this datagram. Replies to other requests are skipped.
fn parse_datagram(
    bytes: &[u8],
    seq: u32,
    on_msg: &mut impl FnMut(RouteNetlinkMessage) -> bool,
) -> io::Result<Step> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut step = Step::More;
    let mut offset = 0;
    while offset + 16 <= bytes.len() {
        let rest = &bytes[offset..];
        // nlmsghdr: u32 length, u16 type, u16 flags, u32 seq (host byte order).
        let msg_len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let msg_seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let msg_len = usize::try_from(msg_len).map_err(|_| bad("netlink length"))?;
        if msg_len < 16 || msg_len > rest.len() {
            return Err(bad("truncated netlink message"));
        }
        // Netlink messages are 4-byte aligned inside one datagram.
        offset += (msg_len + 3) & !3;
        if msg_seq != seq {
            continue; // a late reply to an earlier request: not even parsed
        }
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..msg_len])
            .map_err(|e| bad(&e.to_string()))?;
        match msg.payload {
            NetlinkPayload::Error(err) => {
                return match err.code {
                    None => Ok(Step::Done),
                    Some(code) => Err(io::Error::from_raw_os_error(code.get().abs())),
                };
            }
            NetlinkPayload::Done(_) => return Ok(Step::Done),
            NetlinkPayload::InnerMessage(inner) => {
                let enough = on_msg(inner);
                step = if enough { Step::Done } else { step };
            }
            _ => {}
        }
    }
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage};
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    use std::num::NonZeroI32;

    fn datagram(parts: Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)>) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, payload) in parts {
            let mut header = NetlinkHeader::default();
            header.sequence_number = seq;
            let mut msg = NetlinkMessage::new(header, payload);
            msg.finalize();
            let mut bytes = vec![0; msg.buffer_len()];
            msg.serialize(&mut bytes);
            while bytes.len() % 4 != 0 {
                bytes.push(0);
            }
            out.extend(bytes);
        }
        out
    }

    fn link(name: &str) -> NetlinkPayload<RouteNetlinkMessage> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m))
    }

    fn error(code: i32) -> NetlinkPayload<RouteNetlinkMessage> {
        let mut e = ErrorMessage::default();
        e.code = NonZeroI32::new(code);
        NetlinkPayload::Error(e)
    }

    #[test]
    fn ack_and_error() {
        let mut never = |_| panic!("no data expected");
        assert_eq!(
            parse_datagram(&datagram(vec![(7, error(0))]), 7, &mut never).ok(),
            Some(Step::Done)
        );
        let err = parse_datagram(&datagram(vec![(7, error(-libc::EEXIST))]), 7, &mut never)
            .expect_err("errno");
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    }

    #[test]
    fn dump_collects_until_done_and_skips_other_requests() {
        let mut names = Vec::new();
        let mut collect = |m: RouteNetlinkMessage| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                names.extend(l.attributes.into_iter().filter_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }));
            }
            false
        };
        let first = datagram(vec![(3, error(-1)), (4, link("lo")), (4, link("eth0"))]);
        assert_eq!(
            parse_datagram(&first, 4, &mut collect).ok(),
            Some(Step::More)
        );
        let last = datagram(vec![
            (4, link("br0")),
            (4, NetlinkPayload::Done(DoneMessage::default())),
        ]);
        assert_eq!(
            parse_datagram(&last, 4, &mut collect).ok(),
            Some(Step::Done)
        );
        assert_eq!(names, ["lo", "eth0", "br0"]);
    }

    #[test]
    fn single_get_ends_after_its_reply() {
        let mut one = |_| true;
        assert_eq!(
            parse_datagram(&datagram(vec![(9, link("x"))]), 9, &mut one).ok(),
            Some(Step::Done)
        );
    }

    #[test]
    fn truncated_datagram_is_an_error() {
        let mut bytes = datagram(vec![(1, link("x"))]);
        bytes.truncate(bytes.len() - 8);
        let mut any = |_| false;
        assert!(parse_datagram(&bytes, 1, &mut any).is_err());
    }
}
