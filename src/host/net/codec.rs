//! rtnetlink byte layout, without I/O. [`Request`] writes one request (the
//! nlmsghdr, a family header such as ifinfomsg, and 4-byte aligned
//! attributes, nested ones included); [`parse_datagram`] walks one datagram
//! of kernel replies (acks, errors with their extended-ack text, multipart
//! dumps up to NLMSG_DONE) and [`attrs`] splits a reply's attributes. link.rs
//! and addr.rs choose what goes in and what is read back; netlink.rs moves
//! the bytes. Netlink is host byte order (big-endian on MIPS routers), so
//! every integer goes through `to_ne_bytes`/`from_ne_bytes`.

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Length of `struct nlattr`, the header before every attribute value.
const NLA_HDRLEN: usize = 4;
/// Length of `struct ifinfomsg`.
pub const IFINFOMSG_LEN: usize = 16;
/// Length of `struct ifaddrmsg`.
pub const IFADDRMSG_LEN: usize = 8;

/// Narrows a libc `c_int` constant at compile time (the assert fails the
/// build if a constant ever does not fit).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const fn u16_of(v: libc::c_int) -> u16 {
    assert!(v >= 0 && v <= 0xffff);
    v as u16
}

/// Same as [`u16_of`] for the one-byte fields (address families).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const fn u8_of(v: libc::c_int) -> u8 {
    assert!(v >= 0 && v <= 0xff);
    v as u8
}

/// nlmsg_flags: a request.
pub const NLM_F_REQUEST: u16 = u16_of(libc::NLM_F_REQUEST);
/// nlmsg_flags: ask for an ack.
pub const NLM_F_ACK: u16 = u16_of(libc::NLM_F_ACK);
/// nlmsg_flags: create the object if missing.
pub const NLM_F_CREATE: u16 = u16_of(libc::NLM_F_CREATE);
/// nlmsg_flags: fail with EEXIST if the object exists.
pub const NLM_F_EXCL: u16 = u16_of(libc::NLM_F_EXCL);
/// nlmsg_flags: dump every object.
pub const NLM_F_DUMP: u16 = u16_of(libc::NLM_F_DUMP);
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

/// AF_INET as the one-byte family of ifaddrmsg / rtmsg.
pub const AF_INET: u8 = u8_of(libc::AF_INET);
/// AF_INET6 as the one-byte family of ifaddrmsg / rtmsg.
pub const AF_INET6: u8 = u8_of(libc::AF_INET6);
/// IFF_UP in ifinfomsg's flags and change mask.
pub const IFF_UP: u32 = 0x1;
const _: () = assert!(libc::IFF_UP == 0x1);

// Kernel constants the libc crate does not carry (uapi headers named).
/// `IFLA_VLAN_ID` inside a vlan's IFLA_INFO_DATA (if_link.h).
pub const IFLA_VLAN_ID: u16 = 1;
/// `IFLA_MACVLAN_MODE` inside a macvlan's IFLA_INFO_DATA (if_link.h).
pub const IFLA_MACVLAN_MODE: u16 = 1;
/// `IFLA_IPVLAN_MODE` inside an ipvlan's IFLA_INFO_DATA (if_link.h).
pub const IFLA_IPVLAN_MODE: u16 = 1;
/// `VETH_INFO_PEER` inside a veth's IFLA_INFO_DATA (veth.h).
pub const VETH_INFO_PEER: u16 = 1;
/// `NETNSA_NSID` of RTM_GETNSID (net_namespace.h).
pub const NETNSA_NSID: u16 = 1;
/// `NLMSGERR_ATTR_MSG`: the extended ack's text (netlink.h).
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Rounds up to the 4-byte netlink alignment (NLMSG_ALIGN / NLA_ALIGN).
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Why bytes could not be encoded or a reply could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// A reply ends inside a header or an attribute.
    #[error("parse netlink reply: truncated `{what}`")]
    Truncated {
        /// The structure that was cut short.
        what: &'static str,
    },
    /// An attribute or message is too long for its length field.
    #[error("encode netlink request: attribute `{kind}` is too long")]
    TooLong {
        /// The attribute type (0 for the whole message).
        kind: u16,
    },
    /// The kernel answered with an error.
    #[error("kernel error {errno}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kernel {
        /// The positive errno.
        errno: i32,
        /// The extended ack's text (NLMSGERR_ATTR_MSG), when sent.
        message: Option<String>,
    },
}

/// One rtnetlink request under construction: the message type plus
/// everything after the nlmsghdr. [`Request::encode`] adds the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    kind: u16,
    body: Vec<u8>,
    /// Set when an attribute did not fit its u16 length: encode refuses.
    too_long: Option<u16>,
}

/// An open nested attribute: the offset of its header in the body.
#[must_use = "a nest must be closed with Request::end_nest"]
pub struct Nest {
    start: usize,
    kind: u16,
}

impl Request {
    /// Starts a request of type `kind` (RTM_*) with its family header.
    pub fn new(kind: u16, header: &[u8]) -> Request {
        let mut req = Request {
            kind,
            body: Vec::with_capacity(128),
            too_long: None,
        };
        req.raw(header);
        req
    }

    /// The message type (RTM_*).
    pub fn kind(&self) -> u16 {
        self.kind
    }

    /// Everything after the nlmsghdr: the family header and the attributes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Appends raw bytes padded to 4 (a header nested inside an attribute,
    /// such as the veth peer's ifinfomsg).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.body.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.body.resize(align(self.body.len()), 0);
    }

    /// Appends one attribute: nlattr header, value, zero padding to 4.
    pub fn attr(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(NLA_HDRLEN + value.len()).unwrap_or_else(|_| {
            self.too_long = Some(kind);
            0
        });
        self.body.extend_from_slice(&len.to_ne_bytes());
        self.body.extend_from_slice(&kind.to_ne_bytes());
        self.body.extend_from_slice(value);
        self.pad();
        self
    }

    /// Appends a u32 attribute.
    pub fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// Appends a u16 attribute.
    pub fn attr_u16(&mut self, kind: u16, value: u16) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// Appends a NUL-terminated string attribute (IFLA_IFNAME, IFLA_IFALIAS).
    pub fn attr_str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes)
    }

    /// Opens a nested attribute; what is appended until [`Request::end_nest`]
    /// goes inside it. No NLA_F_NESTED flag: the link-info nests berth uses
    /// predate strict validation and the kernel accepts them either way.
    pub fn begin_nest(&mut self, kind: u16) -> Nest {
        let start = self.body.len();
        self.body.extend_from_slice(&[0; NLA_HDRLEN]);
        self.body[start + 2..start + 4].copy_from_slice(&kind.to_ne_bytes());
        Nest { start, kind }
    }

    /// Closes a nest: its length covers everything appended since it opened.
    pub fn end_nest(&mut self, nest: Nest) -> &mut Self {
        let len = u16::try_from(self.body.len() - nest.start).unwrap_or_else(|_| {
            self.too_long = Some(nest.kind);
            0
        });
        self.body[nest.start..nest.start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The whole message: nlmsghdr (length, type, `flags`, `seq`, port id 0
    /// so the kernel fills in ours) then the body.
    pub fn encode(&self, flags: u16, seq: u32) -> Result<Vec<u8>, CodecError> {
        if let Some(kind) = self.too_long {
            return Err(CodecError::TooLong { kind });
        }
        let len = u32::try_from(NLMSG_HDRLEN + self.body.len())
            .map_err(|_| CodecError::TooLong { kind: 0 })?;
        let mut out = Vec::with_capacity(NLMSG_HDRLEN + self.body.len());
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&self.body);
        Ok(out)
    }
}

/// `struct ifinfomsg` for AF_UNSPEC: link `index` (0 for none), `flags`
/// and the `change` mask saying which flags to apply.
pub fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut h = [0u8; IFINFOMSG_LEN];
    // ifi_family (u8), pad (u8), ifi_type (u16) stay 0.
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct ifaddrmsg`: family, prefix length, flags 0, scope 0 (universe),
/// link index.
pub fn ifaddrmsg(family: u8, prefix: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let mut h = [0u8; IFADDRMSG_LEN];
    h[0] = family;
    h[1] = prefix;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h
}

/// `struct rtmsg`, field by field as in rtnetlink.h.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtMsg {
    /// rtm_family.
    pub family: u8,
    /// rtm_dst_len: destination prefix length.
    pub dst_len: u8,
    /// rtm_table (RT_TABLE_MAIN).
    pub table: u8,
    /// rtm_protocol (RTPROT_STATIC).
    pub protocol: u8,
    /// rtm_scope.
    pub scope: u8,
    /// rtm_type (RTN_UNICAST).
    pub kind: u8,
}

impl RtMsg {
    /// The 12 header bytes (src_len, tos and flags are 0).
    pub fn bytes(&self) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = self.family;
        h[1] = self.dst_len;
        h[4] = self.table;
        h[5] = self.protocol;
        h[6] = self.scope;
        h[7] = self.kind;
        h
    }
}

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

    /// Native-endian bytes of a u16 / u32, to write expected layouts by hand.
    fn h16(v: u16) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }
    fn h32(v: u32) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }

    #[test]
    fn encode_writes_header_attrs_and_padding() {
        let mut req = Request::new(libc::RTM_SETLINK, &ifinfomsg(7, 0, 0));
        req.attr_str(libc::IFLA_IFNAME, "eth0")
            .attr_u32(libc::IFLA_MTU, 1400);
        let bytes = req.encode(NLM_F_REQUEST | NLM_F_ACK, 42).expect("encode");
        // nlmsghdr 16 + ifinfomsg 16 + IFNAME (4+5 -> 12) + MTU (4+4 = 8) = 52
        let expected = [
            h32(52),
            h16(19), // RTM_SETLINK
            h16(0x1 | 0x4),
            h32(42),
            h32(0),
            vec![0, 0],
            h16(0),
            h32(7),
            h32(0),
            h32(0),
            h16(9),
            h16(3), // IFLA_IFNAME
            b"eth0\0".to_vec(),
            vec![0, 0, 0],
            h16(8),
            h16(4), // IFLA_MTU
            h32(1400),
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn nests_cover_their_children() {
        let mut req = Request::new(libc::RTM_NEWLINK, &[]);
        let info = req.begin_nest(libc::IFLA_LINKINFO);
        req.attr(libc::IFLA_INFO_KIND, b"vlan");
        let data = req.begin_nest(libc::IFLA_INFO_DATA);
        req.attr_u16(IFLA_VLAN_ID, 10);
        req.end_nest(data);
        req.end_nest(info);
        let expected = [
            h16(4 + 8 + 12),
            h16(18), // IFLA_LINKINFO
            h16(8),
            h16(1), // IFLA_INFO_KIND
            b"vlan".to_vec(),
            h16(4 + 8),
            h16(2), // IFLA_INFO_DATA
            h16(6),
            h16(1), // IFLA_VLAN_ID
            h16(10),
            vec![0, 0],
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
    }

    #[test]
    fn too_long_attribute_is_refused() {
        let mut req = Request::new(libc::RTM_SETLINK, &ifinfomsg(1, 0, 0));
        req.attr(libc::IFLA_IFALIAS, &vec![b'x'; 70_000]);
        assert_eq!(
            req.encode(NLM_F_REQUEST, 1),
            Err(CodecError::TooLong {
                kind: libc::IFLA_IFALIAS
            })
        );
    }

    #[test]
    fn headers_match_the_uapi_structs() {
        assert_eq!(
            ifinfomsg(3, IFF_UP, IFF_UP).to_vec(),
            [vec![0, 0], h16(0), h32(3), h32(1), h32(1)].concat()
        );
        assert_eq!(
            ifaddrmsg(10, 64, 9).to_vec(),
            [vec![10, 64, 0, 0], h32(9)].concat()
        );
        let rt = RtMsg {
            family: 2,
            dst_len: 24,
            table: 254,
            protocol: 4,
            scope: 253,
            kind: 1,
        };
        assert_eq!(rt.bytes(), [2, 24, 0, 0, 254, 4, 253, 1, 0, 0, 0, 0]);
    }

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
}
