//! `berth key generate`, `berth sign` and `berth verify`: minisign keys and
//! signatures over manifests (the formats are `fleet::minisign`'s). The
//! trusted comment of a berth signature states the manifest's version (the
//! anti-rollback counter) and its expiry (`fleet::signed`). This file does the
//! I/O the fleet layer leaves out: key files, the passphrase, `.minisig`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::cli::args::{Cmd, Opt, Parsed, Pos};
use crate::cli::error::{Context, Result};
use crate::cli::UsageError;
use crate::fleet::minisign::{self, FormatError, PublicKey, SecretKey, Signature, VerifyError};
use crate::fleet::signed::{FactsError, SignedFacts};
use crate::fleet::time::{format_rfc3339, parse_rfc3339};
use crate::host::records::write_atomic;

/// The environment variable a passphrase can come from (CI, scripts).
pub const PASSPHRASE_ENV: &str = "BERTH_PASSPHRASE";

const PASSPHRASE_FILE: Opt = Opt::path(
    "passphrase-file",
    "FILE",
    "Read the key's passphrase from FILE's first line [default: $BERTH_PASSPHRASE, else ask]",
);

/// `berth key`'s table.
pub const KEY: Cmd = Cmd {
    subcommands: &[Cmd {
        args: &[Pos::required(
            "PATH",
            "Write the secret key to PATH.key and the public key to PATH.pub",
        )],
        opts: &[
            Opt::flag(
                "no-passphrase",
                "Leave the secret key unencrypted (CI; keep the file safe)",
            ),
            PASSPHRASE_FILE,
        ],
        conflicts: &[("no-passphrase", "passphrase-file")],
        ..Cmd::new("generate", "Make a new signing key pair (minisign format)")
    }],
    ..Cmd::new("key", "Manage signing keys: generate")
};

/// `berth sign`'s table.
pub const SIGN: Cmd = Cmd {
    args: &[Pos::required("FILE", "The file to sign (a manifest)")],
    opts: &[
        Opt::path("key", "PATH.key", "The secret key").required(),
        Opt::value(
            "version",
            "N",
            "The manifest's version, a positive integer: devices refuse a lower one than they ran",
        )
        .required(),
        Opt::value(
            "expires",
            "RFC3339",
            "Devices refuse the signature after this time (e.g. 2027-01-31T00:00:00Z)",
        ),
        PASSPHRASE_FILE,
    ],
    ..Cmd::new(
        "sign",
        "Sign a file into FILE.minisig, with its version and expiry",
    )
};

/// `berth verify`'s table.
pub const VERIFY: Cmd = Cmd {
    args: &[Pos::required("FILE", "The signed file")],
    opts: &[
        Opt::path("key", "PATH.pub", "The public key to trust").required(),
        Opt::path(
            "signature",
            "FILE.minisig",
            "The signature [default: FILE.minisig]",
        ),
    ],
    ..Cmd::new("verify", "Check a file's minisign signature and its expiry")
};

/// The signing commands' arguments.
#[derive(Debug)]
pub enum SignCommand {
    /// `berth key generate PATH`.
    Generate {
        /// PATH (PATH.key and PATH.pub are written).
        path: PathBuf,
        /// `--no-passphrase`.
        no_passphrase: bool,
        /// `--passphrase-file`.
        passphrase_file: Option<PathBuf>,
    },
    /// `berth sign FILE`.
    Sign {
        /// The file to sign.
        file: PathBuf,
        /// `--key`.
        key: PathBuf,
        /// `--version`.
        version: u64,
        /// `--expires`, in unix seconds.
        expires: Option<i64>,
        /// `--passphrase-file`.
        passphrase_file: Option<PathBuf>,
    },
    /// `berth verify FILE`.
    Verify {
        /// The signed file.
        file: PathBuf,
        /// `--key`.
        key: PathBuf,
        /// `--signature`, or FILE.minisig.
        signature: PathBuf,
    },
}

impl SignCommand {
    /// Read from the parsed command line ([`KEY`], [`SIGN`], [`VERIFY`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        let required = |long: &str| p.path(long).unwrap_or_default();
        Ok(match p.commands.first().copied().unwrap_or_default() {
            "sign" => {
                let version = p.num::<u64>("version")?.unwrap_or(0);
                if version == 0 {
                    return Err(UsageError(
                        "--version must be a positive integer (the manifest's version)".into(),
                    ));
                }
                let expires = match p.string("expires")? {
                    Some(t) => {
                        Some(parse_rfc3339(&t).map_err(|e| UsageError(format!("--expires: {e}")))?)
                    }
                    None => None,
                };
                SignCommand::Sign {
                    file: p.required_path(0)?,
                    key: required("key"),
                    version,
                    expires,
                    passphrase_file: p.path("passphrase-file"),
                }
            }
            "verify" => {
                let file = p.required_path(0)?;
                SignCommand::Verify {
                    signature: p
                        .path("signature")
                        .unwrap_or_else(|| with_suffix(&file, ".minisig")),
                    file,
                    key: required("key"),
                }
            }
            _ => SignCommand::Generate {
                path: p.required_path(0)?,
                no_passphrase: p.has("no-passphrase"),
                passphrase_file: p.path("passphrase-file"),
            },
        })
    }
}

/// A signature or key that berth refuses (exit code 2). Each names its file;
/// the cause (`bad signature`, `line 3: ...`) follows it.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The signature does not verify.
    #[error("`{}`", .file.display())]
    Refused {
        /// The signed file.
        file: PathBuf,
        /// Why.
        #[source]
        source: VerifyError,
    },
    /// A key or signature file is malformed (or the passphrase is wrong).
    #[error("`{}`", .file.display())]
    Format {
        /// The key or signature file.
        file: PathBuf,
        /// What is wrong, with its line.
        #[source]
        source: FormatError,
    },
    /// The signed facts are malformed.
    #[error("`{}`", .file.display())]
    Facts {
        /// The signature file.
        file: PathBuf,
        /// Which fact.
        #[source]
        source: FactsError,
    },
    /// The signature's expiry has passed.
    #[error("`{}`: the signature expired at {expired}", .file.display())]
    Expired {
        /// The signed file.
        file: PathBuf,
        /// The `expires:` time.
        expired: String,
    },
    /// `key generate` would overwrite a file.
    #[error("`{}` already exists; berth never overwrites a key (remove it, or choose another PATH)", .file.display())]
    Exists {
        /// The key file.
        file: PathBuf,
    },
}

/// Run a signing command.
pub fn run(cmd: &SignCommand) -> Result<()> {
    match cmd {
        SignCommand::Generate {
            path,
            no_passphrase,
            passphrase_file,
        } => generate(path, *no_passphrase, passphrase_file.as_deref()),
        SignCommand::Sign {
            file,
            key,
            version,
            expires,
            passphrase_file,
        } => sign(file, key, *version, *expires, passphrase_file.as_deref()),
        SignCommand::Verify {
            file,
            key,
            signature,
        } => verify(file, key, signature),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn generate(path: &Path, no_passphrase: bool, passphrase_file: Option<&Path>) -> Result<()> {
    let (key_path, pub_path) = (with_suffix(path, ".key"), with_suffix(path, ".pub"));
    for f in [&key_path, &pub_path] {
        if f.symlink_metadata().is_ok() {
            return Err(SignError::Exists { file: f.clone() }.into());
        }
    }
    let pass = if no_passphrase {
        None
    } else {
        Some(passphrase(passphrase_file, true)?)
    };
    let sk = SecretKey::generate(pass.as_deref()).context("generate a key")?;
    let pk = sk.public();
    write_new(&key_path, sk.to_file().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, pk.to_file().as_bytes(), 0o644) {
        // The pair goes together: no secret key without its public key.
        let _ = fs::remove_file(&key_path);
        return Err(e);
    }
    outln!(
        "key {}: secret key `{}`{}, public key `{}`",
        pk.id_hex(),
        key_path.display(),
        if sk.encrypted() {
            ""
        } else {
            " (no passphrase)"
        },
        pub_path.display()
    )?;
    Ok(())
}

/// Create `path` (O_EXCL: never over an existing file or link) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(SignError::Exists {
                file: path.to_owned(),
            }
            .into())
        }
        other => other.with_context(|| format!("create `{}`", path.display()))?,
    };
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write `{}`", path.display()))
}

/// Read a key or signature file (at most [`minisign::MAX_FILE_SIZE`] bytes).
fn read_small(path: &Path) -> Result<String> {
    crate::cli::trust::read_small(path).with_context(|| format!("read `{}`", path.display()))
}

fn format_err(file: &Path) -> impl FnOnce(FormatError) -> SignError + '_ {
    move |source| SignError::Format {
        file: file.to_owned(),
        source,
    }
}

fn sign(
    file: &Path,
    key: &Path,
    version: u64,
    expires: Option<i64>,
    passphrase_file: Option<&Path>,
) -> Result<()> {
    let key_text = read_small(key)?;
    let sk = match SecretKey::parse(&key_text, None) {
        Err(FormatError::NeedPassphrase) => {
            let pass = passphrase(passphrase_file, false)?;
            SecretKey::parse(&key_text, Some(&pass)).map_err(format_err(key))?
        }
        other => other.map_err(format_err(key))?,
    };
    let data = fs::read(file).with_context(|| format!("read `{}`", file.display()))?;
    let now = unix_now();
    let facts = SignedFacts {
        timestamp: Some(now),
        file: file.file_name().map(|n| n.to_string_lossy().into_owned()),
        version: Some(version),
        expires,
    };
    let untrusted = format!("signature from berth secret key {}", sk.public().id_hex());
    let sig = minisign::sign(&sk, &data, &facts.to_comment(), &untrusted);
    // A bare file name's parent is "": write_atomic syncs the directory.
    let out = match file.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new(".").join(with_suffix(file, ".minisig")),
        _ => with_suffix(file, ".minisig"),
    };
    write_atomic(&out, sig.to_file().as_bytes())
        .with_context(|| format!("write `{}`", out.display()))?;
    outln!(
        "{}: signed by key {}, version {version}, {}",
        with_suffix(file, ".minisig").display(),
        sk.public().id_hex(),
        expiry_text(expires)
    )?;
    Ok(())
}

/// Seconds since 1970 (0 for a clock before it).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn expiry_text(expires: Option<i64>) -> String {
    expires.map_or_else(
        || "no expiry".into(),
        |t| format!("expires {}", format_rfc3339(t)),
    )
}

fn verify(file: &Path, key: &Path, signature: &Path) -> Result<()> {
    let pk = PublicKey::parse(&read_small(key)?).map_err(format_err(key))?;
    let sig = Signature::parse(&read_small(signature)?).map_err(format_err(signature))?;
    let data = fs::read(file).with_context(|| format!("read `{}`", file.display()))?;
    minisign::verify(&pk, &sig, &data).map_err(|source| SignError::Refused {
        file: file.to_owned(),
        source,
    })?;
    // Only now is the trusted comment trusted.
    let facts = SignedFacts::parse(&sig.trusted_comment).map_err(|source| SignError::Facts {
        file: signature.to_owned(),
        source,
    })?;
    let now = unix_now();
    if let Some(t) = facts.expires.filter(|t| *t < now) {
        return Err(SignError::Expired {
            file: file.to_owned(),
            expired: format_rfc3339(t),
        }
        .into());
    }
    let version = facts
        .version
        .map_or_else(|| "no version".into(), |v| format!("version {v}"));
    outln!(
        "{}: signed by key {}, {version}, {}",
        file.display(),
        pk.id_hex(),
        expiry_text(facts.expires)
    )?;
    Ok(())
}

/// The key's passphrase: `--passphrase-file`, `$BERTH_PASSPHRASE`, else asked
/// on the terminal (twice for a new key), with echo off.
fn passphrase(file: Option<&Path>, new: bool) -> Result<String> {
    if let Some(f) = file {
        let text = fs::read_to_string(f).with_context(|| format!("read `{}`", f.display()))?;
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(UsageError(format!("`{}`: the passphrase is empty", f.display())).into());
        }
        return Ok(line.to_owned());
    }
    if let Some(p) = std::env::var_os(PASSPHRASE_ENV).filter(|p| !p.is_empty()) {
        return p
            .into_string()
            .map_err(|_| UsageError(format!("${PASSPHRASE_ENV} is not valid UTF-8")).into());
    }
    let no_tty = || {
        UsageError(format!(
            "no terminal to ask for the passphrase; use --passphrase-file FILE or \
             ${PASSPHRASE_ENV}{}",
            if new { ", or --no-passphrase" } else { "" }
        ))
    };
    let mut tty = tty::Tty::open().map_err(|_| no_tty())?;
    let first = tty.ask("passphrase: ").context("read the passphrase")?;
    if first.is_empty() {
        return Err(UsageError("the passphrase is empty".into()).into());
    }
    if new
        && tty
            .ask("passphrase again: ")
            .context("read the passphrase")?
            != first
    {
        return Err(UsageError("the two passphrases differ".into()).into());
    }
    Ok(first)
}

mod tty {
    //! The controlling terminal with echo off while a passphrase is typed.
    use std::fs::{File, OpenOptions};
    use std::io::{self, BufRead, BufReader, Write};
    use std::os::fd::AsRawFd;

    pub struct Tty {
        file: File,
    }

    impl Tty {
        pub fn open() -> io::Result<Tty> {
            let file = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
            Ok(Tty { file })
        }

        /// Print `prompt`, read one line with echo off, restore the terminal.
        pub fn ask(&mut self, prompt: &str) -> io::Result<String> {
            let fd = self.file.as_raw_fd();
            // SAFETY: termios is plain old data; tcgetattr fills it for an
            // open fd and fails cleanly on a non-terminal.
            let mut old: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: fd is open for the life of self.file; old is writable.
            if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut quiet = old;
            quiet.c_lflag &= !libc::ECHO;
            quiet.c_lflag |= libc::ECHONL;
            // SAFETY: as above; quiet is a valid termios copied from old.
            if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let result = (|| {
                self.file.write_all(prompt.as_bytes())?;
                let mut line = String::new();
                BufReader::new(&self.file).read_line(&mut line)?;
                Ok(line.trim_end_matches(['\n', '\r']).to_owned())
            })();
            // SAFETY: restores the settings read above on the same fd.
            unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &old) };
            result
        }
    }
}
