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
}
