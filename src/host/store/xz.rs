//! A streaming .xz container reader for the decompress step of the pipeline.
//! The LZMA2 data inside each block is decoded by berth's own streaming
//! decoder (lzma.rs); this file walks the container (stream header, block
//! headers, padding, checks, index, footer) so memory is the LZMA2 dictionary
//! only, never a whole block. Integrity comes from the archive's sha256, so
//! the container's own CRC fields are skipped, not verified.

use std::io::{self, BufRead, Read, Write};

/// Largest LZMA2 dictionary accepted (what `xz -9` uses): the dictionary is
/// allocated up front, so a forged header must not ask for gigabytes.
const MAX_DICT: u32 = 64 << 20;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("xz: {what}"))
}

/// Counts the bytes read through it (block padding is relative to block start).
struct Counting<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn read_u8<R: Read>(r: &mut R) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<()> {
    let got = io::copy(&mut r.take(n), &mut io::sink())?;
    if got == n {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

/// A multibyte integer as xz encodes it (7 bits per byte, at most 9 bytes).
fn varint(buf: &[u8], pos: &mut usize) -> io::Result<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated header"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("bad integer"))
}

fn varint_stream<R: Read>(r: &mut R, count: &mut u64) -> io::Result<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let b = read_u8(r)?;
        *count += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("bad integer"))
}

/// Decompress every stream of an .xz file from `src` into `w`.
pub fn decompress<R: BufRead, W: Write>(src: &mut R, w: &mut W) -> io::Result<()> {
    loop {
        let mut head = [0u8; 12];
        src.read_exact(&mut head)?;
        if head[..6] != [0xfd, b'7', b'z', b'X', b'Z', 0] {
            return Err(bad("bad stream header"));
        }
        // Check field sizes per check type: none, CRC32, CRC64, SHA-256.
        let check = match head[7] & 0x0f {
            0 => 0,
            1 => 4,
            4 => 8,
            10 => 32,
            t => return Err(bad(&format!("unsupported check type {t}"))),
        };
        loop {
            let size = read_u8(src)?;
            if size == 0 {
                break; // the index follows
            }
            block(src, w, usize::from(size) * 4 + 4, check)?;
        }
        // Index: record count, (unpadded, uncompressed) sizes, padding, CRC32.
        let mut n = 1u64;
        let records = varint_stream(src, &mut n)?;
        for _ in 0..records.saturating_mul(2) {
            varint_stream(src, &mut n)?;
        }
        skip(src, (4 - n % 4) % 4 + 4)?;
        let mut foot = [0u8; 12];
        src.read_exact(&mut foot)?;
        if foot[10..] != *b"YZ" {
            return Err(bad("bad stream footer"));
        }
        // Stream padding (zeros), then maybe another stream.
        loop {
            let buf = src.fill_buf()?;
            match buf.first() {
                None => return Ok(()),
                Some(0) => {
                    let z = buf.iter().take_while(|b| **b == 0).count();
                    src.consume(z);
                }
                Some(0xfd) => break,
                // Anything else is trailing data: left for the hasher to drain.
                Some(_) => return Ok(()),
            }
        }
    }
}

/// One block: header (`hsize` bytes, size byte already read), LZMA2 data,
/// padding to 4 bytes, check.
fn block<R: BufRead, W: Write>(src: &mut R, w: &mut W, hsize: usize, check: u64) -> io::Result<()> {
    let mut h = vec![0u8; hsize - 1];
    src.read_exact(&mut h)?;
    let flags = h[0];
    let mut pos = 1;
    let packed = if flags & 0x40 != 0 {
        Some(varint(&h, &mut pos)?)
    } else {
        None
    };
    let unpacked = if flags & 0x80 != 0 {
        Some(varint(&h, &mut pos)?)
    } else {
        None
    };
    if flags & 0x03 != 0 {
        return Err(bad(
            "filter chains (e.g. --x86) are not supported; use plain LZMA2",
        ));
    }
    let id = varint(&h, &mut pos)?;
    let psize = varint(&h, &mut pos)?;
    if id != 0x21 || psize != 1 {
        return Err(bad(&format!("unsupported filter {id:#x}")));
    }
    let d = *h.get(pos).ok_or_else(|| bad("truncated block header"))?;
    if d > 40 {
        return Err(bad("bad dictionary size"));
    }
    let dict = if d == 40 {
        u32::MAX
    } else {
        (2 | u32::from(d & 1)) << (d / 2 + 11)
    };
    if dict > MAX_DICT {
        return Err(bad("dictionary larger than 64 MiB"));
    }
    let mut counting = Counting { inner: src, n: 0 };
    let out = super::lzma::decode(&mut counting, w, dict)?;
    let data = counting.n;
    // Sizes the header declares (xz -T writes them) must be the real ones.
    if packed.is_some_and(|p| p != data) || unpacked.is_some_and(|u| u != out) {
        return Err(bad("block size differs from its header"));
    }
    skip(src, (4 - data % 4) % 4 + check)
}

#[cfg(test)]
mod tests {
    use super::super::lzma::tests::xz;
    use super::*;

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn blocks_checks_and_concatenated_streams() {
        let data = sample();
        for args in [
            &["-1"][..],
            &["-6", "--check=sha256"],
            &["--check=none", "--block-size=100000"],
            &["-0", "--check=crc32"],
        ] {
            let mut out = Vec::new();
            decompress(&mut &xz(args, &data)[..], &mut out).unwrap();
            assert!(out == data, "{args:?}");
        }
        let mut two = xz(&["-1"], &data[..1000]);
        two.extend([0u8; 8]);
        two.extend(xz(&["-1"], &data[1000..]));
        let mut out = Vec::new();
        decompress(&mut &two[..], &mut out).unwrap();
        assert!(out == data);
    }

    #[test]
    fn corrupt_truncated_and_filters_fail() {
        let data = sample();
        let good = xz(&["-1"], &data);
        let mut out = Vec::new();
        assert!(decompress(&mut &good[..good.len() / 2], &mut out).is_err());
        let mut bad = good.clone();
        for b in &mut bad[40..80] {
            *b ^= 0xa5;
        }
        let mut out = Vec::new();
        let r = decompress(&mut &bad[..], &mut out);
        assert!(r.is_err() || out != data);
        let x86 = xz(&["--x86", "--lzma2=preset=1"], &data);
        assert!(decompress(&mut &x86[..], &mut Vec::new()).is_err());
    }
}
