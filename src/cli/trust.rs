//! Signed manifests on the device (docs/fleet.md): the trust options, the
//! trusted keys, and the check between reading a manifest and using it.
//!
//! With a trusted key, a manifest fetched over http(s) must come with a valid
//! signature (URL.minisig) by a manifest key, a version not below the one
//! accepted, and no expiry passed; `--require-signed` asks the same of local
//! files. `apply` keeps what it accepted on flash (host::trusted): the
//! anti-rollback counter, and the manifest to boot from when the origin is
//! unreachable. `validate`, `render` and `plan` check the same way and write
//! nothing. The trust settings come from the command line (procd, systemd or
//! the image set them), never from the manifest: a manifest cannot choose who
//! vouches for it.

use std::path::{Path, PathBuf};

use crate::cli::args::{Opt, Parsed};
use crate::cli::error::{Error, Result};
use crate::cli::UsageError;
use crate::fleet::keylist::{self, KeySet, MAX_KEYS, MAX_KEY_LIST};
use crate::fleet::minisign::{FormatError, PublicKey, Signature, MAX_FILE_SIZE};
use crate::fleet::policy::{self, Accepted, Clock, Refusal, Verdict};
use crate::host::store::fetch::{self, FetchOptions};
use crate::host::store::FetchError;
use crate::host::trusted::{Kind, StoredDoc, TrustStore, TrustedError};

/// Where the image's trusted keys are.
pub const DEFAULT_KEYS: &str = "/etc/berth/keys";

/// `--keys PATH`, a global option.
pub const KEYS: Opt = Opt::path(
    "keys",
    "PATH",
    "Trusted minisign public key: a .pub file, or a directory of them (NAME.root.pub \
     for root keys, which sign key lists); with one, a fetched manifest must be signed \
     [default: /etc/berth/keys]",
)
.env("BERTH_KEYS");

/// `--require-signed`, a global option.
pub const REQUIRE_SIGNED: Opt = Opt::flag(
    "require-signed",
    "A local manifest file needs a valid signature (FILE.minisig) too",
)
.env("BERTH_REQUIRE_SIGNED");

/// `--signature-url URL`, a global option.
pub const SIGNATURE_URL: Opt = Opt::value(
    "signature-url",
    "URL",
    "Where a fetched manifest's signature is [default: the manifest's URL with .minisig]",
)
.env("BERTH_SIGNATURE_URL");

/// `--keys-url URL`, a global option.
pub const KEYS_URL: Opt = Opt::value(
    "keys-url",
    "URL",
    "A signed key list (and URL.minisig) that rotates the trusted keys, fetched with \
     each changed manifest",
)
.env("BERTH_KEYS_URL");

/// The trust options of the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustArgs {
    /// `--keys`; `None` for the default directory, which may be absent.
    pub keys: Option<PathBuf>,
    /// `--require-signed`.
    pub require_signed: bool,
    /// `--signature-url`.
    pub signature_url: Option<String>,
    /// `--keys-url`.
    pub keys_url: Option<String>,
    /// `--root`: the trust store is there, never where a manifest says.
    pub root: Option<PathBuf>,
    /// Keep what is accepted on flash (`apply`); the other commands only check.
    pub commit: bool,
}

impl TrustArgs {
    /// Read the trust options; `commit` for the commands that apply.
    pub fn from_parsed(p: &Parsed, commit: bool) -> Result<Self, UsageError> {
        Ok(Self {
            keys: p.path("keys"),
            // BERTH_REQUIRE_SIGNED=0 in an init script means no.
            require_signed: p.has("require-signed")
                && p.os("require-signed").map_or(true, |v| v != "0"),
            signature_url: p.string("signature-url")?,
            keys_url: p.string("keys-url")?,
            root: p.path("root"),
            commit,
        })
    }
}

/// Why a manifest's signature was not accepted, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("--require-signed: no trusted key in `{path}`; add a .pub file there or give --keys")]
    NoKey { path: PathBuf },
    #[error("read trusted keys `{path}`")]
    ReadKeys {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("trusted key `{path}`")]
    BadKey { path: PathBuf, source: FormatError },
    #[error("`{path}` holds more than {MAX_KEYS} keys")]
    TooManyKeys { path: PathBuf },
    #[error("a manifest from stdin carries no signature; give a file with FILE.minisig beside it")]
    Stdin,
    #[error(
        "manifest `{manifest}` is unsigned: no signature at `{at}`; sign it with `berth sign`"
    )]
    Missing { manifest: String, at: String },
    #[error("read signature `{path}`")]
    ReadSignature {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fetch the signature `{at}`")]
    FetchSignature { at: String, source: FetchError },
    #[error("signature `{at}` is larger than {MAX_FILE_SIZE} bytes")]
    SignatureTooLarge { at: String },
    #[error("signature `{at}`")]
    Malformed { at: String, source: FormatError },
    #[error("manifest `{manifest}` refused")]
    Refused { manifest: String, source: Refusal },
    #[error("trust store")]
    Store { source: TrustedError },
    #[error("stored key list `{path}`")]
    StoredKeys {
        path: PathBuf,
        source: keylist::KeyListError,
    },
}

impl TrustError {
    /// A refused or unusable input (exit 2), not a failure of the device.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            TrustError::ReadKeys { .. }
                | TrustError::Store { .. }
                | TrustError::FetchSignature { .. }
        )
    }
}

impl From<TrustedError> for TrustError {
    fn from(source: TrustedError) -> Self {
        TrustError::Store { source }
    }
}

/// The device's trust: its keys, what it accepted, its clock.
pub struct Trust {
    args: TrustArgs,
    keys: KeySet,
    store: TrustStore,
}

impl Trust {
    /// The trust the options configure, or `None` when no key is trusted
    /// (then manifests are taken unsigned, as before signatures existed).
    pub fn load(args: &TrustArgs) -> Result<Option<Trust>, TrustError> {
        let root = crate::cli::context::absolute(
            args.root
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::cli::context::DEFAULT_ROOT)),
        );
        let store = TrustStore::new(&root);
        // An accepted key list replaces the image's keys.
        let keys = match store.load(Kind::KeyList)? {
            Some(doc) => keylist::parse(&doc.text).map_err(|source| TrustError::StoredKeys {
                path: store.path(Kind::KeyList),
                source,
            })?,
            None => read_keys(args.keys.as_deref())?,
        };
        if keys.manifest.is_empty() && keys.root.is_empty() {
            return Ok(None);
        }
        Ok(Some(Trust {
            args: args.clone(),
            keys,
            store,
        }))
    }

    /// Fetch the manifest at `url` and its signature and check them. When the
    /// origin cannot be reached, the stored manifest of the same URL is used.
    pub fn fetch_manifest(&self, url: &str, opts: &FetchOptions, max: u64) -> Result<String> {
        match fetch::fetch_text(url, opts, max) {
            Ok(text) => self.check_fetched(url, text, opts),
            Err(e @ FetchError::TooLarge { .. }) => Err(e.into()),
            Err(e) => {
                let e = Error::from(e);
                self.stored(url, &e)?.ok_or(e)
            }
        }
    }

    /// Check a manifest fetched from `url`: a newer key list first (with
    /// `--keys-url`), then the manifest's signature.
    pub fn check_fetched(&self, url: &str, text: String, opts: &FetchOptions) -> Result<String> {
        let keys = self.refresh_keys(opts);
        let at = self
            .args
            .signature_url
            .clone()
            .unwrap_or_else(|| format!("{url}.minisig"));
        let sig = fetch_signature(url, &at, opts)?;
        Ok(self.accept(&keys, url, text, &at, sig)?)
    }

    /// Check a local manifest file against FILE.minisig.
    pub fn check_file(&self, path: &Path, text: String) -> Result<String, TrustError> {
        let at = format!("{}.minisig", path.display());
        let sig = match read_small(Path::new(&at)) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustError::Missing {
                    manifest: path.display().to_string(),
                    at,
                })
            }
            // Too large or not text: the io error says which.
            Err(source) => {
                return Err(TrustError::ReadSignature {
                    path: at.into(),
                    source,
                })
            }
        };
        let source = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        self.accept(&self.keys, &source, text, &at, sig)
    }

    /// Check `text` signed by `sig` (read from `at`) and, on `apply`, keep
    /// it when it is newer than the accepted manifest. Returns the text.
    fn accept(
        &self,
        keys: &KeySet,
        source: &str,
        text: String,
        at: &str,
        sig: String,
    ) -> Result<String, TrustError> {
        let signature = Signature::parse(&sig).map_err(|source| TrustError::Malformed {
            at: at.to_owned(),
            source,
        })?;
        let last = self.store.load(Kind::Manifest)?;
        let last = last.as_ref().map(|d| &d.accepted);
        let verdict = policy::check(
            text.as_bytes(),
            &signature,
            &keys.manifest,
            last,
            &clock(last),
        )
        .map_err(|reason| TrustError::Refused {
            manifest: source.to_owned(),
            source: reason,
        })?;
        if let (Verdict::New(accepted), true) = (&verdict, self.args.commit) {
            let doc = StoredDoc {
                source: source.to_owned(),
                accepted: accepted.clone(),
                text,
                signature: sig,
            };
            self.store.save(Kind::Manifest, &doc)?;
            return Ok(doc.text);
        }
        Ok(text)
    }

    /// The stored manifest of `url`, when fetching or checking it failed
    /// with `err`: the device boots and converges with its origin down (or
    /// serving what the device refuses). It is checked again (keys may have
    /// rotated since) but used past its expiry: it is what ran before, and
    /// the origin that could serve a newer one is unreachable.
    /// `None` when no manifest of `url` is stored.
    pub fn stored(&self, url: &str, err: &Error) -> Result<Option<String>> {
        let Some(doc) = self.store.load(Kind::Manifest)? else {
            return Ok(None);
        };
        if doc.source != url {
            return Ok(None);
        }
        let sig = Signature::parse(&doc.signature).map_err(|source| TrustError::Malformed {
            at: self.store.path(Kind::Manifest).display().to_string(),
            source,
        })?;
        let ignore_expiry = Clock::unjudged(clock(None).now);
        policy::check(
            doc.text.as_bytes(),
            &sig,
            &self.keys.manifest,
            Some(&doc.accepted),
            &ignore_expiry,
        )
        .map_err(|reason| TrustError::Refused {
            manifest: format!("{url} (stored)"),
            source: reason,
        })?;
        eprintln!(
            "berth: {err}; applying the stored manifest, version {}",
            doc.accepted.version
        );
        Ok(Some(doc.text))
    }

    /// The keys to check a manifest with: those trusted now, or those of a
    /// newer key list at `--keys-url`. A key list that cannot be fetched or
    /// is refused leaves the keys as they are (and says why).
    fn refresh_keys(&self, opts: &FetchOptions) -> KeySet {
        let Some(url) = &self.args.keys_url else {
            return self.keys.clone();
        };
        match self.fetch_key_list(url, opts) {
            Ok(Some(keys)) => keys,
            Ok(None) => self.keys.clone(),
            Err(e) => {
                eprintln!(
                    "berth: key list `{url}`: {}; keeping the trusted keys",
                    crate::host::chain(e.as_ref())
                );
                self.keys.clone()
            }
        }
    }

    /// A newer key list's keys, or `None` when the list is the accepted one.
    fn fetch_key_list(
        &self,
        url: &str,
        opts: &FetchOptions,
    ) -> Result<Option<KeySet>, Box<dyn std::error::Error + Send + Sync>> {
        let max = u64::try_from(MAX_KEY_LIST).unwrap_or(u64::MAX);
        let text = fetch::fetch_text(url, opts, max)?;
        let at = format!("{url}.minisig");
        let sig_text = fetch_signature(url, &at, opts)?;
        let sig =
            Signature::parse(&sig_text).map_err(|source| TrustError::Malformed { at, source })?;
        let last = self.store.load(Kind::KeyList)?;
        let last = last.as_ref().map(|d| &d.accepted);
        let (verdict, keys) =
            keylist::check(text.as_bytes(), &sig, &self.keys, last, &clock(last))?;
        let Verdict::New(accepted) = verdict else {
            return Ok(None);
        };
        if self.args.commit {
            let doc = StoredDoc {
                source: url.to_owned(),
                accepted,
                text,
                signature: sig_text,
            };
            self.store.save(Kind::KeyList, &doc)?;
            eprintln!(
                "berth: key list `{url}`: accepted version {}",
                doc.accepted.version
            );
        }
        Ok(Some(keys))
    }
}

/// The device's clock, with the newest signing time seen as its floor.
fn clock(last: Option<&Accepted>) -> Clock {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let build = option_env!("SOURCE_DATE_EPOCH").and_then(|s| s.parse().ok());
    Clock::new(now, build, last).with_sync(ntp_synced())
}

/// Whether the kernel's clock is NTP-synchronised: adjtimex answers
/// TIME_ERROR while STA_UNSYNC is set, which ntpd (busybox's too), chrony
/// and systemd-timesyncd clear once they have set the clock.
fn ntp_synced() -> bool {
    // Room beyond the struct: on 32-bit musl the time64 `timex` the C
    // library fills may be larger than the one the libc crate declares.
    #[repr(C)]
    struct Timex {
        tx: libc::timex,
        spare: [u8; 256],
    }
    // SAFETY: plain data; modes 0 only reads the kernel's state.
    let mut t: Timex = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, exclusive pointer to our own (oversized) timex.
    let state = unsafe { libc::adjtimex(&mut t.tx) };
    state >= 0 && state != libc::TIME_ERROR
}

/// Read the keys at `path` (a .pub file or a directory of them); the default
/// directory may be absent, a path given may not.
fn read_keys(path: Option<&Path>) -> Result<KeySet, TrustError> {
    let given = path.is_some();
    let path = path.unwrap_or(Path::new(DEFAULT_KEYS));
    let read_err = |source| TrustError::ReadKeys {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if !given && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(KeySet::default())
        }
        Err(e) => return Err(read_err(e)),
    };
    let files = if meta.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    if files.len() > MAX_KEYS {
        return Err(TrustError::TooManyKeys {
            path: path.to_path_buf(),
        });
    }
    let mut set = KeySet::default();
    for file in files {
        let text = read_small(&file).map_err(|source| TrustError::ReadKeys {
            path: file.clone(),
            source,
        })?;
        let key = PublicKey::parse(&text).map_err(|source| TrustError::BadKey {
            path: file.clone(),
            source,
        })?;
        let root = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".root.pub"));
        if root {
            set.root.push(key);
        } else {
            set.manifest.push(key);
        }
    }
    Ok(set)
}

/// Read a key or signature file as text: at most [`MAX_FILE_SIZE`] bytes
/// and one more, so the minisign parser refuses a larger file by its size
/// (`berth sign` and `verify` read their files through here too).
pub(crate) fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let limit = u64::try_from(MAX_FILE_SIZE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Fetch a manifest's signature: a 404 means the manifest is unsigned.
fn fetch_signature(manifest: &str, at: &str, opts: &FetchOptions) -> Result<String, TrustError> {
    let max = u64::try_from(MAX_FILE_SIZE).unwrap_or(u64::MAX);
    fetch::fetch_text(at, opts, max).map_err(|e| match e {
        FetchError::Status { status: 404, .. } | FetchError::Status { status: 410, .. } => {
            TrustError::Missing {
                manifest: manifest.to_owned(),
                at: at.to_owned(),
            }
        }
        FetchError::TooLarge { .. } => TrustError::SignatureTooLarge { at: at.to_owned() },
        source => TrustError::FetchSignature {
            at: at.to_owned(),
            source,
        },
    })
}
