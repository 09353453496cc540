//! Unit tests of the minisign formats: files made by minisign 0.11 (a
//! passphrase-free key, `-W`), every refusal with its line, and verify's.

use super::*;

const PUB: &str = "untrusted comment: minisign public key 1EF0068D5E0647C3\nRWTDRwZejQbwHsPeUp0OWmf/uXBzYyE+vhOY49X5BV5cNrAlfm6MDa9i\n";
const KEY: &str = "untrusted comment: minisign encrypted secret key\nRWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAw0cGXo0G8B5G03Y5JnxzdlQax13a90s8Vvl47lqvYYPFKi6atF5QM8PeUp0OWmf/uXBzYyE+vhOY49X5BV5cNrAlfm6MDa9iAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
const DATA: &[u8] = b"hello berth\n";
/// `minisign -S -t "timestamp:1700000000\tfile:fx.txt\thashed"`.
const SIG_ED: &str = "untrusted comment: signature from minisign secret key\nRUTDRwZejQbwHtfJyNUle2e1HWrXSWULmQQgxaOP4iqFYbw8mQhL/Ja1mPKujVhEiIKkSHbNkClCsy4g/51PynhT3uRyLdNsXQ4=\ntrusted comment: timestamp:1700000000\tfile:fx.txt\thashed\n71J3V6ssFgceXa8sjtsu2458xsOG7PDRthXCr+exgkrkhAFtsjMaNCRX69imtp9cRYF091OpEBTXnyAJ6UO7Bg==\n";
/// `minisign -S -l` (legacy, over the file itself).
const SIG_LEGACY: &str = "untrusted comment: signature from minisign secret key\nRWTDRwZejQbwHnVnRYKSPwGLRPe5BzUPX1tRs9Q37+fmOI/biMeoJ900i2EGywY835+fKNMjGKcCIHHZnRZ9oF/DsAQ0pXIgwgM=\ntrusted comment: timestamp:1796170069\tfile:fx.txt\nrb0CKN3W06zSyisMJLtlc5EDw8S7LVnIimfzTvEGnURb/fqKEJB5/Ssc4aNWs38QGFlBQrR6tzYf/+8Uqf8xBA==\n";

fn line_of(e: &FormatError) -> Option<usize> {
    match e {
        FormatError::Missing { line, .. }
        | FormatError::Prefix { line, .. }
        | FormatError::Base64 { line }
        | FormatError::Length { line, .. }
        | FormatError::Algorithm { line, .. }
        | FormatError::KeyAlgorithm { line, .. }
        | FormatError::LineBreak { line }
        | FormatError::Trailing { line, .. } => Some(*line),
        _ => None,
    }
}

/// A key pair made here, passphrase-free (no scrypt in unit tests).
fn berth_key() -> SecretKey {
    SecretKey::generate(None).unwrap()
}

#[test]
fn minisign_public_key_parses_and_writes_back() {
    let pk = PublicKey::parse(PUB).unwrap();
    assert_eq!(pk.id_hex(), "1EF0068D5E0647C3");
    assert_eq!(pk.to_file(), PUB);
    // The base64 line alone (an inline key), with or without a newline.
    let line = PUB.lines().nth(1).unwrap();
    assert_eq!(PublicKey::parse(line), Ok(pk.clone()));
    assert_eq!(PublicKey::parse(&format!("{line}\r\n")), Ok(pk.clone()));
    // As a config file may quote it, with spaces around.
    assert_eq!(PublicKey::parse(&format!("  {line} ")), Ok(pk.clone()));
    assert_eq!(pk.to_base64(), line);
}

#[test]
fn minisign_signatures_verify_prehashed_and_legacy() {
    let pk = PublicKey::parse(PUB).unwrap();
    let ed = Signature::parse(SIG_ED).unwrap();
    assert!(ed.prehashed);
    assert_eq!(
        ed.trusted_comment,
        "timestamp:1700000000\tfile:fx.txt\thashed"
    );
    assert_eq!(ed.untrusted_comment, "signature from minisign secret key");
    assert_eq!(verify(&pk, &ed, DATA), Ok(()));
    assert_eq!(ed.to_file(), SIG_ED);
    let legacy = Signature::parse(SIG_LEGACY).unwrap();
    assert!(!legacy.prehashed);
    assert_eq!(verify(&pk, &legacy, DATA), Ok(()));
    assert_eq!(legacy.to_file(), SIG_LEGACY);
    // A CRLF copy of the file verifies the same.
    let crlf = SIG_ED.replace('\n', "\r\n");
    assert_eq!(verify(&pk, &Signature::parse(&crlf).unwrap(), DATA), Ok(()));
}

#[test]
fn minisign_unencrypted_secret_key_signs() {
    let sk = SecretKey::parse(KEY, None).unwrap();
    assert!(!sk.encrypted());
    assert_eq!(sk.public(), PublicKey::parse(PUB).unwrap());
    let sig = sign(&sk, b"data", "version:1", "u");
    assert_eq!(verify(&sk.public(), &sig, b"data"), Ok(()));
    // Written back, it is the same key (berth fills in the checksum).
    let again = SecretKey::parse(&sk.to_file(), None).unwrap();
    assert_eq!(again.public(), sk.public());
}

#[test]
fn verify_refuses_every_way() {
    let pk = PublicKey::parse(PUB).unwrap();
    let good = Signature::parse(SIG_ED).unwrap();
    // One byte of the file changed.
    let mut data = DATA.to_vec();
    data[0] ^= 1;
    assert_eq!(verify(&pk, &good, &data), Err(VerifyError::File));
    let legacy = Signature::parse(SIG_LEGACY).unwrap();
    assert_eq!(verify(&pk, &legacy, &data), Err(VerifyError::File));
    // A prehashed signature relabelled legacy (and back) does not verify.
    let mut relabelled = good.clone();
    relabelled.prehashed = false;
    assert_eq!(verify(&pk, &relabelled, DATA), Err(VerifyError::File));
    // The trusted comment edited (a later version, no expiry).
    let mut edited = good.clone();
    edited.trusted_comment = "timestamp:1700000000\tfile:fx.txt\tversion:99".into();
    assert_eq!(verify(&pk, &edited, DATA), Err(VerifyError::Comment));
    // Edited in the file itself.
    let text = SIG_ED.replace("file:fx.txt", "file:fx.txu");
    let e = verify(&pk, &Signature::parse(&text).unwrap(), DATA).unwrap_err();
    assert_eq!(e, VerifyError::Comment);
    assert_eq!(e.to_string(), "trusted comment was altered");
    // The untrusted comment is not signed.
    let mut untrusted = good.clone();
    untrusted.untrusted_comment = "anything".into();
    assert_eq!(verify(&pk, &untrusted, DATA), Ok(()));
    // Another key.
    let other = berth_key().public();
    let e = verify(&other, &good, DATA).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("signed by key 1EF0068D5E0647C3, not {}", other.id_hex())
    );
    // Another key under the same id: the signature is bad.
    let impostor = PublicKey { id: pk.id, ..other };
    assert_eq!(verify(&impostor, &good, DATA), Err(VerifyError::File));
}

#[test]
fn berth_sign_verify_roundtrip() {
    let sk = berth_key();
    let pk = sk.public();
    let data = vec![7u8; 1 << 20];
    let sig = sign(&sk, &data, "timestamp:1\tversion:3", "signature from berth");
    assert!(sig.prehashed);
    let parsed = Signature::parse(&sig.to_file()).unwrap();
    assert_eq!(parsed, sig);
    assert_eq!(verify(&pk, &parsed, &data), Ok(()));
    assert_eq!(verify(&pk, &parsed, &data[1..]), Err(VerifyError::File));
    // Public and secret key files round-trip.
    assert_eq!(PublicKey::parse(&pk.to_file()), Ok(pk.clone()));
    let sk2 = SecretKey::parse(&sk.to_file(), None).unwrap();
    assert_eq!(sk2.public(), pk);
    // A line break in a comment cannot add a line to the file.
    let sig = sign(&sk, b"x", "version:1\ntrusted comment: version:9", "a\r\nb");
    let parsed = Signature::parse(&sig.to_file()).unwrap();
    assert_eq!(
        parsed.trusted_comment,
        "version:1 trusted comment: version:9"
    );
    assert_eq!(verify(&pk, &parsed, b"x"), Ok(()));
}

#[test]
fn encrypted_secret_key_roundtrip_and_wrong_passphrase() {
    // Small scrypt limits: N = 2^10.
    let sk = SecretKey::generate_with(Some("correct horse"), 32_768, 1 << 20).unwrap();
    assert!(sk.encrypted());
    let file = sk.to_file();
    let back = SecretKey::parse(&file, Some("correct horse")).unwrap();
    assert_eq!(back.public(), sk.public());
    assert_eq!(back.to_file(), file);
    assert_eq!(
        SecretKey::parse(&file, Some("wrong")).unwrap_err(),
        FormatError::Checksum
    );
    assert_eq!(
        SecretKey::parse(&file, None).unwrap_err(),
        FormatError::NeedPassphrase
    );
}

#[test]
fn signature_format_errors_name_their_line() {
    let lines: Vec<&str> = SIG_ED.lines().collect();
    let with = |i: usize, text: &str| {
        let mut l = lines.clone();
        l[i] = text;
        l.join("\n")
    };
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "missing"),
        (lines[..1].join("\n"), 2, "missing"),
        (lines[..2].join("\n") + "\n\n", 3, "missing"),
        (lines[..3].join("\n"), 4, "missing"),
        (
            with(0, "comment: x"),
            1,
            "missing `untrusted comment: ` prefix",
        ),
        (with(1, "RUTD!!!"), 2, "not base64"),
        (with(1, "RUTDRwZejQbwHg=="), 2, "is 10 bytes, not 74"),
        (
            with(1, &base64_encode(&[b"Xy", &[0u8; 72][..]].concat())),
            2,
            "`Xy` is not Ed25519",
        ),
        (
            with(2, "timestamp:1"),
            3,
            "missing `trusted comment: ` prefix",
        ),
        (with(2, "trusted comment: a\rb"), 3, "carriage return"),
        (with(3, "AAAA"), 4, "is 3 bytes, not 64"),
        (SIG_ED.to_owned() + "\nextra\n", 6, "unexpected text"),
    ];
    for (text, line, msg) in cases {
        let e = Signature::parse(&text).unwrap_err();
        assert_eq!(line_of(&e), Some(line), "{e} for {text:?}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
        assert!(e.to_string().contains(msg), "{e} lacks {msg}");
    }
    let huge = format!("{SIG_ED}{}", " ".repeat(MAX_FILE_SIZE));
    assert!(matches!(
        Signature::parse(&huge),
        Err(FormatError::TooLarge { .. })
    ));
}

#[test]
fn key_format_errors_name_their_line() {
    let line = PUB.lines().nth(1).unwrap();
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "missing"),
        ("untrusted comment: x\n".into(), 2, "missing"),
        ("untrusted comment:x\n".to_owned() + line, 1, "prefix"),
        (format!("untrusted comment: x\n{line}="), 2, "not base64"),
        ("AAAA".into(), 1, "is 3 bytes, not 42"),
        (
            base64_encode(&[b"ED", &[0u8; 40][..]].concat()),
            1,
            "`ED` is not Ed25519",
        ),
        (format!("{PUB}junk"), 3, "unexpected text"),
    ];
    for (text, n, msg) in cases {
        let e = PublicKey::parse(&text).unwrap_err();
        assert_eq!(line_of(&e), Some(n), "{e} for {text:?}");
        assert!(e.to_string().contains(msg), "{e} lacks {msg}");
    }
    let raw = base64_decode(KEY.lines().nth(1).unwrap()).unwrap();
    let key_with = |at: usize, b: &[u8]| {
        let mut r = raw.clone();
        r[at..at + b.len()].copy_from_slice(b);
        format!("untrusted comment: k\n{}\n", base64_encode(&r))
    };
    let cases = [
        (key_with(0, b"RS"), "`RS` is not Ed25519"),
        (key_with(2, b"Ar"), "key derivation algorithm `Ar`"),
        (key_with(4, b"S2"), "checksum algorithm `S2`"),
    ];
    for (text, msg) in cases {
        let e = SecretKey::parse(&text, None).unwrap_err();
        assert_eq!(line_of(&e), Some(2));
        assert!(e.to_string().contains(msg), "{e}");
    }
    // A damaged key: its checksum (or its halves) no longer match.
    let sk = berth_key();
    let mut raw = base64_decode(sk.to_file().lines().nth(1).unwrap()).unwrap();
    raw[70] ^= 1;
    let text = format!("untrusted comment: k\n{}\n", base64_encode(&raw));
    assert_eq!(
        SecretKey::parse(&text, None).unwrap_err(),
        FormatError::Checksum
    );
    let e = SecretKey::parse(&key_with(100, &[1]), None).unwrap_err();
    assert_eq!(e, FormatError::KeyPair);
}

#[test]
fn base64_is_strict() {
    for (data, text) in [
        (&b""[..], ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foo", "Zm9v"),
    ] {
        assert_eq!(base64_encode(data), text);
        assert_eq!(base64_decode(text).as_deref(), Some(data));
    }
    for bad in ["Zg=", "Zh==", "Zm9=", "Z===", "Zg==Zg==", "Zm 9", "Zm9v\n"] {
        assert_eq!(base64_decode(bad), None, "{bad}");
    }
}
