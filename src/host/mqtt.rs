//! A connection to an MQTT broker (`mqtt://` or `mqtts://` over the TLS
//! berth fetches with): connect with a deadline, subscribe, publish at QoS 1,
//! read what comes, keep the connection alive. One blocking session on its
//! own thread; whoever holds it reconnects when it fails (`cli::broker`).
//! The packets are `fleet::mqtt`'s.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::fleet::mqtt::{self, Connect, Incoming, MqttError, Publish, Qos};

/// Where the broker is: `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("broker URL `{url}`: {why}; write e.g. mqtt://broker.example.net:1883 or mqtts://HOST:8883")
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(bad("the scheme must be mqtt:// or mqtts://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '@', '?', '#']) {
            return Err(bad("give only a host and a port (no path or user)"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            // [v6]:port, or host:port without a second colon.
            Some((h, p)) if h.ends_with(']') || !h.contains(':') => {
                (h, p.parse().map_err(|_| bad("the port is not a number"))?)
            }
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad("no host or port 0"));
        }
        Ok(BrokerUrl {
            tls,
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// How to reach the broker and what to tell it.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: BrokerUrl,
    pub connect: Connect,
    /// PEM CA bundle for mqtts://.
    pub ca_bundle: PathBuf,
    /// Deadline of the TCP connect, the TLS handshake, CONNACK, SUBACK and
    /// each PUBACK; also the write timeout.
    pub timeout: Duration,
    /// The largest packet taken from the broker; a larger one ends the session.
    pub max_packet: usize,
    /// Messages kept while waiting for an acknowledgement; beyond it the
    /// oldest are dropped (a device agent needs few, the operator's view all).
    pub max_queued: usize,
}

/// Why a session could not be made or ended.
#[derive(Debug, thiserror::Error)]
pub enum MqttFailure {
    #[error("connect to {url}")]
    Unreachable { url: String, source: io::Error },
    #[error("TLS with {url}: {detail}")]
    Tls { url: String, detail: String },
    #[error("{url} refused the connection: {reason} (CONNACK code {code})")]
    Refused {
        url: String,
        reason: &'static str,
        code: u8,
    },
    #[error("{url} did not answer {what} within {secs} s")]
    TimedOut {
        url: String,
        what: &'static str,
        secs: u64,
    },
    #[error("{url} sent a bad packet")]
    Protocol { url: String, source: MqttError },
    #[error("{url} closed the connection")]
    Closed { url: String },
    #[error("{url}")]
    Io { url: String, source: io::Error },
    #[error("{url} refused the subscription to `{filter}`")]
    NotSubscribed { url: String, filter: String },
}

/// A stream with a read timeout: TCP, or TLS over TCP.
trait Conn: Read + Write + Send {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Conn for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
}

#[cfg(feature = "tls")]
impl Conn for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(t)
    }
}

/// One connected session.
pub struct Session {
    conn: Box<dyn Conn>,
    url: String,
    buf: Vec<u8>,
    max_packet: usize,
    timeout: Duration,
    keepalive: Duration,
    /// When a packet was last sent (the keepalive counts from it).
    last_out: Instant,
    /// A PINGREQ not answered yet.
    ping_sent: Option<Instant>,
    next_id: u16,
    /// Messages that came while waiting for an acknowledgement.
    queued: VecDeque<Publish>,
    max_queued: usize,
}

impl Session {
    /// Connect, log in and wait for CONNACK, all within `o.timeout`.
    pub fn connect(o: &Options) -> Result<Session, MqttFailure> {
        let url = o.url.to_string();
        let unreachable = |source| MqttFailure::Unreachable {
            url: url.clone(),
            source,
        };
        let addrs = (o.url.host.as_str(), o.url.port)
            .to_socket_addrs()
            .map_err(unreachable)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, o.timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or_else(|| unreachable(last))?;
        let io_err = |source| MqttFailure::Io {
            url: url.clone(),
            source,
        };
        tcp.set_write_timeout(Some(o.timeout)).map_err(io_err)?;
        tcp.set_read_timeout(Some(o.timeout)).map_err(io_err)?;
        tcp.set_nodelay(true).map_err(io_err)?;
        let conn = if o.url.tls {
            tls(tcp, o, &url)?
        } else {
            Box::new(tcp)
        };
        let keepalive = Duration::from_secs(u64::from(o.connect.keepalive_secs.max(1)));
        let mut s = Session {
            conn,
            url,
            buf: Vec::new(),
            max_packet: o.max_packet,
            timeout: o.timeout,
            keepalive,
            last_out: Instant::now(),
            ping_sent: None,
            next_id: 0,
            queued: VecDeque::new(),
            max_queued: o.max_queued.max(1),
        };
        s.send(&mqtt::encode_connect(&o.connect))?;
        let deadline = Instant::now() + o.timeout;
        match s.read_until(deadline, "CONNECT")? {
            Incoming::ConnAck { code: 0, .. } => Ok(s),
            Incoming::ConnAck { code, .. } => Err(MqttFailure::Refused {
                url: s.url,
                reason: mqtt::connack_reason(code),
                code,
            }),
            _ => Err(s.protocol(MqttError::Malformed {
                what: "first packet (not CONNACK)",
            })),
        }
    }

    /// Subscribe to `filters` at QoS 1; a filter the broker refuses is an error.
    pub fn subscribe(&mut self, filters: &[String]) -> Result<(), MqttFailure> {
        let id = self.id();
        self.send(&mqtt::encode_subscribe(id, filters))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_until(deadline, "SUBSCRIBE")? {
                Incoming::SubAck { id: got, granted } if got == id => {
                    let refused = granted.iter().position(|g| *g == 0x80);
                    return match refused.and_then(|i| filters.get(i)) {
                        Some(f) => Err(MqttFailure::NotSubscribed {
                            url: self.url.clone(),
                            filter: f.clone(),
                        }),
                        None => Ok(()),
                    };
                }
                other => self.absorb(other)?,
            }
        }
    }

    /// Publish at QoS 1 and wait for the broker's PUBACK.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<(), MqttFailure> {
        let id = self.id();
        self.send(&mqtt::encode_publish(&Publish {
            topic: topic.to_string(),
            payload: payload.to_vec(),
            qos: Qos::AtLeastOnce,
            retain,
            id: Some(id),
        }))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_until(deadline, "PUBLISH")? {
                Incoming::PubAck(got) if got == id => return Ok(()),
                other => self.absorb(other)?,
            }
        }
    }

    /// The next message, waiting at most `wait`; pings the broker when the
    /// keepalive is due, and fails when a ping goes unanswered.
    pub fn next(&mut self, wait: Duration) -> Result<Option<Publish>, MqttFailure> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(p) = self.queued.pop_front() {
                return Ok(Some(p));
            }
            let now = Instant::now();
            if let Some(sent) = self.ping_sent {
                if now.duration_since(sent) > self.keepalive.max(self.timeout) {
                    return Err(MqttFailure::TimedOut {
                        url: self.url.clone(),
                        what: "PINGREQ",
                        secs: self.keepalive.max(self.timeout).as_secs(),
                    });
                }
            } else if now.duration_since(self.last_out) >= self.keepalive {
                self.send(&mqtt::encode_pingreq())?;
                self.ping_sent = Some(now);
            }
            if now >= deadline {
                return Ok(None);
            }
            // Wake for the next ping or the ping's deadline, whichever is first.
            let ping_due = match self.ping_sent {
                Some(sent) => sent + self.keepalive.max(self.timeout),
                None => self.last_out + self.keepalive,
            };
            match self.read_packet(deadline.min(ping_due).max(now))? {
                Some(p) => self.absorb(p)?,
                None => continue,
            }
        }
    }

    /// Say goodbye: the broker then drops the Last Will.
    pub fn disconnect(mut self) {
        let _ = self.send(&mqtt::encode_disconnect());
    }

    fn id(&mut self) -> u16 {
        // Packet id 0 is not allowed.
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.next_id
    }

    fn protocol(&self, source: MqttError) -> MqttFailure {
        MqttFailure::Protocol {
            url: self.url.clone(),
            source,
        }
    }

    /// Take a packet that is not the one waited for: queue messages (and
    /// acknowledge QoS 1 ones), note ping answers, drop stray acks.
    fn absorb(&mut self, p: Incoming) -> Result<(), MqttFailure> {
        match p {
            Incoming::Publish(msg) => {
                if let Some(id) = msg.id {
                    self.send(&mqtt::encode_puback(id))?;
                }
                // A broker flooding a slow reader: keep the newest.
                if self.queued.len() >= self.max_queued {
                    self.queued.pop_front();
                }
                self.queued.push_back(msg);
            }
            Incoming::PingResp => self.ping_sent = None,
            Incoming::ConnAck { .. } => {
                return Err(self.protocol(MqttError::Malformed {
                    what: "second CONNACK",
                }))
            }
            Incoming::PubAck(_) | Incoming::SubAck { .. } => {}
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), MqttFailure> {
        let r = self.conn.write_all(bytes).and_then(|()| self.conn.flush());
        r.map_err(|source| MqttFailure::Io {
            url: self.url.clone(),
            source,
        })?;
        self.last_out = Instant::now();
        Ok(())
    }

    fn read_until(
        &mut self,
        deadline: Instant,
        what: &'static str,
    ) -> Result<Incoming, MqttFailure> {
        match self.read_packet(deadline)? {
            Some(p) => Ok(p),
            None => Err(MqttFailure::TimedOut {
                url: self.url.clone(),
                what,
                secs: self.timeout.as_secs(),
            }),
        }
    }

    /// One packet from the broker, or `None` at `deadline`.
    fn read_packet(&mut self, deadline: Instant) -> Result<Option<Incoming>, MqttFailure> {
        let mut chunk = [0u8; 2048];
        loop {
            match mqtt::decode(&self.buf, self.max_packet) {
                Ok(Some((p, used))) => {
                    self.buf.drain(..used);
                    return Ok(Some(p));
                }
                Ok(None) => {}
                Err(e) => return Err(self.protocol(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let io_err = |url: &str, source| MqttFailure::Io {
                url: url.to_string(),
                source,
            };
            // A zero timeout means none: at least a millisecond.
            let wait = left.max(Duration::from_millis(1));
            self.conn
                .set_read_timeout(Some(wait))
                .map_err(|e| io_err(&self.url, e))?;
            match self.conn.read(&mut chunk) {
                Ok(0) => {
                    return Err(MqttFailure::Closed {
                        url: self.url.clone(),
                    })
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(io_err(&self.url, e)),
            }
        }
    }
}

#[cfg(feature = "tls")]
fn tls(tcp: TcpStream, o: &Options, url: &str) -> Result<Box<dyn Conn>, MqttFailure> {
    let fail = |detail: String| MqttFailure::Tls {
        url: url.to_string(),
        detail,
    };
    let config = crate::host::store::tls::client_config(&o.ca_bundle)
        .map_err(|e| fail(crate::host::chain(&e)))?;
    let name = rustls::pki_types::ServerName::try_from(o.url.host.clone())
        .map_err(|_| fail(format!("`{}` is not a host name", o.url.host)))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| fail(e.to_string()))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // The handshake now, so a certificate problem is said as one.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| fail(crate::host::store::tls::explain(e).to_string()))?;
    }
    Ok(Box::new(stream))
}

#[cfg(not(feature = "tls"))]
fn tls(_tcp: TcpStream, _o: &Options, url: &str) -> Result<Box<dyn Conn>, MqttFailure> {
    Err(MqttFailure::Tls {
        url: url.to_string(),
        detail: "this berth was built without the `tls` feature; use mqtt://".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn broker_urls_parse_with_default_ports() {
        let u = BrokerUrl::parse("mqtt://10.0.0.1").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "10.0.0.1", 1883));
        let u = BrokerUrl::parse("mqtts://broker.example.net:8884/").unwrap();
        assert_eq!((u.tls, u.port), (true, 8884));
        let u = BrokerUrl::parse("mqtt://[fd00::1]:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fd00::1", 1884));
        assert_eq!(u.to_string(), "mqtt://[fd00::1]:1884");
        for bad in [
            "tcp://h",
            "mqtt://",
            "mqtt://h:x",
            "mqtt://u@h",
            "mqtt://h/t",
            "mqtt://h:0",
        ] {
            let e = BrokerUrl::parse(bad).unwrap_err();
            assert!(e.contains("mqtt://broker.example.net"), "{e}");
        }
    }

    fn options(port: u16, timeout_ms: u64) -> Options {
        Options {
            url: BrokerUrl::parse(&format!("mqtt://127.0.0.1:{port}")).unwrap(),
            connect: Connect {
                client_id: "t".into(),
                keepalive_secs: 30,
                ..Connect::default()
            },
            ca_bundle: PathBuf::new(),
            timeout: Duration::from_millis(timeout_ms),
            max_packet: 4096,
            max_queued: 16,
        }
    }

    /// A "broker" that accepts and then runs `script` on the socket.
    fn server(
        script: impl FnOnce(TcpStream) + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            script(s)
        });
        (port, h)
    }

    #[test]
    fn a_broker_that_never_answers_connect_times_out() {
        // Silent for 3 s: the 200 ms deadline must end the wait long before
        // (a bound loose enough for a loaded qemu-user run).
        let (port, h) = server(|s| {
            std::thread::sleep(Duration::from_secs(3));
            drop(s)
        });
        let t = Instant::now();
        let e = Session::connect(&options(port, 200)).err().unwrap();
        assert!(
            matches!(
                e,
                MqttFailure::TimedOut {
                    what: "CONNECT",
                    ..
                }
            ),
            "{e}"
        );
        assert!(t.elapsed() < Duration::from_millis(2500));
        h.join().unwrap();
    }

    #[test]
    fn a_refusal_names_the_reason_and_an_oversized_packet_ends_the_session() {
        let (port, h) = server(|mut s| {
            let mut b = [0u8; 64];
            let _ = s.read(&mut b);
            s.write_all(&[0x20, 2, 0, 4]).unwrap();
        });
        let e = Session::connect(&options(port, 2000)).err().unwrap();
        assert!(e.to_string().contains("bad user name or password"), "{e}");
        let e = Session::connect(&options(port, 2000)).err().unwrap();
        assert!(crate::host::chain(&e).contains("refused"), "{e}");
        h.join().unwrap();

        let (port, h) = server(|mut s| {
            let mut b = [0u8; 64];
            let _ = s.read(&mut b);
            s.write_all(&[0x20, 2, 0, 0]).unwrap();
            // A PUBLISH claiming 1 MiB.
            s.write_all(&[0x30, 0x80, 0x80, 0x40]).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        });
        let mut session = Session::connect(&options(port, 2000)).unwrap();
        let e = session.next(Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(
                e,
                MqttFailure::Protocol {
                    source: MqttError::TooLarge { .. },
                    ..
                }
            ),
            "{e}"
        );
        h.join().unwrap();
    }
}
