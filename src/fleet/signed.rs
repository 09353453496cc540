//! The facts berth signs: the trusted comment of a berth signature is
//! `timestamp:UNIX\tfile:NAME\tversion:N\texpires:RFC3339`, tab-separated
//! `key:value` pairs as minisign's own default (`timestamp:..\tfile:..\thashed`).
//! The version is the anti-rollback counter; the expiry bounds how long a
//! captured manifest can be replayed. Pure text, checked by the callers.

use super::time::{format_rfc3339, parse_rfc3339, TimeError};

/// What a trusted comment says; a fact it does not state is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedFacts {
    /// When it was signed (unix seconds).
    pub timestamp: Option<i64>,
    /// The file name it was signed as.
    pub file: Option<String>,
    /// The manifest's version: a device refuses one lower than it has run.
    pub version: Option<u64>,
    /// After this instant (unix seconds) the signature is no longer accepted.
    pub expires: Option<i64>,
}

/// A fact in a trusted comment that is present but malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    /// `version:` is not a positive integer.
    #[error("trusted comment: `version:{value}` is not a positive integer")]
    Version {
        /// The value after `version:`.
        value: String,
    },
    /// `expires:` is not an RFC 3339 time.
    #[error("trusted comment: `expires:` is not a valid time")]
    Expires {
        /// Why.
        #[source]
        source: TimeError,
    },
}

impl SignedFacts {
    /// Read the facts of a trusted comment. Unknown keys, and fields without
    /// a `:` (minisign's `hashed`), are ignored; so is a malformed timestamp,
    /// which berth only prints. A malformed version or expiry is an error:
    /// those are what a device decides on.
    pub fn parse(comment: &str) -> Result<SignedFacts, FactsError> {
        let mut facts = SignedFacts::default();
        for field in comment.split('\t') {
            let Some((key, value)) = field.split_once(':') else {
                continue;
            };
            match key {
                "timestamp" => facts.timestamp = value.parse().ok(),
                "file" => facts.file = Some(value.to_owned()),
                "version" => {
                    let v = value.parse::<u64>().ok().filter(|v| *v > 0);
                    facts.version = Some(v.ok_or_else(|| FactsError::Version {
                        value: value.to_owned(),
                    })?);
                }
                "expires" => {
                    let t =
                        parse_rfc3339(value).map_err(|source| FactsError::Expires { source })?;
                    facts.expires = Some(t);
                }
                _ => {}
            }
        }
        Ok(facts)
    }

    /// The trusted comment stating these facts, in the order above. A file
    /// name's tabs and line breaks become spaces: a trusted comment is one
    /// line and a tab would start a new fact.
    pub fn to_comment(&self) -> String {
        let mut fields = Vec::new();
        if let Some(t) = self.timestamp {
            fields.push(format!("timestamp:{t}"));
        }
        if let Some(f) = &self.file {
            let clean: String = f
                .chars()
                .map(|c| {
                    if matches!(c, '\t' | '\r' | '\n') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            fields.push(format!("file:{clean}"));
        }
        if let Some(v) = self.version {
            fields.push(format!("version:{v}"));
        }
        if let Some(e) = self.expires {
            fields.push(format!("expires:{}", format_rfc3339(e)));
        }
        fields.join("\t")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_comment_roundtrip() {
        let facts = SignedFacts {
            timestamp: Some(1_796_000_000),
            file: Some("fleet.yaml".into()),
            version: Some(42),
            expires: Some(1_800_000_000),
        };
        let c = facts.to_comment();
        assert_eq!(
            c,
            "timestamp:1796000000\tfile:fleet.yaml\tversion:42\texpires:2027-01-15T08:00:00Z"
        );
        assert_eq!(SignedFacts::parse(&c), Ok(facts));
    }

    #[test]
    fn minisign_default_comment_and_unknown_keys() {
        let f =
            SignedFacts::parse("timestamp:1700000000\tfile:a.yaml\thashed\tcolour:blue").unwrap();
        assert_eq!(f.timestamp, Some(1_700_000_000));
        assert_eq!(f.file.as_deref(), Some("a.yaml"));
        assert_eq!((f.version, f.expires), (None, None));
        assert_eq!(SignedFacts::parse(""), Ok(SignedFacts::default()));
        // A file name with a colon keeps it.
        let f = SignedFacts::parse("file:c:d").unwrap();
        assert_eq!(f.file.as_deref(), Some("c:d"));
    }

    #[test]
    fn malformed_version_and_expiry_are_named() {
        for bad in [
            "version:",
            "version:0",
            "version:-1",
            "version:1.5",
            "version:x",
        ] {
            let e = SignedFacts::parse(&format!("file:a\t{bad}")).unwrap_err();
            assert!(matches!(e, FactsError::Version { .. }), "{bad}");
            assert!(e.to_string().contains("`version:"), "{e}");
        }
        let e = SignedFacts::parse("version:3\texpires:tomorrow").unwrap_err();
        assert!(matches!(e, FactsError::Expires { .. }));
        assert!(e.to_string().contains("expires"));
    }

    #[test]
    fn file_name_cannot_inject_a_fact() {
        let facts = SignedFacts {
            file: Some("a\tversion:999\nb".into()),
            version: Some(1),
            ..SignedFacts::default()
        };
        let parsed = SignedFacts::parse(&facts.to_comment()).unwrap();
        assert_eq!(parsed.version, Some(1));
        assert_eq!(parsed.file.as_deref(), Some("a version:999 b"));
    }
}
