//! TLS for https image sources: rustls (ring) trusting a PEM CA bundle read
//! from the device (OpenWrt's ca-bundle, Yocto's ca-certificates), not a
//! compiled-in root list, so the fleet's own CA works without a rebuild.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{PrivateKeyDer, SignatureVerificationAlgorithm};
use rustls::sign::SigningKey;
use rustls::SignatureScheme;
use webpki::ring as alg;

use super::transfer::FetchError;

/// ring's primitives (P-256 ECDSA from `p256`, see [`P256`]), with only what
/// a client that verifies servers needs:
/// the AES-GCM suites every TLS server offers, TLS 1.3 only unless the
/// `tls12` feature is on (no ChaCha20-Poly1305, whose
/// x86_64 and aarch64 assembly is tens of KiB that barely compresses), the
/// X25519 and P-384 key exchange (every TLS 1.3 server offers X25519; P-256
/// ECDH would bring ring's table back), the web PKI's signature algorithms, and no private
/// keys (berth presents no client certificate, so ring's signing code stays
/// out). rustls' `default_provider()` would link all of it.
fn provider() -> CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            #[cfg(feature = "tls12")]
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            #[cfg(feature = "tls12")]
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            #[cfg(feature = "tls12")]
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            #[cfg(feature = "tls12")]
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP384R1],
        signature_verification_algorithms: SIGNATURES,
        secure_random: &Kernel,
        key_provider: &Kernel,
    }
}

/// Server signatures berth verifies: ECDSA P-256/P-384 and RSA (PKCS#1 and
/// PSS), 2048 to 8192 bits; each TLS scheme maps to the algorithms that can
/// carry it (in TLS 1.2 the ECDSA curve is not fixed by the scheme).
static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        P256_SHA256,
        P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[alg::ECDSA_P384_SHA384, P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[P256_SHA256, alg::ECDSA_P384_SHA256],
        ),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[alg::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[alg::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[alg::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// ECDSA on P-256, on x86_64 and aarch64 verified with RustCrypto's `p256`
/// rather than ring: ring's P-256 there carries a 148 KiB precomputed table that does
/// not compress (15 % of the firmware budget) to speed up signing and key
/// exchange, which a client that only verifies does not need
/// (docs/design.md, "P-256 without ring's table").
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Debug)]
struct P256 {
    /// `ecdsa-with-SHA384` rather than `ecdsa-with-SHA256`.
    sha384: bool,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static P256_SHA256: &dyn SignatureVerificationAlgorithm = &P256 { sha384: false };
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static P256_SHA384: &dyn SignatureVerificationAlgorithm = &P256 { sha384: true };
// Elsewhere ring's P-256 is portable code with small tables: it verifies.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
static P256_SHA256: &dyn SignatureVerificationAlgorithm = alg::ECDSA_P256_SHA256;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
static P256_SHA384: &dyn SignatureVerificationAlgorithm = alg::ECDSA_P256_SHA384;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl SignatureVerificationAlgorithm for P256 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), rustls::pki_types::InvalidSignature> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        use sha2::Digest;
        let bad = |_| rustls::pki_types::InvalidSignature;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(bad)?;
        let sig = p256::ecdsa::Signature::from_der(signature).map_err(bad)?;
        // A SHA-384 digest is cut to the curve's 256 bits (FIPS 186-4, 6.4).
        let digest: Vec<u8> = if self.sha384 {
            sha2::Sha384::digest(message).to_vec()
        } else {
            sha2::Sha256::digest(message).to_vec()
        };
        key.verify_prehash(&digest, &sig).map_err(bad)
    }

    fn public_key_alg_id(&self) -> rustls::pki_types::AlgorithmIdentifier {
        rustls::pki_types::alg_id::ECDSA_P256
    }

    fn signature_alg_id(&self) -> rustls::pki_types::AlgorithmIdentifier {
        if self.sha384 {
            rustls::pki_types::alg_id::ECDSA_SHA384
        } else {
            rustls::pki_types::alg_id::ECDSA_SHA256
        }
    }
}

/// A handshake error as the user should read it: a server that answers the
/// TLS 1.3 hello with a protocol-version alert speaks only older TLS.
pub(crate) fn explain(e: std::io::Error) -> std::io::Error {
    let old_server = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        == Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion,
        ));
    if old_server && cfg!(not(feature = "tls12")) {
        return std::io::Error::new(
            e.kind(),
            "the server does not speak TLS 1.3, the only version this berth speaks \
             (upgrade the server, or build berth with the `tls12` feature)",
        );
    }
    e
}

/// Randomness from the kernel (getrandom(2), Linux 3.17+); no keys to load.
#[derive(Debug)]
struct Kernel;

impl SecureRandom for Kernel {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`.
            let n = unsafe { libc::syscall(libc::SYS_getrandom, rest.as_mut_ptr(), rest.len(), 0) };
            match usize::try_from(n) {
                Ok(n) => done += n,
                Err(_)
                    if std::io::Error::last_os_error().kind()
                        == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(GetRandomFailed),
            }
        }
        Ok(())
    }
}

impl KeyProvider for Kernel {
    fn load_private_key(
        &self,
        _key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General(
            "berth presents no client certificate".into(),
        ))
    }
}

/// A client config trusting every certificate in the PEM file `bundle`.
pub(crate) fn client_config(bundle: &Path) -> Result<Arc<rustls::ClientConfig>, FetchError> {
    let ca_err = |source| FetchError::CaBundle {
        path: bundle.to_owned(),
        source,
    };
    let f = File::open(bundle).map_err(ca_err)?;
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(f))
        .collect::<Result<_, _>>()
        .map_err(ca_err)?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ca_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no PEM certificate in it",
        )));
    }
    let provider = Arc::new(provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ca_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P-256 signatures made by openssl verify; a changed message, another
    /// key, the other hash and bad encodings do not.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn p256_signatures_from_openssl() {
        let d = tempfile::tempdir().unwrap();
        let sh = |cmd: &str| {
            let ok = std::process::Command::new("sh")
                .args(["-c", cmd])
                .current_dir(d.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "{cmd}");
        };
        std::fs::write(d.path().join("msg"), b"tls 1.3, server CertificateVerify").unwrap();
        for k in ["a", "b"] {
            sh(&format!(
                "openssl ecparam -name prime256v1 -genkey -noout -out {k}.pem"
            ));
            sh(&format!(
                "openssl ec -in {k}.pem -pubout -outform DER -out {k}.spki 2>/dev/null"
            ));
        }
        sh("openssl dgst -sha256 -sign a.pem -out s256 msg");
        sh("openssl dgst -sha384 -sign a.pem -out s384 msg");
        let read = |f: &str| std::fs::read(d.path().join(f)).unwrap();
        // The subjectPublicKey of the SPKI: the 65-byte uncompressed point.
        let point = |f: &str| {
            let spki = read(f);
            spki[spki.len() - 65..].to_vec()
        };
        let (msg, a, b) = (read("msg"), point("a.spki"), point("b.spki"));
        let (s256, s384) = (read("s256"), read("s384"));
        assert!(P256_SHA256.verify_signature(&a, &msg, &s256).is_ok());
        assert!(P256_SHA384.verify_signature(&a, &msg, &s384).is_ok());
        assert!(P256_SHA256
            .verify_signature(&a, b"another message", &s256)
            .is_err());
        assert!(
            P256_SHA256.verify_signature(&b, &msg, &s256).is_err(),
            "another key"
        );
        assert!(
            P256_SHA256.verify_signature(&a, &msg, &s384).is_err(),
            "the other hash"
        );
        assert!(P256_SHA256
            .verify_signature(&a, &msg, &s256[..s256.len() - 1])
            .is_err());
        assert!(P256_SHA256.verify_signature(&a[..64], &msg, &s256).is_err());
        assert!(
            P256_SHA256.verify_signature(&[4; 65], &msg, &s256).is_err(),
            "not on the curve"
        );
    }

    #[test]
    fn the_provider_offers_aes_gcm_only_and_loads_no_key() {
        let p = provider();
        assert!(!p.cipher_suites.is_empty());
        for s in &p.cipher_suites {
            let name = format!("{:?}", s.suite());
            assert!(name.contains("AES_") && name.contains("GCM"), "{name}");
        }
        let mut buf = [0u8; 64];
        Kernel.fill(&mut buf).unwrap();
        assert!(buf.iter().any(|b| *b != 0), "getrandom filled nothing");
        let key = PrivateKeyDer::Pkcs8(vec![0u8; 8].into());
        assert!(Kernel.load_private_key(key).is_err());
    }
}
