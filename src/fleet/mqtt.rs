//! MQTT 3.1.1 (OASIS standard, 2014) as a fleet device and the operator's
//! view speak it: the client's side of CONNECT, PUBLISH at QoS 0 and 1,
//! SUBSCRIBE and PINGREQ, and the broker's packets they get back. Pure
//! bytes in and out; `host::mqtt` holds the connection.
//!
//! The decoder takes a buffer and a size limit: a packet whose declared
//! length is over the limit is an error before any of it is buffered, so a
//! hostile broker cannot make a device hold more than the limit.

use std::fmt;

/// The protocol level of MQTT 3.1.1.
const LEVEL: u8 = 4;

/// A malformed or unexpected packet, or one over the size limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    #[error("packet of {size} bytes is over the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    #[error("a client does not receive packet type {0}")]
    Unexpected(u8),
}

fn malformed(what: &'static str) -> MqttError {
    MqttError::Malformed { what }
}

/// Quality of service of a PUBLISH or a subscription (QoS 2 is never asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce = 0,
    AtLeastOnce = 1,
}

/// A message to publish, or one received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: Qos,
    pub retain: bool,
    /// Set for QoS 1.
    pub id: Option<u16>,
}

/// What CONNECT says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connect {
    pub client_id: String,
    pub keepalive_secs: u16,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// The Last Will: published by the broker when the connection is lost.
    pub will: Option<Will>,
}

/// A Last Will, always sent with QoS 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A packet a broker sends to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK: whether a session was kept, and the return code (0: accepted).
    ConnAck {
        session_present: bool,
        code: u8,
    },
    Publish(Publish),
    PubAck(u16),
    /// SUBACK: the granted QoS per topic filter, 0x80 for a refused one.
    SubAck {
        id: u16,
        granted: Vec<u8>,
    },
    PingResp,
}

/// Why a broker refused CONNECT, from CONNACK's return code.
pub fn connack_reason(code: u8) -> &'static str {
    match code {
        1 => "unacceptable protocol version",
        2 => "client identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "unknown return code",
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Callers bound every string to u16::MAX (`check_topic`, `encode_connect`).
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s[..usize::from(len)]);
}

/// A packet: fixed header byte, remaining length, then `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(first);
    let mut n = body.len();
    loop {
        let mut byte = u8::try_from(n % 128).unwrap_or_default();
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// The largest body the remaining-length field can state.
pub const MAX_BODY: usize = 268_435_455;

/// CONNECT, clean session.
pub fn encode_connect(c: &Connect) -> Vec<u8> {
    let mut flags = 0x02; // clean session
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(LEVEL);
    if let Some(w) = &c.will {
        flags |= 0x04 | (1 << 3); // will, QoS 1
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    body.push(flags);
    body.extend_from_slice(&c.keepalive_secs.to_be_bytes());
    put_str(&mut body, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        put_str(&mut body, w.topic.as_bytes());
        put_str(&mut body, &w.payload);
    }
    if let Some(u) = &c.username {
        put_str(&mut body, u.as_bytes());
    }
    if let Some(p) = &c.password {
        put_str(&mut body, p);
    }
    frame(0x10, &body)
}

/// PUBLISH.
pub fn encode_publish(p: &Publish) -> Vec<u8> {
    let mut first = 0x30 | ((p.qos as u8) << 1);
    if p.retain {
        first |= 0x01;
    }
    let mut body = Vec::with_capacity(p.topic.len() + p.payload.len() + 4);
    put_str(&mut body, p.topic.as_bytes());
    if let (Qos::AtLeastOnce, Some(id)) = (p.qos, p.id) {
        body.extend_from_slice(&id.to_be_bytes());
    }
    body.extend_from_slice(&p.payload);
    frame(first, &body)
}

/// PUBACK for a QoS 1 message received.
pub fn encode_puback(id: u16) -> Vec<u8> {
    frame(0x40, &id.to_be_bytes())
}

/// SUBSCRIBE to `filters`, each at QoS 1.
pub fn encode_subscribe(id: u16, filters: &[String]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    for f in filters {
        put_str(&mut body, f.as_bytes());
        body.push(Qos::AtLeastOnce as u8);
    }
    frame(0x82, &body)
}

pub fn encode_pingreq() -> Vec<u8> {
    vec![0xc0, 0]
}

pub fn encode_disconnect() -> Vec<u8> {
    vec![0xe0, 0]
}

/// Decode the first packet in `buf`: `Ok(None)` while it is incomplete,
/// else the packet and how many bytes it took. A packet longer than `max`
/// bytes is an error as soon as its length is known.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(Incoming, usize)>, MqttError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    // The remaining length: 1 to 4 bytes, 7 bits each.
    let mut len = 0usize;
    let mut at = 1;
    loop {
        let Some(&b) = buf.get(at) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7f) << (7 * (at - 1));
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at == 5 {
            return Err(malformed("remaining length"));
        }
    }
    let size = at + len;
    if size > max {
        return Err(MqttError::TooLarge { size, max });
    }
    let Some(body) = buf.get(at..size) else {
        return Ok(None);
    };
    let flags = first & 0x0f;
    let packet = match first >> 4 {
        2 => {
            let [ack, code] = body else {
                return Err(malformed("CONNACK"));
            };
            Incoming::ConnAck {
                session_present: ack & 1 == 1,
                code: *code,
            }
        }
        3 => Incoming::Publish(decode_publish(flags, body)?),
        4 => Incoming::PubAck(packet_id(body, "PUBACK")?),
        9 => {
            if body.len() < 3 {
                return Err(malformed("SUBACK"));
            }
            Incoming::SubAck {
                id: packet_id(&body[..2], "SUBACK")?,
                granted: body[2..].to_vec(),
            }
        }
        13 if body.is_empty() => Incoming::PingResp,
        13 => return Err(malformed("PINGRESP")),
        other => return Err(MqttError::Unexpected(other)),
    };
    Ok(Some((packet, size)))
}

fn packet_id(body: &[u8], what: &'static str) -> Result<u16, MqttError> {
    match body {
        [a, b] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(malformed(what)),
    }
}

fn decode_publish(flags: u8, body: &[u8]) -> Result<Publish, MqttError> {
    let qos = match (flags >> 1) & 3 {
        0 => Qos::AtMostOnce,
        1 => Qos::AtLeastOnce,
        // Never subscribed at QoS 2; 3 is reserved.
        _ => return Err(malformed("PUBLISH QoS")),
    };
    let tlen = match body {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => return Err(malformed("PUBLISH topic")),
    };
    let topic = body
        .get(2..2 + tlen)
        .and_then(|t| std::str::from_utf8(t).ok())
        .ok_or(malformed("PUBLISH topic"))?;
    let mut rest = &body[2 + tlen..];
    let id = match qos {
        Qos::AtMostOnce => None,
        Qos::AtLeastOnce => {
            let id = rest.get(..2).ok_or(malformed("PUBLISH packet id"))?;
            rest = &rest[2..];
            Some(u16::from_be_bytes([id[0], id[1]]))
        }
    };
    Ok(Publish {
        topic: topic.to_string(),
        payload: rest.to_vec(),
        qos,
        retain: flags & 1 == 1,
        id,
    })
}

/// The longest device id or group name: a topic level that fits a log line.
pub const MAX_NAME: usize = 64;

/// A device id or group name must be one topic level a subscription can name
/// exactly: letters, digits, `.`, `_`, `-`; no `/`, `+`, `#` or `$`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "{what} `{name}` must be 1 to {MAX_NAME} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{what} `{name}` has `{c}`: use only letters, digits, `.`, `_` and `-` \
             (it is one MQTT topic level; `/`, `+` and `#` would reach other devices' topics)"
        ));
    }
    Ok(())
}

/// A topic prefix: empty, or topic levels ending in `/`, with no wildcard.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > 128 {
        return Err(format!("topic prefix `{prefix}` is over 128 characters"));
    }
    if prefix.contains(['+', '#', '\0']) || prefix.starts_with('$') {
        return Err(format!(
            "topic prefix `{prefix}` has a wildcard (`+`, `#`), a NUL or a leading `$`"
        ));
    }
    if !prefix.is_empty() && !prefix.ends_with('/') {
        return Err(format!(
            "topic prefix `{prefix}` must end in `/`, e.g. `berth/`"
        ));
    }
    Ok(())
}

/// What a message on a `cmd` topic asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doorbell {
    /// `apply` or `apply VERSION`: fetch the manifest and apply it, unless
    /// the device already runs `VERSION` or newer.
    Apply { version: Option<u64> },
}

/// Parse a `cmd` message: `apply` or `apply VERSION`.
pub fn parse_doorbell(payload: &[u8]) -> Result<Doorbell, String> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| "not UTF-8".to_string())?
        .trim();
    let mut words = text.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("apply"), None, _) => Ok(Doorbell::Apply { version: None }),
        (Some("apply"), Some(v), None) => v
            .parse()
            .map(|v| Doorbell::Apply { version: Some(v) })
            .map_err(|_| format!("`{v}` is not a manifest version")),
        _ => Err("expected `apply` or `apply VERSION`".to_string()),
    }
}

/// A received payload for a log line: at most 64 bytes, escaped.
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self.0.len().min(64);
        for b in &self.0[..cut] {
            for c in std::ascii::escape_default(*b) {
                write!(f, "{}", char::from(c))?;
            }
        }
        if self.0.len() > cut {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// The device's rollout bucket, 0 to 99: the first four bytes of the
/// SHA-256 of its id, big-endian, modulo 100. Stable across berth versions
/// and architectures, so an operator can compute it off the device.
pub fn bucket(device_id: &str) -> u8 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(device_id.as_bytes());
    u8::try_from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 100).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Incoming {
        let (p, n) = decode(bytes, 1024).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        p
    }

    #[test]
    fn connect_bytes_match_the_standard() {
        let c = Connect {
            client_id: "d1".into(),
            keepalive_secs: 60,
            username: Some("u".into()),
            password: Some(b"p".to_vec()),
            will: Some(Will {
                topic: "t".into(),
                payload: b"offline".to_vec(),
                retain: true,
            }),
        };
        let b = encode_connect(&c);
        // 0x10, length, "MQTT", level 4, flags: user, password, will retain,
        // will QoS 1, will, clean session.
        assert_eq!(usize::from(b[1]), b.len() - 2);
        assert_eq!(b[0], 0x10);
        assert_eq!(&b[2..9], b"\0\x04MQTT\x04");
        assert_eq!(b[9], 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02);
        assert_eq!(&b[10..12], &[0, 60]);
        assert_eq!(&b[12..16], b"\0\x02d1");
        assert!(b.ends_with(b"\0\x01u\0\x01p"));
    }

    #[test]
    fn remaining_length_uses_up_to_four_bytes() {
        let p = Publish {
            topic: "a".into(),
            payload: vec![7; 200],
            qos: Qos::AtMostOnce,
            retain: false,
            id: None,
        };
        let b = encode_publish(&p);
        // 203 bytes of body: 0xcb 0x01.
        assert_eq!(&b[..3], &[0x30, 0xcb, 0x01]);
        let (back, n) = decode(&b, 1024).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert_eq!(back, Incoming::Publish(p));
        assert_eq!(frame(0x30, &vec![0; 16_384])[1..4], [0x80, 0x80, 0x01]);
    }

    #[test]
    fn publish_round_trips_with_qos_1_and_retain() {
        let p = Publish {
            topic: "berth/d1/status".into(),
            payload: b"{}".to_vec(),
            qos: Qos::AtLeastOnce,
            retain: true,
            id: Some(0x1234),
        };
        let b = encode_publish(&p);
        assert_eq!(b[0], 0x33);
        assert_eq!(one(&b), Incoming::Publish(p));
    }

    #[test]
    fn broker_packets_decode() {
        assert_eq!(
            one(&[0x20, 2, 0, 5]),
            Incoming::ConnAck {
                session_present: false,
                code: 5
            }
        );
        assert_eq!(one(&[0x40, 2, 0, 9]), Incoming::PubAck(9));
        assert_eq!(
            one(&[0x90, 4, 0, 1, 1, 0x80]),
            Incoming::SubAck {
                id: 1,
                granted: vec![1, 0x80]
            }
        );
        assert_eq!(one(&[0xd0, 0]), Incoming::PingResp);
        assert_eq!(connack_reason(4), "bad user name or password");
    }

    #[test]
    fn incomplete_input_waits_for_more() {
        let b = encode_publish(&Publish {
            topic: "x".into(),
            payload: b"hello".to_vec(),
            qos: Qos::AtMostOnce,
            retain: false,
            id: None,
        });
        for cut in 0..b.len() {
            assert_eq!(decode(&b[..cut], 1024), Ok(None), "cut at {cut}");
        }
        // Two packets back to back: the first is taken, the rest left.
        let two = [&b[..], &[0xd0, 0]].concat();
        let (_, n) = decode(&two, 1024).unwrap().unwrap();
        assert_eq!(one(&two[n..]), Incoming::PingResp);
    }

    #[test]
    fn hostile_packets_are_errors() {
        // Declared 200 MB: refused from the header alone.
        let big = [0x30, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(
            decode(&big, 4096),
            Err(MqttError::TooLarge { max: 4096, .. })
        ));
        // A fifth length byte.
        assert!(decode(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], usize::MAX).is_err());
        // A topic longer than the packet, QoS 2, QoS 1 without an id.
        assert!(decode(&[0x30, 3, 0, 9, b'a'], 64).is_err());
        assert!(decode(&[0x34, 3, 0, 1, b'a'], 64).is_err());
        assert!(decode(&[0x32, 4, 0, 1, b'a', 0], 64).is_err());
        // A topic that is not UTF-8.
        assert!(decode(&[0x30, 3, 0, 1, 0xff], 64).is_err());
        // Packets only a client sends, and bad fixed sizes.
        assert_eq!(decode(&[0x10, 0], 64), Err(MqttError::Unexpected(1)));
        assert!(decode(&[0x20, 1, 0], 64).is_err());
        assert!(decode(&[0xd0, 1, 0], 64).is_err());
        assert!(decode(&[0x90, 2, 0, 1], 64).is_err());
    }

    #[test]
    fn names_and_prefixes_refuse_wildcards_and_slashes() {
        assert!(check_name("device id", "rtr-0a1b2c.lab_1").is_ok());
        for bad in ["", "a/b", "+", "#", "a b", "$SYS", &"x".repeat(65)] {
            assert!(check_name("device id", bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix("berth/").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("isp/berth/").is_ok());
        for bad in ["berth", "b/+/", "#/", "$SYS/"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn doorbells_parse_and_garbage_does_not() {
        assert_eq!(
            parse_doorbell(b"apply"),
            Ok(Doorbell::Apply { version: None })
        );
        assert_eq!(
            parse_doorbell(b" apply 42\n"),
            Ok(Doorbell::Apply { version: Some(42) })
        );
        for bad in [
            &b"applyy"[..],
            b"apply x",
            b"apply 1 2",
            b"",
            b"\xff",
            b"rm -rf /",
        ] {
            assert!(parse_doorbell(bad).is_err(), "{bad:?}");
        }
        let shown = Shown(&[b'a'; 100]).to_string();
        assert!(shown.starts_with(&"a".repeat(64)) && shown.ends_with("(100 bytes)"));
        assert_eq!(Shown(b"\x1b[2J").to_string(), "\\x1b[2J");
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        // Fixed by the definition: a change here moves devices between stages.
        // (python3: int.from_bytes(sha256(id).digest()[:4], "big") % 100)
        assert_eq!(bucket("dev01"), 47);
        assert_eq!(bucket("rtr-0a1b2c"), 90);
        let mut seen = [0u32; 100];
        for i in 0..10_000 {
            seen[usize::from(bucket(&format!("dev{i}")))] += 1;
        }
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
    }
}
