//! Which signed documents a device accepts: the rules of docs/fleet.md, as a
//! pure function of the document, its signature, the trusted keys, what the
//! device accepted before and the clock. `cli::trust` reads the inputs and
//! keeps the verdict on flash (`host::trusted`).
//!
//! The rules, in order: the signature's key is trusted, the signature and its
//! trusted comment are intact, the comment carries a version, the version is
//! not lower than the accepted one (nor equal with other content), and the
//! document has not expired, which is only judged once the clock is plausible.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fleet::minisign::{self, PublicKey, Signature, VerifyError};
use crate::fleet::signed::{FactsError, SignedFacts};
use crate::fleet::time;

/// The earliest time a device clock can show, unless the build says later:
/// berth was not built before it, so a clock behind it was never set.
pub const CLOCK_FLOOR: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

/// A signed document the device accepted, as kept on flash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The anti-rollback counter of the signature's trusted comment.
    pub version: u64,
    /// sha256 of the document, hex.
    pub sha256: String,
    /// Id of the key that signed it, as minisign prints it.
    pub key_id: String,
    /// The signer's clock when it signed, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<i64>,
    /// When the document stops being valid, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// The device's clock and how far it can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Now, unix seconds, as the device's clock says.
    pub now: i64,
    /// A clock behind this was never set (build time, or the newest signing
    /// time the device has seen).
    pub floor: i64,
    /// The kernel says an NTP client has synchronised the clock.
    pub synced: bool,
}

impl Clock {
    /// The clock of a device whose build and last accepted signature give
    /// `floor`: the latest of the two and [`CLOCK_FLOOR`].
    pub fn new(now: i64, build_floor: Option<i64>, last: Option<&Accepted>) -> Self {
        let floor = [
            Some(CLOCK_FLOOR),
            build_floor,
            last.and_then(|a| a.signed_at),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(CLOCK_FLOOR);
        Clock {
            now,
            floor,
            synced: false,
        }
    }

    /// The same clock, known to be NTP-synchronised or not.
    pub fn with_sync(self, synced: bool) -> Self {
        Clock { synced, ..self }
    }

    /// A clock no expiry is judged by.
    pub fn unjudged(now: i64) -> Self {
        Clock {
            now,
            floor: i64::MAX,
            synced: false,
        }
    }

    /// Whether expiry can be judged: a router that booted without a clock
    /// reads 1970 (or its build date) until NTP has run. An NTP-synchronised
    /// clock is believed even behind the newest signing time (the signer's
    /// clock may run ahead), though never before berth's release.
    pub fn plausible(&self) -> bool {
        self.now >= self.floor || (self.synced && self.now >= CLOCK_FLOOR)
    }
}

/// Why a signed document was refused. Each says which rule.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("signed by unknown key {key_id} (trusted: {trusted}); add its .pub file to the keys directory or rotate keys with a signed key list")]
    UnknownKey { key_id: String, trusted: String },
    #[error("bad signature by key {key_id}")]
    BadSignature { key_id: String, source: VerifyError },
    #[error("the signature's trusted comment is not berth's")]
    Facts { source: FactsError },
    #[error("the signature carries no version; sign with `berth sign --version N`")]
    NoVersion,
    #[error("version {version} < accepted {accepted}: an older document is replayed (rollback)")]
    Rollback { version: u64, accepted: u64 },
    #[error("version {version} was accepted with other content; sign a changed document with a version above {version}")]
    Reused { version: u64 },
    #[error("expired at {at}")]
    Expired { at: String },
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A newer document: keep it as the accepted one.
    New(Accepted),
    /// The document the device already accepted.
    Same(Accepted),
}

impl Verdict {
    /// The accepted document, new or not.
    pub fn accepted(&self) -> &Accepted {
        match self {
            Verdict::New(a) | Verdict::Same(a) => a,
        }
    }
}

/// sha256 of a document, hex.
pub fn digest(doc: &[u8]) -> String {
    crate::model::hex(&Sha256::digest(doc))
}

/// Check `doc` and its signature against `keys`, what was accepted before
/// (`last`) and the clock.
pub fn check(
    doc: &[u8],
    sig: &Signature,
    keys: &[PublicKey],
    last: Option<&Accepted>,
    clock: &Clock,
) -> Result<Verdict, Refusal> {
    let key_id = id_hex(&sig.key_id);
    let key = keys
        .iter()
        .find(|k| k.id == sig.key_id)
        .ok_or_else(|| Refusal::UnknownKey {
            key_id: key_id.clone(),
            trusted: key_ids(keys),
        })?;
    minisign::verify(key, sig, doc).map_err(|source| Refusal::BadSignature {
        key_id: key_id.clone(),
        source,
    })?;
    let facts =
        SignedFacts::parse(&sig.trusted_comment).map_err(|source| Refusal::Facts { source })?;
    let version = facts.version.ok_or(Refusal::NoVersion)?;
    let accepted = Accepted {
        version,
        sha256: digest(doc),
        key_id,
        signed_at: facts.timestamp,
        expires: facts.expires,
    };
    if let Some(at) = accepted.expires {
        if clock.plausible() && clock.now >= at {
            return Err(Refusal::Expired {
                at: time::format_rfc3339(at),
            });
        }
    }
    match last {
        Some(l) if version < l.version => Err(Refusal::Rollback {
            version,
            accepted: l.version,
        }),
        Some(l) if version == l.version && accepted.sha256 != l.sha256 => {
            Err(Refusal::Reused { version })
        }
        Some(l) if version == l.version => Ok(Verdict::Same(accepted)),
        _ => Ok(Verdict::New(accepted)),
    }
}

/// A key id as minisign prints it.
pub fn id_hex(id: &[u8; 8]) -> String {
    PublicKey {
        id: *id,
        key: [0; 32],
    }
    .id_hex()
}

/// The ids of `keys`, for a refusal's message.
pub fn key_ids(keys: &[PublicKey]) -> String {
    if keys.is_empty() {
        return "none".into();
    }
    keys.iter()
        .map(PublicKey::id_hex)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::minisign::{sign, SecretKey};

    const NOW: i64 = CLOCK_FLOOR + 86_400;

    fn signed(sk: &SecretKey, doc: &str, comment: &str) -> Signature {
        sign(sk, doc.as_bytes(), comment, "untrusted comment: test")
    }

    fn clock() -> Clock {
        Clock::new(NOW, None, None)
    }

    fn key() -> SecretKey {
        SecretKey::generate(None).expect("random key")
    }

    #[test]
    fn a_first_signed_document_is_new_and_again_is_the_same() {
        let sk = key();
        let sig = signed(&sk, "a", "timestamp:5\tversion:3");
        let keys = [sk.public()];
        let v = check(b"a", &sig, &keys, None, &clock()).expect("accepted");
        let Verdict::New(a) = v else {
            panic!("not new: {v:?}")
        };
        assert_eq!((a.version, a.signed_at, a.expires), (3, Some(5), None));
        assert_eq!(a.sha256, digest(b"a"));
        assert_eq!(a.key_id, sk.public().id_hex());
        assert_eq!(
            check(b"a", &sig, &keys, Some(&a), &clock()).expect("same"),
            Verdict::Same(a.clone())
        );
        let newer = signed(&sk, "b", "version:4");
        assert!(matches!(
            check(b"b", &newer, &keys, Some(&a), &clock()),
            Ok(Verdict::New(Accepted { version: 4, .. }))
        ));
    }

    #[test]
    fn every_rule_refuses_with_its_reason() {
        let sk = key();
        let keys = [sk.public()];
        let v9 = signed(&sk, "nine", "version:9");
        let last = check(b"nine", &v9, &keys, None, &clock())
            .expect("accepted")
            .accepted()
            .clone();
        let refuse = |doc: &str, sig: &Signature| {
            check(doc.as_bytes(), sig, &keys, Some(&last), &clock())
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            refuse("seven", &signed(&sk, "seven", "version:7")),
            "version 7 < accepted 9: an older document is replayed (rollback)"
        );
        assert!(refuse("other", &signed(&sk, "other", "version:9"))
            .starts_with("version 9 was accepted with other content"));
        assert_eq!(
            refuse("ten", &signed(&sk, "ten", "timestamp:1")),
            "the signature carries no version; sign with `berth sign --version N`"
        );
        assert_eq!(
            refuse("tampered", &v9),
            format!("bad signature by key {}", sk.public().id_hex())
        );
        let mut comment_changed = signed(&sk, "ten", "version:10");
        comment_changed.trusted_comment = "version:99".into();
        assert!(refuse("ten", &comment_changed).starts_with("bad signature"));
        let stranger = key();
        let e = refuse("ten", &signed(&stranger, "ten", "version:10"));
        assert!(
            e.starts_with(&format!(
                "signed by unknown key {} (trusted: {})",
                stranger.public().id_hex(),
                sk.public().id_hex()
            )),
            "{e}"
        );
        let expired = signed(
            &sk,
            "ten",
            &format!("version:10\texpires:{}", time::format_rfc3339(NOW)),
        );
        assert_eq!(
            refuse("ten", &expired),
            format!("expired at {}", time::format_rfc3339(NOW))
        );
    }

    /// Without a plausible clock only the version rule applies.
    #[test]
    fn expiry_waits_for_a_plausible_clock() {
        let sk = key();
        let keys = [sk.public()];
        let sig = signed(
            &sk,
            "d",
            &format!(
                "version:2\texpires:{}",
                time::format_rfc3339(CLOCK_FLOOR + 10)
            ),
        );
        let unset = Clock::new(0, None, None);
        assert!(!unset.plausible());
        assert!(check(b"d", &sig, &keys, None, &unset).is_ok());
        let later = Clock::new(CLOCK_FLOOR + 10, None, None);
        assert!(later.plausible());
        assert!(matches!(
            check(b"d", &sig, &keys, None, &later),
            Err(Refusal::Expired { .. })
        ));
        // A signature made later than the clock shows proves the clock wrong.
        let last = Accepted {
            version: 1,
            sha256: String::new(),
            key_id: String::new(),
            signed_at: Some(CLOCK_FLOOR + 100),
            expires: None,
        };
        assert!(!Clock::new(CLOCK_FLOOR + 50, None, Some(&last)).plausible());
        // Unless NTP set it; but an NTP clock before berth existed is not believed.
        assert!(Clock::new(CLOCK_FLOOR + 50, None, Some(&last))
            .with_sync(true)
            .plausible());
        assert!(!Clock::new(0, None, None).with_sync(true).plausible());
        assert!(!Clock::unjudged(CLOCK_FLOOR + 50)
            .with_sync(false)
            .plausible());
        assert!(!Clock::new(CLOCK_FLOOR + 50, Some(CLOCK_FLOOR + 60), None).plausible());
    }
}
