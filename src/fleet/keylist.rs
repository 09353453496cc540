//! Key rotation without reflashing: a signed key list names the keys a device
//! trusts from then on. Root keys (kept offline) sign key lists; manifest keys
//! (online, in the operator's CI) sign manifests. A stolen manifest key is
//! revoked by a list that a root key signs; a list replaces the root keys too,
//! so the root rotates the same way. The format, one key per line:
//!
//! ```text
//! # comments and blank lines are ignored
//! root RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3
//! manifest RWTHpQ...
//! ```
//!
//! The list is signed like a manifest (`berth sign --version N keys.list`)
//! and follows the same rules ([`policy::check`]) with its own version.

use crate::fleet::minisign::{PublicKey, Signature};
use crate::fleet::policy::{self, Accepted, Clock, Refusal, Verdict};

/// Largest key list read: a few dozen keys.
pub const MAX_KEY_LIST: usize = 16 * 1024;
/// Most keys a list (or the keys directory) may hold.
pub const MAX_KEYS: usize = 64;

/// The keys a device trusts, by role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// Sign key lists.
    pub root: Vec<PublicKey>,
    /// Sign manifests.
    pub manifest: Vec<PublicKey>,
}

/// A key list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyListError {
    #[error("line {line}: `{role}` is not a role; write `root KEY` or `manifest KEY`")]
    Role { line: usize, role: String },
    #[error("line {line}: no key after `{role}`")]
    MissingKey { line: usize, role: String },
    #[error("line {line}: bad key")]
    Key {
        line: usize,
        source: crate::fleet::minisign::FormatError,
    },
    #[error("lists no {role} key; a list needs a root key (to rotate again) and a manifest key")]
    Empty { role: &'static str },
    #[error("holds more than {MAX_KEYS} keys")]
    TooMany,
    #[error("is larger than {MAX_KEY_LIST} bytes")]
    TooLarge,
    #[error("is not UTF-8 text")]
    NotText,
    #[error("refused")]
    Refused { source: Refusal },
}

/// Parse a key list.
pub fn parse(text: &str) -> Result<KeySet, KeyListError> {
    if text.len() > MAX_KEY_LIST {
        return Err(KeyListError::TooLarge);
    }
    let mut set = KeySet::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (role, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
        let keys = match role {
            "root" => &mut set.root,
            "manifest" => &mut set.manifest,
            _ => {
                return Err(KeyListError::Role {
                    line,
                    role: role.into(),
                })
            }
        };
        let key = rest.trim();
        if key.is_empty() {
            return Err(KeyListError::MissingKey {
                line,
                role: role.into(),
            });
        }
        let key = PublicKey::parse(key).map_err(|source| KeyListError::Key { line, source })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
        if set.root.len() + set.manifest.len() > MAX_KEYS {
            return Err(KeyListError::TooMany);
        }
    }
    if set.root.is_empty() {
        return Err(KeyListError::Empty { role: "root" });
    }
    if set.manifest.is_empty() {
        return Err(KeyListError::Empty { role: "manifest" });
    }
    Ok(set)
}

/// Check a key list against the root keys trusted now and the list accepted
/// before; on success, the keys it names.
pub fn check(
    text: &[u8],
    sig: &Signature,
    trusted: &KeySet,
    last: Option<&Accepted>,
    clock: &Clock,
) -> Result<(Verdict, KeySet), KeyListError> {
    if text.len() > MAX_KEY_LIST {
        return Err(KeyListError::TooLarge);
    }
    let verdict = policy::check(text, sig, &trusted.root, last, clock)
        .map_err(|source| KeyListError::Refused { source })?;
    let text = std::str::from_utf8(text).map_err(|_| KeyListError::NotText)?;
    Ok((verdict, parse(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::minisign::{sign, SecretKey};

    fn key() -> SecretKey {
        SecretKey::generate(None).expect("random key")
    }

    fn line(role: &str, k: &SecretKey) -> String {
        let file = k.public().to_file();
        let b64 = file.lines().nth(1).expect("key line");
        format!("{role} {b64}\n")
    }

    fn clock() -> Clock {
        Clock::new(policy::CLOCK_FLOOR + 1, None, None)
    }

    #[test]
    fn a_list_names_keys_by_role() {
        let (r, m) = (key(), key());
        let text = format!(
            "# fleet keys\n\n{}{}",
            line("root", &r),
            line("manifest", &m)
        );
        let set = parse(&text).expect("parsed");
        assert_eq!(set.root, vec![r.public()]);
        assert_eq!(set.manifest, vec![m.public()]);
    }

    #[test]
    fn malformed_lists_name_the_line() {
        let r = key();
        let root = line("root", &r);
        let err = |t: &str| parse(t).expect_err("refused").to_string();
        assert_eq!(
            err(&format!("{root}owner RWQ\n")),
            "line 2: `owner` is not a role; write `root KEY` or `manifest KEY`"
        );
        assert_eq!(
            err(&format!("{root}manifest\n")),
            "line 2: no key after `manifest`"
        );
        assert_eq!(err(&format!("{root}manifest @@@\n")), "line 2: bad key");
        assert!(err(&root).starts_with("lists no manifest key"));
        assert!(err("").starts_with("lists no root key"));
    }

    /// Only a root key signs a list: a stolen manifest key cannot trust
    /// itself or another key.
    #[test]
    fn a_manifest_key_cannot_sign_a_key_list() {
        let (r, m, evil) = (key(), key(), key());
        let trusted = KeySet {
            root: vec![r.public()],
            manifest: vec![m.public()],
        };
        let list = format!("{}{}", line("root", &r), line("manifest", &evil));
        let by_m = sign(&m, list.as_bytes(), "version:2", "untrusted comment: x");
        assert!(matches!(
            check(list.as_bytes(), &by_m, &trusted, None, &clock()),
            Err(KeyListError::Refused {
                source: Refusal::UnknownKey { .. }
            })
        ));
        let by_r = sign(&r, list.as_bytes(), "version:2", "untrusted comment: x");
        let (verdict, set) = check(list.as_bytes(), &by_r, &trusted, None, &clock()).expect("ok");
        assert_eq!(verdict.accepted().version, 2);
        assert_eq!(set.manifest, vec![evil.public()]);
        // An older list is a rollback, as for manifests.
        let old = sign(&r, list.as_bytes(), "version:1", "untrusted comment: x");
        assert!(matches!(
            check(
                list.as_bytes(),
                &old,
                &trusted,
                Some(verdict.accepted()),
                &clock()
            ),
            Err(KeyListError::Refused {
                source: Refusal::Rollback { .. }
            })
        ));
    }
}
