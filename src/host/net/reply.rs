//! rtnetlink replies, without I/O: [`parse_datagram`] walks one datagram
//! of kernel answers (acks, errors with their extended-ack text, multipart
//! dumps up to NLMSG_DONE) and [`attrs`] splits a reply's attributes. The
//! request side is codec.rs; netlink.rs feeds the received bytes here, and
//! link.rs / addr.rs read only the attributes berth uses. Host byte order.

use super::codec::{
    align, u16_of, CodecError, IFADDRMSG_LEN, IFINFOMSG_LEN, NLA_HDRLEN, NLMSG_HDRLEN,
};

/// nlmsg_flags of an error reply: the echoed request was cut to its header.
const NLM_F_CAPPED: u16 = u16_of(libc::NLM_F_CAPPED);
/// nlmsg_flags of an error reply: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = u16_of(libc::NLM_F_ACK_TLVS);
const NLMSG_ERROR: u16 = u16_of(libc::NLMSG_ERROR);
const NLMSG_DONE: u16 = u16_of(libc::NLMSG_DONE);
/// Types below this are netlink control messages (noop, overrun), not data.
const NLMSG_MIN_TYPE: u16 = u16_of(libc::NLMSG_MIN_TYPE);
/// The attribute type without its nested / byte-order flag bits.
const NLA_TYPE_MASK: u16 = !(u16_of(libc::NLA_F_NESTED) | u16_of(libc::NLA_F_NET_BYTEORDER));
/// `NLMSGERR_ATTR_MSG`: the extended ack's text (netlink.h).
const NLMSGERR_ATTR_MSG: u16 = 1;

/// The fields berth reads from a reply's ifinfomsg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfInfo {
    /// ifi_index.
    pub index: u32,
    /// ifi_flags (IFF_*).
    pub flags: u32,
}

/// Reads the ifinfomsg at the start of an RTM_NEWLINK body.
pub fn parse_ifinfomsg(body: &[u8]) -> Result<IfInfo, CodecError> {
    let h = body
        .get(..IFINFOMSG_LEN)
        .ok_or(CodecError::Truncated { what: "ifinfomsg" })?;
    Ok(IfInfo {
        index: ne_u32(&h[4..8]),
        flags: ne_u32(&h[8..12]),
    })
}

/// The fields berth reads from a reply's ifaddrmsg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// ifa_family.
    pub family: u8,
    /// ifa_prefixlen.
    pub prefix: u8,
    /// ifa_index.
    pub index: u32,
}

/// Reads the ifaddrmsg at the start of an RTM_NEWADDR body.
pub fn parse_ifaddrmsg(body: &[u8]) -> Result<IfAddr, CodecError> {
    let h = body
        .get(..IFADDRMSG_LEN)
        .ok_or(CodecError::Truncated { what: "ifaddrmsg" })?;
    Ok(IfAddr {
        family: h[0],
        prefix: h[1],
        index: ne_u32(&h[4..8]),
    })
}

/// `b` must be 4 bytes long (callers slice it so).
fn ne_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_ne_bytes(a)
}

/// One attribute of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The type, without the nested / byte-order flag bits.
    pub kind: u16,
    /// The value, without padding.
    pub value: &'a [u8],
}

impl Attr<'_> {
    /// The value as a u32, if it has at least 4 bytes.
    pub fn u32(&self) -> Option<u32> {
        self.value.get(..4).map(ne_u32)
    }

    /// The value as an i32 (IFLA_LINK_NETNSID).
    pub fn i32(&self) -> Option<i32> {
        self.u32().map(|v| i32::from_ne_bytes(v.to_ne_bytes()))
    }

    /// The value as a string, up to its first NUL (the kernel terminates
    /// IFLA_IFNAME and IFLA_INFO_KIND; IFLA_IFALIAS may come either way).
    pub fn string(&self) -> String {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        String::from_utf8_lossy(&self.value[..end]).into_owned()
    }
}

/// Splits a run of attributes (a reply body after its family header, or
/// a nested attribute's value). A length that runs past the end is an error;
/// fewer than 4 trailing bytes are padding.
pub fn attrs(bytes: &[u8]) -> Result<Vec<Attr<'_>>, CodecError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + NLA_HDRLEN <= bytes.len() {
        let len = usize::from(u16::from_ne_bytes([bytes[offset], bytes[offset + 1]]));
        let kind = u16::from_ne_bytes([bytes[offset + 2], bytes[offset + 3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || offset + len > bytes.len() {
            return Err(CodecError::Truncated { what: "attribute" });
        }
        out.push(Attr {
            kind,
            value: &bytes[offset + NLA_HDRLEN..offset + len],
        });
        offset += align(len);
    }
    Ok(out)
}

/// One data message of a reply (RTM_NEWLINK, RTM_NEWADDR, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// nlmsg_type.
    pub kind: u16,
    /// Everything after the nlmsghdr.
    pub body: &'a [u8],
}

/// Whether a request's answer is complete after one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More datagrams follow (a dump without its NLMSG_DONE yet).
    More,
    /// Ack, NLMSG_DONE, or the single reply of a get.
    Done,
}

/// Walks the messages of one datagram for request `seq`: an ack ends it,
/// an error ends it with the errno (and ext-ack text), NLMSG_DONE ends a
/// dump; data messages go to `on_msg`, and one that returns true (a plain
/// get, which has no trailer) ends it after this datagram. Replies to other
/// sequence numbers (late answers to an earlier request) are skipped.
pub fn parse_datagram(
    bytes: &[u8],
    seq: u32,
    on_msg: &mut impl FnMut(Reply<'_>) -> bool,
) -> Result<Step, CodecError> {
    let mut step = Step::More;
    let mut offset = 0;
    while offset + NLMSG_HDRLEN <= bytes.len() {
        let rest = &bytes[offset..];
        let msg_len = usize::try_from(ne_u32(&rest[0..4])).unwrap_or(usize::MAX);
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let msg_seq = ne_u32(&rest[8..12]);
        if msg_len < NLMSG_HDRLEN || msg_len > rest.len() {
            return Err(CodecError::Truncated { what: "nlmsghdr" });
        }
        // Messages are 4-byte aligned inside one datagram.
        offset = offset.saturating_add(align(msg_len));
        if msg_seq != seq {
            continue;
        }
        let body = &rest[NLMSG_HDRLEN..msg_len];
        match kind {
            NLMSG_ERROR => return parse_error(body, flags).map(|()| Step::Done),
            NLMSG_DONE => {
                // A dump that failed half-way carries the errno here.
                return match body
                    .get(..4)
                    .map(|b| i32::from_ne_bytes(ne_u32(b).to_ne_bytes()))
                {
                    Some(code) if code < 0 => Err(CodecError::Kernel {
                        errno: code.saturating_abs(),
                        message: None,
                    }),
                    _ => Ok(Step::Done),
                };
            }
            k if k < NLMSG_MIN_TYPE => {} // NLMSG_NOOP / NLMSG_OVERRUN
            _ => {
                if on_msg(Reply { kind, body }) {
                    step = Step::Done;
                }
            }
        }
    }
    Ok(step)
}

/// `struct nlmsgerr`: the i32 error (0 for an ack), the echoed request's
/// header (and its payload unless NLM_F_CAPPED), then with NLM_F_ACK_TLVS
/// the extended-ack attributes.
fn parse_error(body: &[u8], flags: u16) -> Result<(), CodecError> {
    let head = body
        .get(..4 + NLMSG_HDRLEN)
        .ok_or(CodecError::Truncated { what: "nlmsgerr" })?;
    let code = i32::from_ne_bytes(ne_u32(&head[0..4]).to_ne_bytes());
    if code == 0 {
        return Ok(());
    }
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let mut tlv_start = 4 + NLMSG_HDRLEN;
        if flags & NLM_F_CAPPED == 0 {
            // The whole request was echoed: its length is in its own header.
            let echoed = usize::try_from(ne_u32(&head[4..8])).unwrap_or(usize::MAX);
            tlv_start = align(4usize.saturating_add(echoed));
        }
        // Ext-ack text is a nicety: garbage there must not hide the errno.
        let tlvs = body.get(tlv_start..).and_then(|t| attrs(t).ok());
        message = tlvs
            .unwrap_or_default()
            .iter()
            .find(|a| a.kind == NLMSGERR_ATTR_MSG)
            .map(|a| a.string());
    }
    Err(CodecError::Kernel {
        errno: code.saturating_abs(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::net::codec::ne::{h16, h32};

    /// A kernel message by hand: nlmsghdr then body, padded to 4.
    fn msg(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(16 + body.len()).expect("small");
        let mut out = [
            h32(len),
            h16(kind),
            h16(flags),
            h32(seq),
            h32(1234),
            body.to_vec(),
        ]
        .concat();
        out.resize(align(out.len()), 0);
        out
    }

    fn link_body(index: u32, name: &str) -> Vec<u8> {
        let mut name = name.as_bytes().to_vec();
        name.push(0);
        let len = u16::try_from(4 + name.len()).expect("small");
        let mut b = [
            vec![0, 0],
            h16(1),
            h32(index),
            h32(0),
            h32(0),
            h16(len),
            h16(3),
            name,
        ]
        .concat();
        b.resize(align(b.len()), 0);
        b
    }

    fn names(bytes: &[u8], seq: u32, out: &mut Vec<String>) -> Result<Step, CodecError> {
        parse_datagram(bytes, seq, &mut |r: Reply<'_>| {
            assert_eq!(r.kind, libc::RTM_NEWLINK);
            let a = attrs(&r.body[16..]).expect("attrs");
            out.extend(
                a.iter()
                    .filter(|a| a.kind == libc::IFLA_IFNAME)
                    .map(|a| a.string()),
            );
            false
        })
    }

    #[test]
    fn ack_is_done() {
        let ack = msg(2, 0x100, 5, &[h32(0), vec![0; 16]].concat());
        let mut never = |_: Reply<'_>| panic!("no data expected");
        assert_eq!(parse_datagram(&ack, 5, &mut never), Ok(Step::Done));
    }

    #[test]
    fn error_carries_errno_and_ext_ack_text() {
        // Capped error (NLM_F_CAPPED | NLM_F_ACK_TLVS): errno, echoed header, TLVs.
        let text = b"Unknown device type\0";
        let tlv = [h16(4 + 20), h16(1), text.to_vec()].concat();
        let body = [h32((-libc::EOPNOTSUPP) as u32), vec![0; 16], tlv].concat();
        let err = msg(2, 0x100 | 0x200, 8, &body);
        let mut never = |_: Reply<'_>| panic!("no data expected");
        assert_eq!(
            parse_datagram(&err, 8, &mut never),
            Err(CodecError::Kernel {
                errno: libc::EOPNOTSUPP,
                message: Some("Unknown device type".into())
            })
        );
        // Uncapped: the whole 20-byte request is echoed before the TLVs.
        let echoed = [h32(20), h16(16), h16(5), h32(8), h32(0), vec![9; 4]].concat();
        let tlv = [h16(4 + 4), h16(1), b"bad\0".to_vec()].concat();
        let body = [h32((-libc::EINVAL) as u32), echoed, tlv].concat();
        let err = msg(2, 0x200, 8, &body);
        assert_eq!(
            parse_datagram(&err, 8, &mut never),
            Err(CodecError::Kernel {
                errno: libc::EINVAL,
                message: Some("bad".into())
            })
        );
        // Without the TLV flag: errno only.
        let body = [h32((-libc::EEXIST) as u32), vec![0; 16]].concat();
        let err = msg(2, 0x100, 8, &body);
        assert_eq!(
            parse_datagram(&err, 8, &mut never),
            Err(CodecError::Kernel {
                errno: libc::EEXIST,
                message: None
            })
        );
    }

    #[test]
    fn dump_collects_until_done_and_skips_other_requests() {
        let mut got = Vec::new();
        let stale_error = msg(2, 0, 3, &[h32((-1i32) as u32), vec![0; 16]].concat());
        let first = [
            stale_error,
            msg(16, 2, 4, &link_body(1, "lo")),
            msg(16, 2, 4, &link_body(2, "eth0")),
        ]
        .concat();
        assert_eq!(names(&first, 4, &mut got), Ok(Step::More));
        let last = [msg(16, 2, 4, &link_body(3, "br0")), msg(3, 2, 4, &h32(0))].concat();
        assert_eq!(names(&last, 4, &mut got), Ok(Step::Done));
        assert_eq!(got, ["lo", "eth0", "br0"]);
    }

    #[test]
    fn failed_dump_reports_the_errno_in_done() {
        let done = msg(3, 2, 4, &h32((-libc::EINTR) as u32));
        let mut got = Vec::new();
        assert_eq!(
            names(&done, 4, &mut got),
            Err(CodecError::Kernel {
                errno: libc::EINTR,
                message: None
            })
        );
    }

    #[test]
    fn single_get_ends_after_its_reply() {
        let reply = msg(16, 0, 9, &link_body(4, "x"));
        let mut index = None;
        let step = parse_datagram(&reply, 9, &mut |r: Reply<'_>| {
            index = parse_ifinfomsg(r.body).ok().map(|h| h.index);
            true
        });
        assert_eq!(step, Ok(Step::Done));
        assert_eq!(index, Some(4));
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let good = msg(16, 2, 1, &link_body(1, "eth0"));
        let mut any = |_: Reply<'_>| false;
        for cut in 17..good.len() {
            // Header claims more than there is.
            assert!(
                parse_datagram(&good[..cut], 1, &mut any).is_err(),
                "cut {cut}"
            );
        }
        // Length below the header size.
        let bad = [h32(4), h16(16), h16(0), h32(1), h32(0)].concat();
        assert!(parse_datagram(&bad, 1, &mut any).is_err());
        // A short error message.
        let short = msg(2, 0, 1, &h32(0));
        assert_eq!(
            parse_datagram(&short, 1, &mut any),
            Err(CodecError::Truncated { what: "nlmsgerr" })
        );
        // Attributes whose length runs past the end, or is below 4.
        assert!(attrs(&[h16(12), h16(3), b"ab".to_vec()].concat()).is_err());
        assert!(attrs(&[h16(2), h16(3)].concat()).is_err());
        assert!(parse_ifinfomsg(&[0; 15]).is_err());
        assert!(parse_ifaddrmsg(&[0; 7]).is_err());
        // Random bytes: whatever they say, no panic.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_ne_bytes()[0]
                })
                .collect();
            let _ = parse_datagram(&bytes, 0, &mut any);
            let _ = attrs(&bytes);
        }
    }

    #[test]
    fn attribute_values_read_back() {
        let bytes = [
            h16(8),
            h16(0x8000 | 18), // nested flag is masked off
            h32(5),
            h16(10),
            h16(1),
            b"veth\0\0".to_vec(),
            vec![0, 0],
        ]
        .concat();
        let a = attrs(&bytes).expect("attrs");
        assert_eq!(a[0].kind, 18);
        assert_eq!(a[0].u32(), Some(5));
        assert_eq!(a[1].string(), "veth");
        assert_eq!(
            Attr {
                kind: 0,
                value: &[1, 2]
            }
            .u32(),
            None
        );
    }

    /// A kernel error reply written byte by byte for each byte order (not
    /// through the `h16`/`h32` helpers): the errno is a negative host-order
    /// i32, so on big-endian MIPS -ENODEV (-19) is ff ff ff ed.
    #[test]
    fn literal_error_reply_in_this_hosts_byte_order() {
        #[rustfmt::skip]
        let big: [u8; 36] = [
            0, 0, 0, 36,  0, 2,  1, 0,  0, 0, 0, 9,  0, 0, 4, 0xd2, // NLMSG_ERROR, NLM_F_CAPPED
            0xff, 0xff, 0xff, 0xed, // -ENODEV
            0, 0, 0, 16,  0, 16,  0, 5,  0, 0, 0, 9,  0, 0, 0, 0, // the request's header
        ];
        #[rustfmt::skip]
        let little: [u8; 36] = [
            36, 0, 0, 0,  2, 0,  0, 1,  9, 0, 0, 0,  0xd2, 4, 0, 0,
            0xed, 0xff, 0xff, 0xff,
            16, 0, 0, 0,  16, 0,  5, 0,  9, 0, 0, 0,  0, 0, 0, 0,
        ];
        let bytes = if cfg!(target_endian = "big") {
            big
        } else {
            little
        };
        let mut never = |_: Reply<'_>| panic!("no data expected");
        match parse_datagram(&bytes, 9, &mut never) {
            Err(CodecError::Kernel { errno, .. }) => assert_eq!(errno, libc::ENODEV),
            other => panic!("not ENODEV: {other:?}"),
        }
    }
}
