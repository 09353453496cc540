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
        let mut have_single = false;
        loop {
            let len = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < len {
                let bytes = &self.buf[offset..len];
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let msg_len = usize::try_from(msg.header.length)
                    .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
                if msg_len == 0 {
                    return Err(io::Error::from(io::ErrorKind::InvalidData));
                }
                // Netlink messages are 4-byte aligned inside one datagram.
                offset += (msg_len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue; // a late reply to an earlier request
                }
                match msg.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(()),
                            Some(code) => Err(io::Error::from_raw_os_error(code.get().abs())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(inner) => have_single |= on_msg(inner),
                    _ => {}
                }
            }
            // A plain get (no ACK flag) answers with one message and no trailer.
            if have_single {
                return Ok(());
            }
        }
    }
}
