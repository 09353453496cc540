//! rtnetlink requests, without I/O: [`Request`] writes one request (the
//! nlmsghdr, a family header such as ifinfomsg, and 4-byte aligned
//! attributes, nested ones included), plus the constants and the error type
//! shared with reply.rs, which reads the kernel's answers. link.rs and
//! addr.rs choose what goes in; netlink.rs moves the bytes. Netlink is host byte order (big-endian on MIPS routers), so
//! every integer goes through `to_ne_bytes`/`from_ne_bytes`.

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Length of `struct nlattr`, the header before every attribute value.
pub(super) const NLA_HDRLEN: usize = 4;
/// Length of `struct ifinfomsg`.
pub const IFINFOMSG_LEN: usize = 16;
/// Length of `struct ifaddrmsg`.
pub const IFADDRMSG_LEN: usize = 8;

/// Narrows a libc `c_int` constant at compile time (the assert fails the
/// build if a constant ever does not fit).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) const fn u16_of(v: libc::c_int) -> u16 {
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

/// Native-endian bytes, for tests that write expected layouts by hand
/// from the uapi headers (never from this module's own output).
#[cfg(test)]
pub(super) mod ne {
    /// A u16 as the kernel lays it out on this host.
    pub fn h16(v: u16) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }
    /// A u32 as the kernel lays it out on this host.
    pub fn h32(v: u32) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::net::codec::ne::{h16, h32};

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

    /// A whole request written out byte by byte for each byte order, not
    /// through `to_ne_bytes` as the helpers of the other tests are: on
    /// big-endian MIPS every length, type, flag and index must come out high
    /// byte first (the kernel reads them as host-order integers), and the
    /// helpers themselves must agree with that.
    #[test]
    fn literal_bytes_in_this_hosts_byte_order() {
        let mut req = Request::new(libc::RTM_NEWLINK, &ifinfomsg(0x0102_0304, 1, 1));
        req.attr_u16(IFLA_VLAN_ID, 0x0a0b);
        let bytes = req
            .encode(NLM_F_REQUEST | NLM_F_ACK, 0x0506_0708)
            .expect("encode");
        #[rustfmt::skip]
        let big: [u8; 40] = [
            0, 0, 0, 40,  0, 16,  0, 5,  5, 6, 7, 8,  0, 0, 0, 0, // nlmsghdr
            0, 0, 0, 0,  1, 2, 3, 4,  0, 0, 0, 1,  0, 0, 0, 1, // ifinfomsg
            0, 6,  0, 1,  0x0a, 0x0b,  0, 0, // IFLA_VLAN_ID, padded
        ];
        #[rustfmt::skip]
        let little: [u8; 40] = [
            40, 0, 0, 0,  16, 0,  5, 0,  8, 7, 6, 5,  0, 0, 0, 0,
            0, 0, 0, 0,  4, 3, 2, 1,  1, 0, 0, 0,  1, 0, 0, 0,
            6, 0,  1, 0,  0x0b, 0x0a,  0, 0,
        ];
        let expected = if cfg!(target_endian = "big") {
            big
        } else {
            little
        };
        assert_eq!(bytes, expected);
        assert_eq!(h32(0x0102_0304), expected[20..24]);
        assert_eq!(h16(0x0a0b), expected[36..38]);
    }
}
