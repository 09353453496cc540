//! The command line's error type: any error of the layers below, boxed, with
//! the context strings the CLI added on the way up. `main` prints it once as
//! `berth: <context>: <error>: <cause>...` and picks the exit code from it.

use std::fmt;

/// A boxed error of any module below the CLI.
type Inner = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error on its way to `main`: the original error (its `source()` chain
/// kept) and the context the CLI added, innermost first.
///
/// Not itself a `std::error::Error`, so that every error converts into it
/// with `?` (the blanket `From` would otherwise clash with `From<T> for T`).
pub struct Error {
    inner: Inner,
    context: Vec<String>,
}

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure the CLI describes in its own words (`no container ...`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Message {
    /// The whole message, lowercase, no final period.
    pub message: String,
}

impl Error {
    /// An error that is only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Message {
                message: message.into(),
            }),
            context: Vec::new(),
        }
    }

    /// Wrap the error in one more layer of context (printed before it).
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context.push(context.into());
        self
    }

    /// The original error and its causes, outermost first (contexts not included).
    pub fn chain(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        let first: &(dyn std::error::Error + 'static) = self.inner.as_ref();
        std::iter::successors(Some(first), |e| e.source())
    }

    /// Whether writing to a closed pipe caused this error.
    pub fn is_broken_pipe(&self) -> bool {
        self.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }

    /// Whether the original error or one of its causes is an `E`.
    pub fn is<E: std::error::Error + 'static>(&self) -> bool {
        self.chain().any(|e| e.is::<E>())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Self {
            inner: Box::new(e),
            context: Vec::new(),
        }
    }
}

/// `<context>: ...: <error>: <cause>...`, the format `main` prints.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.context.iter().rev() {
            write!(f, "{c}: ")?;
        }
        f.write_str(&crate::host::chain(self.inner.as_ref()))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Add context to a failed result or a missing value, as the CLI says what it
/// was doing: `read_to_string(p).context("read manifest from stdin")?`.
pub trait Context<T> {
    /// Wrap the error (or `None`) in `context`.
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// Wrap the error (or `None`) in the context `f` builds, only on failure.
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::msg(context))
    }

    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| Error::msg(f()))
    }
}

/// Return early with an [`Error`] made from a format string.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::cli::error::Error::msg(format!($($arg)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::UsageError;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn prints_context_then_the_error_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let r: std::result::Result<(), Outer> = Err(Outer { source: io });
        let e = r.context("step one").context("step two").unwrap_err();
        assert_eq!(e.to_string(), "step two: step one: outer: gone");
        assert_eq!(format!("{e:?}"), "step two: step one: outer: gone");
        assert!(e.is::<std::io::Error>(), "a cause is found");
        assert!(!e.is::<UsageError>());
    }

    #[test]
    fn a_usage_error_under_context_is_still_found() {
        let r: Result<()> = Err(UsageError("bad".into()).into());
        let e = r
            .with_context(|| format!("load `{}`", "m.yaml"))
            .unwrap_err();
        assert!(e.is::<UsageError>());
        assert_eq!(e.to_string(), "load `m.yaml`: bad");
    }

    #[test]
    fn none_becomes_the_message_and_bail_returns() {
        let e = None::<u8>
            .context("container `x` was never created here")
            .unwrap_err();
        assert_eq!(e.to_string(), "container `x` was never created here");
        fn fails(n: u8) -> Result<u8> {
            if n > 1 {
                bail!("{n} is too many");
            }
            Ok(n)
        }
        assert_eq!(fails(1).ok(), Some(1));
        assert_eq!(fails(2).unwrap_err().to_string(), "2 is too many");
    }

    /// Each cause in the chain of `e` appears once in the printed error.
    fn assert_causes_once(e: Error) {
        let full = e.to_string();
        let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
        assert!(!causes.is_empty(), "{full}: no cause");
        for c in causes {
            assert_eq!(full.matches(&c).count(), 1, "`{c}` in `{full}`");
        }
    }

    #[test]
    fn every_cause_is_printed_once() {
        use crate::host::local::LocalError;
        use crate::host::net::{NetError, Who};
        use crate::host::records::RecordError;
        use std::path::PathBuf;
        let errno = |n| std::io::Error::from_raw_os_error(n);
        let who = || Who {
            network: "lan".into(),
            container: Some("web".into()),
        };
        let refused = || NetError::ParentRefused {
            who: who(),
            parent: "eth0".into(),
            kind: "macvlan",
            source: errno(libc::EOPNOTSUPP),
        };
        let full = Error::from(refused()).context("create `web`").to_string();
        assert_eq!(full.matches("Operation not supported").count(), 1, "{full}");
        assert_eq!(full.matches("`web`").count(), 2, "{full}");
        let json = serde_json::from_slice::<u8>(b"{").unwrap_err();
        for e in [
            Error::from(refused()),
            Error::from(NetError::Netlink {
                who: who(),
                op: "add address".into(),
                source: errno(libc::EEXIST),
            }),
            Error::from(NetError::OpenNetns {
                path: PathBuf::from("/proc/1/ns/net"),
                source: errno(libc::ENOENT),
            }),
            Error::from(NetError::Rollback {
                cause: Box::new(refused()),
                name: "mv-web".into(),
                source: errno(libc::EBUSY),
            }),
            Error::from(NetError::WriteFile {
                path: PathBuf::from("/etc/hosts"),
                source: errno(libc::ENOSPC),
            }),
            Error::from(LocalError::Busy {
                container: "web".into(),
                path: PathBuf::from("/r"),
                source: errno(libc::EBUSY),
            }),
            Error::from(RecordError::Corrupt {
                path: PathBuf::from("/s/applied.json"),
                source: json,
            }),
        ] {
            assert_causes_once(e);
        }
    }

    /// The rule in source form: no `#[error(...)]` embeds its source; the chain
    /// printer adds it.
    #[test]
    fn no_error_message_embeds_its_source() {
        let needle = concat!("{", "source");
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut bad = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read");
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    let Some(at) = line.find("#[error(") else {
                        continue;
                    };
                    // The attribute, possibly over several lines, and the field after it.
                    let attr: String = lines[i..lines.len().min(i + 4)].join("\n");
                    let attr = &attr[at..];
                    let end = attr.find(")]").unwrap_or(attr.len());
                    let (msg, after) = attr.split_at(end);
                    let wraps_0 = msg.contains("{0}")
                        && after
                            .lines()
                            .take(3)
                            .any(|l| l.contains("#[from]") || l.contains("#[source]"));
                    if msg.contains(needle) || wraps_0 {
                        bad.push(format!("{}:{}", path.display(), i + 1));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "messages that embed their source: {bad:?}");
    }
}
