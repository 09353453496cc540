//! minisign's three file formats (public key, secret key, `.minisig`
//! signature), parsed and written, and Ed25519 signing and verifying over
//! them (ring). Files come from an operator or a fleet server: every parser
//! bounds its input ([`MAX_FILE_SIZE`]) and names the line it refuses.
//! Pure over text and bytes; reading and writing files is `cli`'s.

use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};

use super::blake2b::{hash256, hash512};
use super::scrypt::{self, ScryptError};

/// The largest key or signature file berth parses (each is a few hundred
/// bytes); callers reading one from a file or HTTP stop reading here.
pub const MAX_FILE_SIZE: usize = 4096;

const UNTRUSTED: &str = "untrusted comment: ";
const TRUSTED: &str = "trusted comment: ";
/// Ed25519 over the file itself (legacy) or over its BLAKE2b-512 (prehashed).
const ALG_LEGACY: [u8; 2] = *b"Ed";
const ALG_HASHED: [u8; 2] = *b"ED";
const KDF_SCRYPT: [u8; 2] = *b"Sc";
const KDF_NONE: [u8; 2] = [0, 0];
const CHK_BLAKE2: [u8; 2] = *b"B2";

/// Why a key or signature file is malformed. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Larger than [`MAX_FILE_SIZE`].
    #[error("{len} bytes is too large for a {what} file (at most {max})")]
    TooLarge {
        /// `signature`, `public key`, `secret key`.
        what: &'static str,
        /// The size given.
        len: usize,
        /// [`MAX_FILE_SIZE`].
        max: usize,
    },
    /// The file ends before this line.
    #[error("line {line}: missing; the file ends before the {what}")]
    Missing {
        /// The line expected.
        line: usize,
        /// What it should hold.
        what: &'static str,
    },
    /// A comment line without its prefix.
    #[error("line {line}: missing `{prefix}` prefix")]
    Prefix {
        /// The line.
        line: usize,
        /// `untrusted comment: ` or `trusted comment: `.
        prefix: &'static str,
    },
    /// Not standard base64.
    #[error("line {line}: not base64")]
    Base64 {
        /// The line.
        line: usize,
    },
    /// Base64 of the wrong number of bytes.
    #[error("line {line}: the {what} is {len} bytes, not {want}")]
    Length {
        /// The line.
        line: usize,
        /// What the line holds.
        what: &'static str,
        /// Bytes decoded.
        len: usize,
        /// Bytes this format has.
        want: usize,
    },
    /// Not Ed25519 (`Ed`, or `ED` for a prehashed signature).
    #[error("line {line}: signature algorithm `{alg}` is not Ed25519")]
    Algorithm {
        /// The line.
        line: usize,
        /// The two algorithm bytes, escaped.
        alg: String,
    },
    /// A secret key's key derivation or checksum algorithm is not minisign's.
    #[error("line {line}: {what} algorithm `{alg}` is not supported")]
    KeyAlgorithm {
        /// The line.
        line: usize,
        /// `key derivation` or `checksum`.
        what: &'static str,
        /// The two algorithm bytes, escaped.
        alg: String,
    },
    /// A carriage return inside a comment (a comment is one line).
    #[error("line {line}: a carriage return inside the comment")]
    LineBreak {
        /// The line.
        line: usize,
    },
    /// More text after the format's last line.
    #[error("line {line}: unexpected text after the {what}")]
    Trailing {
        /// The first such line.
        line: usize,
        /// The format's last line.
        what: &'static str,
    },
    /// An encrypted secret key and no passphrase.
    #[error("the secret key is encrypted; a passphrase is needed")]
    NeedPassphrase,
    /// The decrypted key's checksum does not match.
    #[error("wrong passphrase, or a damaged secret key (its checksum does not match)")]
    Checksum,
    /// The secret key's scrypt parameters cannot be used.
    #[error("the secret key's scrypt parameters cannot be used")]
    Kdf {
        /// Why.
        #[source]
        source: ScryptError,
    },
    /// The secret key's seed does not give its public key.
    #[error("the secret key's two halves do not match")]
    KeyPair,
}

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Made with another key.
    #[error("signed by key {signer}, not {trusted}")]
    KeyId {
        /// The signature's key id (hex, as minisign prints it).
        signer: String,
        /// The trusted key's id.
        trusted: String,
    },
    /// The signature over the file does not verify: the file was changed.
    #[error("bad signature")]
    File,
    /// The signature over the trusted comment does not verify.
    #[error("trusted comment was altered")]
    Comment,
}

/// A minisign public key (`.pub` file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key id, as stored (minisign prints it as a little-endian u64).
    pub id: [u8; 8],
    /// The Ed25519 public key.
    pub key: [u8; 32],
}

/// A `.minisig` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `ED`: Ed25519 over the file's BLAKE2b-512; `Ed` (legacy): over the file.
    pub prehashed: bool,
    /// The id of the key that made it.
    pub key_id: [u8; 8],
    /// The signature over the file.
    pub sig: [u8; 64],
    /// The trusted comment (signed by `global_sig`), one line.
    pub trusted_comment: String,
    /// Ed25519 over `sig || trusted_comment`.
    pub global_sig: [u8; 64],
    /// The untrusted comment (anyone can change it).
    pub untrusted_comment: String,
}

/// A minisign secret key. Kept as the fields of its file, its 104-byte
/// tail as written (encrypted when `kdf` is scrypt), with the seed in clear.
pub struct SecretKey {
    id: [u8; 8],
    seed: [u8; 32],
    public: [u8; 32],
    /// kdf_alg || cksum_alg || salt || opslimit || memlimit, as in the file.
    kdf_alg: [u8; 2],
    kdf_params: [u8; 48],
    /// key_id || sk || checksum, as in the file.
    tail: [u8; 104],
}

/// The secret bytes are overwritten when the key is dropped, so a core dump
/// or a reused page of `berth sign` does not hold them afterwards (best
/// effort: copies made by moves and inside ring are not reached).
impl Drop for SecretKey {
    fn drop(&mut self) {
        for b in self.seed.iter_mut().chain(self.tail.iter_mut()) {
            // SAFETY: `b` is a valid, aligned, exclusive reference to a u8;
            // the volatile write only keeps the compiler from removing it.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", hex_id(&self.id))
    }
}

fn hex_id(id: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*id))
}

/// Two algorithm bytes, printable.
fn alg_text(b: &[u8]) -> String {
    b.iter()
        .flat_map(|c| std::ascii::escape_default(*c))
        .map(char::from)
        .collect()
}

/// The lines of a file, after the size check; a CRLF file's CRs go.
struct Lines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, what: &'static str) -> Result<Self, FormatError> {
        if text.len() > MAX_FILE_SIZE {
            return Err(FormatError::TooLarge {
                what,
                len: text.len(),
                max: MAX_FILE_SIZE,
            });
        }
        let lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        Ok(Lines { lines })
    }

    /// Line `n` (1-based), which must be there.
    fn get(&self, n: usize, what: &'static str) -> Result<&'a str, FormatError> {
        match self.lines.get(n - 1) {
            Some(l) if !(l.is_empty() && self.lines[n..].iter().all(|l| l.is_empty())) => Ok(l),
            _ => Err(FormatError::Missing { line: n, what }),
        }
    }

    /// Line `n`, a comment after `prefix`, one line.
    fn comment(
        &self,
        n: usize,
        prefix: &'static str,
        what: &'static str,
    ) -> Result<&'a str, FormatError> {
        let text = self
            .get(n, what)?
            .strip_prefix(prefix)
            .ok_or(FormatError::Prefix { line: n, prefix })?;
        if text.contains('\r') {
            return Err(FormatError::LineBreak { line: n });
        }
        Ok(text)
    }

    /// Line `n`, base64 of exactly `N` bytes.
    fn bytes<const N: usize>(&self, n: usize, what: &'static str) -> Result<[u8; N], FormatError> {
        let raw =
            base64_decode(self.get(n, what)?.trim()).ok_or(FormatError::Base64 { line: n })?;
        raw.as_slice().try_into().map_err(|_| FormatError::Length {
            line: n,
            what,
            len: raw.len(),
            want: N,
        })
    }

    /// Nothing but blank lines after line `last`.
    fn end(&self, last: usize, what: &'static str) -> Result<(), FormatError> {
        match self
            .lines
            .iter()
            .skip(last)
            .position(|l| !l.trim().is_empty())
        {
            Some(i) => Err(FormatError::Trailing {
                line: last + i + 1,
                what,
            }),
            None => Ok(()),
        }
    }
}

/// One comment line: CR and LF become spaces, so a comment cannot add a line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

impl PublicKey {
    /// Parse a `.pub` file (an untrusted comment line, then the key), or
    /// the key's base64 line alone (an inline key in a config file).
    pub fn parse(text: &str) -> Result<PublicKey, FormatError> {
        let lines = Lines::new(text, "public key")?;
        let first = lines.get(1, "public key")?;
        let n = if first.starts_with(UNTRUSTED) {
            2
        } else if first.starts_with("untrusted comment") {
            return Err(FormatError::Prefix {
                line: 1,
                prefix: UNTRUSTED,
            });
        } else {
            1
        };
        let raw: [u8; 42] = lines.bytes(n, "public key")?;
        if raw[..2] != ALG_LEGACY {
            return Err(FormatError::Algorithm {
                line: n,
                alg: alg_text(&raw[..2]),
            });
        }
        lines.end(n, "public key")?;
        let mut key = PublicKey {
            id: [0; 8],
            key: [0; 32],
        };
        key.id.copy_from_slice(&raw[2..10]);
        key.key.copy_from_slice(&raw[10..]);
        Ok(key)
    }

    /// The key's base64 line alone (what `minisign -P` takes).
    pub fn to_base64(&self) -> String {
        base64_encode(&[&ALG_LEGACY[..], &self.id, &self.key].concat())
    }

    /// The `.pub` file, as minisign writes it.
    pub fn to_file(&self) -> String {
        format!(
            "{UNTRUSTED}minisign public key {}\n{}\n",
            self.id_hex(),
            self.to_base64()
        )
    }

    /// The key id as minisign prints it: the id read as a little-endian u64,
    /// in 16 uppercase hex digits.
    pub fn id_hex(&self) -> String {
        hex_id(&self.id)
    }
}

impl Signature {
    /// Parse a `.minisig` file: untrusted comment, signature, trusted
    /// comment, global signature.
    pub fn parse(text: &str) -> Result<Signature, FormatError> {
        let lines = Lines::new(text, "signature")?;
        let untrusted = lines.comment(1, UNTRUSTED, "untrusted comment")?;
        let raw: [u8; 74] = lines.bytes(2, "signature")?;
        let prehashed = match [raw[0], raw[1]] {
            ALG_HASHED => true,
            ALG_LEGACY => false,
            _ => {
                return Err(FormatError::Algorithm {
                    line: 2,
                    alg: alg_text(&raw[..2]),
                })
            }
        };
        let trusted = lines.comment(3, TRUSTED, "trusted comment")?;
        let global_sig = lines.bytes(4, "global signature")?;
        lines.end(4, "global signature")?;
        let mut sig = Signature {
            prehashed,
            key_id: [0; 8],
            sig: [0; 64],
            trusted_comment: trusted.to_owned(),
            global_sig,
            untrusted_comment: untrusted.to_owned(),
        };
        sig.key_id.copy_from_slice(&raw[2..10]);
        sig.sig.copy_from_slice(&raw[10..]);
        Ok(sig)
    }

    /// The `.minisig` file. Line breaks in a comment become spaces (and so
    /// break a trusted comment's signature rather than add a line).
    pub fn to_file(&self) -> String {
        let alg = if self.prehashed {
            ALG_HASHED
        } else {
            ALG_LEGACY
        };
        format!(
            "{UNTRUSTED}{}\n{}\n{TRUSTED}{}\n{}\n",
            one_line(&self.untrusted_comment),
            base64_encode(&[&alg[..], &self.key_id, &self.sig].concat()),
            one_line(&self.trusted_comment),
            base64_encode(&self.global_sig)
        )
    }

    /// The key id that made it, as minisign prints it.
    pub fn key_id_hex(&self) -> String {
        hex_id(&self.key_id)
    }
}

/// Check `sig` over `data` with `key`: the key id, the file signature, then
/// the signature over the trusted comment. Only after `Ok` is the trusted
/// comment trusted.
pub fn verify(key: &PublicKey, sig: &Signature, data: &[u8]) -> Result<(), VerifyError> {
    if key.id != sig.key_id {
        return Err(VerifyError::KeyId {
            signer: sig.key_id_hex(),
            trusted: key.id_hex(),
        });
    }
    let pk = UnparsedPublicKey::new(&ED25519, &key.key);
    let ok = if sig.prehashed {
        pk.verify(&hash512(data), &sig.sig)
    } else {
        // Legacy: over the file itself, without a copy.
        pk.verify(data, &sig.sig)
    };
    ok.map_err(|_| VerifyError::File)?;
    let global = [&sig.sig[..], sig.trusted_comment.as_bytes()].concat();
    pk.verify(&global, &sig.global_sig)
        .map_err(|_| VerifyError::Comment)
}

/// Sign `data` (prehashed, `ED`) with the trusted and untrusted comments;
/// a line break in a comment becomes a space (a comment is one line).
pub fn sign(
    sk: &SecretKey,
    data: &[u8],
    trusted_comment: &str,
    untrusted_comment: &str,
) -> Signature {
    let trusted_comment = one_line(trusted_comment);
    let sig = sk.sign_raw(&hash512(data));
    let global = [&sig[..], trusted_comment.as_bytes()].concat();
    Signature {
        prehashed: true,
        key_id: sk.id,
        sig,
        trusted_comment,
        global_sig: sk.sign_raw(&global),
        untrusted_comment: one_line(untrusted_comment),
    }
}

impl SecretKey {
    /// Parse a minisign secret key file, decrypting it with `passphrase`
    /// when it is encrypted (scrypt: seconds and up to 1 GiB of memory
    /// with minisign's defaults).
    pub fn parse(text: &str, passphrase: Option<&str>) -> Result<SecretKey, FormatError> {
        let lines = Lines::new(text, "secret key")?;
        lines.comment(1, UNTRUSTED, "untrusted comment")?;
        let raw: [u8; 158] = lines.bytes(2, "secret key")?;
        lines.end(2, "secret key")?;
        if raw[..2] != ALG_LEGACY {
            return Err(FormatError::Algorithm {
                line: 2,
                alg: alg_text(&raw[..2]),
            });
        }
        let kdf_alg = [raw[2], raw[3]];
        if kdf_alg != KDF_SCRYPT && kdf_alg != KDF_NONE {
            return Err(FormatError::KeyAlgorithm {
                line: 2,
                what: "key derivation",
                alg: alg_text(&kdf_alg),
            });
        }
        if raw[4..6] != CHK_BLAKE2 {
            return Err(FormatError::KeyAlgorithm {
                line: 2,
                what: "checksum",
                alg: alg_text(&raw[4..6]),
            });
        }
        let mut kdf_params = [0u8; 48];
        kdf_params.copy_from_slice(&raw[6..54]);
        let mut tail = [0u8; 104];
        tail.copy_from_slice(&raw[54..]);
        let mut clear = tail;
        if kdf_alg == KDF_SCRYPT {
            let pass = passphrase.ok_or(FormatError::NeedPassphrase)?;
            let stream = kdf_stream(pass, &kdf_params)?;
            clear
                .iter_mut()
                .zip(stream.iter())
                .for_each(|(c, s)| *c ^= s);
        }
        let mut key = SecretKey {
            id: [0; 8],
            seed: [0; 32],
            public: [0; 32],
            kdf_alg,
            kdf_params,
            tail,
        };
        key.id.copy_from_slice(&clear[..8]);
        key.seed.copy_from_slice(&clear[8..40]);
        key.public.copy_from_slice(&clear[40..72]);
        let chk = key.checksum();
        // minisign leaves an unencrypted key's checksum zero.
        let zero = kdf_alg == KDF_NONE && clear[72..].iter().all(|b| *b == 0);
        if clear[72..] != chk[..] && !zero {
            return Err(FormatError::Checksum);
        }
        // The seed must give the stored public key, or signatures would
        // name a key that cannot verify them.
        Ed25519KeyPair::from_seed_and_public_key(&key.seed, &key.public)
            .map_err(|_| FormatError::KeyPair)?;
        Ok(key)
    }

    /// A new random key, encrypted under `passphrase` with minisign's
    /// scrypt parameters, or unencrypted without one.
    pub fn generate(passphrase: Option<&str>) -> Result<SecretKey, KeyGenError> {
        Self::generate_with(
            passphrase,
            scrypt::OPSLIMIT_SENSITIVE,
            scrypt::MEMLIMIT_SENSITIVE,
        )
    }

    /// [`SecretKey::generate`] with chosen scrypt limits (tests use small ones).
    pub fn generate_with(
        passphrase: Option<&str>,
        opslimit: u64,
        memlimit: u64,
    ) -> Result<SecretKey, KeyGenError> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut random = [0u8; 72];
        rng.fill(&mut random).map_err(|_| KeyGenError::Random)?;
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&random[8..40]).map_err(|_| KeyGenError::Random)?;
        let mut key = SecretKey {
            id: [0; 8],
            seed: [0; 32],
            public: [0; 32],
            kdf_alg: KDF_NONE,
            kdf_params: [0; 48],
            tail: [0; 104],
        };
        key.id.copy_from_slice(&random[..8]);
        key.seed.copy_from_slice(&random[8..40]);
        key.public
            .copy_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
        key.tail[..8].copy_from_slice(&key.id);
        key.tail[8..40].copy_from_slice(&key.seed);
        key.tail[40..72].copy_from_slice(&key.public);
        let chk = key.checksum();
        key.tail[72..].copy_from_slice(&chk);
        if let Some(pass) = passphrase {
            key.kdf_alg = KDF_SCRYPT;
            key.kdf_params[..32].copy_from_slice(&random[40..72]);
            key.kdf_params[32..40].copy_from_slice(&opslimit.to_le_bytes());
            key.kdf_params[40..].copy_from_slice(&memlimit.to_le_bytes());
            let stream = kdf_stream(pass, &key.kdf_params).map_err(|e| match e {
                FormatError::Kdf { source } => KeyGenError::Kdf { source },
                _ => KeyGenError::Random,
            })?;
            key.tail
                .iter_mut()
                .zip(stream.iter())
                .for_each(|(c, s)| *c ^= s);
        }
        Ok(key)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            id: self.id,
            key: self.public,
        }
    }

    /// Whether the file form is encrypted under a passphrase.
    pub fn encrypted(&self) -> bool {
        self.kdf_alg == KDF_SCRYPT
    }

    /// The secret key file, encrypted as it was made or read.
    pub fn to_file(&self) -> String {
        let raw = [
            &ALG_LEGACY[..],
            &self.kdf_alg,
            &CHK_BLAKE2,
            &self.kdf_params,
            &self.tail,
        ]
        .concat();
        let what = if self.encrypted() { "encrypted " } else { "" };
        format!(
            "{UNTRUSTED}berth {what}secret key {}\n{}\n",
            hex_id(&self.id),
            base64_encode(&raw)
        )
    }

    /// BLAKE2b-256 of sig_alg || key_id || sk (seed || public).
    fn checksum(&self) -> [u8; 32] {
        hash256(&[&ALG_LEGACY, &self.id, &self.seed, &self.public])
    }

    fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        // parse and generate checked that seed and public key match.
        if let Ok(pair) = Ed25519KeyPair::from_seed_and_public_key(&self.seed, &self.public) {
            out.copy_from_slice(pair.sign(msg).as_ref());
        }
        out
    }
}

/// Why a key cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyGenError {
    /// The system's random source failed.
    #[error("cannot read random bytes from the system")]
    Random,
    /// The scrypt limits cannot be used.
    #[error("cannot derive the key's encryption from the passphrase")]
    Kdf {
        /// Why.
        #[source]
        source: ScryptError,
    },
}

/// The 104 bytes of scrypt(passphrase, salt) that a key's tail is XORed with.
fn kdf_stream(pass: &str, params: &[u8; 48]) -> Result<[u8; 104], FormatError> {
    let le = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    let (n_log2, r, p) = scrypt::pick_params(le(&params[32..40]), le(&params[40..48]));
    let mut out = [0u8; 104];
    scrypt::scrypt(pass.as_bytes(), &params[..32], n_log2, r, p, &mut out)
        .map_err(|source| FormatError::Kdf { source })?;
    Ok(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 (padding required, no stray bits or spaces).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (ci, chunk) in b.chunks(4).enumerate() {
        let last = ci + 1 == b.len() / 4;
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i < 4 - pad {
                B64.iter().position(|x| *x == c)?
            } else {
                0
            };
            n = n << 6 | u32::try_from(v).ok()?;
        }
        let [_, b0, b1, b2] = n.to_be_bytes();
        let bytes = [b0, b1, b2];
        // The bits a padded group leaves over must be zero (one encoding).
        if bytes[3 - pad..].iter().any(|b| *b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
#[path = "minisign_tests.rs"]
mod tests;
