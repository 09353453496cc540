//! scrypt (RFC 7914), the key derivation that encrypts a minisign secret key
//! ([`super::minisign::SecretKey`]), with libsodium's choice of N, r, p from an
//! opslimit and a memlimit (`crypto_pwhash_scryptsalsa208sha256`, which
//! minisign calls). PBKDF2-HMAC-SHA256 is ring's.

use std::num::NonZeroU32;

/// minisign's opslimit for a new key (`crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE`).
pub const OPSLIMIT_SENSITIVE: u64 = 33_554_432;
/// minisign's memlimit for a new key: 1 GiB of scrypt memory.
pub const MEMLIMIT_SENSITIVE: u64 = 1_073_741_824;
/// The most scrypt memory berth spends on a key (a key file names its own
/// memlimit; a hostile one must not make berth allocate without bound).
pub const MAX_MEMORY: u64 = 2 << 30;

/// Why scrypt cannot run with these parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScryptError {
    /// N is not a power of two above 1, or r or p is 0, or r*p too large.
    #[error("scrypt parameters N={n}, r={r}, p={p} are invalid")]
    Params {
        /// CPU/memory cost.
        n: u64,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// The parameters need more memory than [`MAX_MEMORY`] or than the
    /// system gives.
    #[error("scrypt needs {bytes} bytes of memory, more than berth can allocate")]
    Memory {
        /// 128 * r * N.
        bytes: u64,
    },
}

/// N (as log2), r and p from libsodium's opslimit and memlimit, as
/// `crypto_pwhash_scryptsalsa208sha256` picks them.
pub fn pick_params(opslimit: u64, memlimit: u64) -> (u32, u32, u32) {
    let ops = opslimit.max(32_768);
    let r: u32 = 8;
    // The smallest log2 N with 2^(log2 N) > max_n / 2 (at least 1, below 63).
    let log2_for = |max_n: u64| (1..63).find(|l| (1u64 << l) > max_n / 2).unwrap_or(63);
    if ops < memlimit / 32 {
        (log2_for(ops / (u64::from(r) * 4)), r, 1)
    } else {
        let n_log2 = log2_for(memlimit / (u64::from(r) * 128));
        let max_rp = ((ops / 4) >> n_log2).min(0x3fff_ffff);
        // max_rp is at most 2^30: it fits u32.
        let p = u32::try_from(max_rp).unwrap_or(0x3fff_ffff) / r;
        (n_log2, r, p)
    }
}

/// `out.len()` bytes of scrypt(password, salt, N = 2^n_log2, r, p).
pub fn scrypt(
    password: &[u8],
    salt: &[u8],
    n_log2: u32,
    r: u32,
    p: u32,
    out: &mut [u8],
) -> Result<(), ScryptError> {
    let n = 1u64.checked_shl(n_log2).unwrap_or(0);
    let bad = ScryptError::Params { n, r, p };
    // RFC 7914: N > 1 a power of two, r*p < 2^30.
    if n_log2 == 0 || n_log2 >= 63 || r == 0 || p == 0 || u64::from(r) * u64::from(p) >= 1 << 30 {
        return Err(bad);
    }
    let bytes = 128 * u64::from(r) * n;
    let block_words = 32 * usize::try_from(r).map_err(|_| bad.clone())?;
    let n_usize = usize::try_from(n).map_err(|_| ScryptError::Memory { bytes })?;
    if bytes > MAX_MEMORY || n_usize.checked_mul(block_words).is_none() {
        return Err(ScryptError::Memory { bytes });
    }
    let mut v: Vec<u32> = Vec::new();
    v.try_reserve_exact(n_usize * block_words)
        .map_err(|_| ScryptError::Memory { bytes })?;
    v.resize(n_usize * block_words, 0);

    let mut b = vec![0u8; block_words * 4 * p as usize];
    pbkdf2(password, salt, &mut b);
    let mut x = vec![0u32; block_words];
    let mut t = vec![0u32; block_words];
    for chunk in b.chunks_exact_mut(block_words * 4) {
        for (w, c) in x.iter_mut().zip(chunk.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        ro_mix(&mut x, &mut v, &mut t, n_usize);
        for (w, c) in x.iter().zip(chunk.chunks_exact_mut(4)) {
            c.copy_from_slice(&w.to_le_bytes());
        }
    }
    pbkdf2(password, &b, out);
    Ok(())
}

/// PBKDF2-HMAC-SHA256 with one iteration, as scrypt uses it.
fn pbkdf2(password: &[u8], salt: &[u8], out: &mut [u8]) {
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::MIN,
        salt,
        password,
        out,
    );
}

/// ROMix over one block `x` (32*r words), with `v` of N blocks and `t` a
/// scratch block.
fn ro_mix(x: &mut [u32], v: &mut [u32], t: &mut [u32], n: usize) {
    let len = x.len();
    for i in 0..n {
        v[i * len..(i + 1) * len].copy_from_slice(x);
        block_mix(x, t);
    }
    for _ in 0..n {
        // Integerify: the first word of the last 64-byte sub-block, mod N
        // (N is a power of two, so a mask; N <= 2^31 on any real memory).
        let j = (x[len - 16] as usize) & (n - 1);
        for (a, b) in x.iter_mut().zip(&v[j * len..(j + 1) * len]) {
            *a ^= b;
        }
        block_mix(x, t);
    }
}

/// BlockMix with salsa20/8: `b` is 2r 16-word sub-blocks; `t` is scratch.
fn block_mix(b: &mut [u32], t: &mut [u32]) {
    let subs = b.len() / 16;
    let mut x = [0u32; 16];
    x.copy_from_slice(&b[b.len() - 16..]);
    for i in 0..subs {
        for (a, c) in x.iter_mut().zip(&b[i * 16..i * 16 + 16]) {
            *a ^= c;
        }
        salsa20_8(&mut x);
        // Even outputs go to the first half, odd ones to the second.
        let dst = (i / 2 + (i % 2) * (subs / 2)) * 16;
        t[dst..dst + 16].copy_from_slice(&x);
    }
    b.copy_from_slice(t);
}

fn salsa20_8(b: &mut [u32; 16]) {
    let mut x = *b;
    let mut qr = |a: usize, bb: usize, c: usize, d: usize| {
        x[bb] ^= x[a].wrapping_add(x[d]).rotate_left(7);
        x[c] ^= x[bb].wrapping_add(x[a]).rotate_left(9);
        x[d] ^= x[c].wrapping_add(x[bb]).rotate_left(13);
        x[a] ^= x[d].wrapping_add(x[c]).rotate_left(18);
    };
    for _ in 0..4 {
        // Columns, then rows.
        qr(0, 4, 8, 12);
        qr(5, 9, 13, 1);
        qr(10, 14, 2, 6);
        qr(15, 3, 7, 11);
        qr(0, 1, 2, 3);
        qr(5, 6, 7, 4);
        qr(10, 11, 8, 9);
        qr(15, 12, 13, 14);
    }
    for (o, i) in b.iter_mut().zip(x.iter()) {
        *o = o.wrapping_add(*i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn rfc7914_vectors() {
        // RFC 7914 section 12: ("", "", N=16, r=1, p=1) and
        // ("password", "NaCl", N=1024, r=8, p=16).
        let mut out = [0u8; 64];
        scrypt(b"", b"", 4, 1, 1, &mut out).unwrap();
        assert_eq!(
            hex(&out),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442\
             fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
        );
        scrypt(b"password", b"NaCl", 10, 8, 16, &mut out).unwrap();
        assert_eq!(
            hex(&out),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162\
             2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
        );
    }

    #[test]
    fn salsa20_8_rfc7914_section8() {
        let input = "7e879a214f3ec9867ca940e641718f26baee555b8c61c1b50df846116dcd3b1d\
                     ee24f319df9b3d8514121e4b5ac5aa3276021d2909c74829edebc68db8b8c25e";
        let want = "a41f859c6608cc993b81cacb020cef05044b2181a2fd337dfd7b1c6396682f29\
                    b4393168e3c9e6bcfe6bc5b7a06d96bae424cc102c91745c24ad673dc7618f81";
        let bytes: Vec<u8> = (0..64)
            .map(|i| u8::from_str_radix(&input[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let mut b = [0u32; 16];
        for (w, c) in b.iter_mut().zip(bytes.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        salsa20_8(&mut b);
        let out: Vec<u8> = b.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(hex(&out), want);
    }

    #[test]
    fn libsodium_params() {
        // minisign's defaults: N = 2^20, r = 8, p = 1 (1 GiB).
        assert_eq!(
            pick_params(OPSLIMIT_SENSITIVE, MEMLIMIT_SENSITIVE),
            (20, 8, 1)
        );
        // The interactive pair (524288, 16 MiB): N = 2^14, r = 8, p = 1.
        assert_eq!(pick_params(524_288, 16_777_216), (14, 8, 1));
        // Much memory, few ops: the ops bound N.
        assert_eq!(pick_params(32_768, 1 << 30), (10, 8, 1));
    }

    #[test]
    fn refuses_bad_and_huge_params() {
        let mut out = [0u8; 32];
        assert!(matches!(
            scrypt(b"", b"", 0, 8, 1, &mut out),
            Err(ScryptError::Params { .. })
        ));
        assert!(matches!(
            scrypt(b"", b"", 4, 0, 1, &mut out),
            Err(ScryptError::Params { .. })
        ));
        assert!(matches!(
            scrypt(b"", b"", 40, 8, 1, &mut out),
            Err(ScryptError::Memory { .. })
        ));
    }
}
