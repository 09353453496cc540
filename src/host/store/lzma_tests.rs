//! Tests of the LZMA2 decoder: round trips against Python's `lzma` and the
//! `xz` tool, and hostile streams (truncated, forged distances and headers).
#![allow(clippy::cast_possible_truncation)] // forging bytes and sizes

use std::io::{self, Write};
use std::process::{Command, Stdio};

use super::super::xz::decompress;
use super::decode;

/// xorshift64*: fixed-seed input data, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }
}

/// Text-like data: words from a small vocabulary, with copies of earlier
/// stretches at near and far distances, so encoders emit every kind of
/// match, rep and literal.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let words: Vec<Vec<u8>> = (0..300)
        .map(|_| {
            (0..1 + rng.below(9))
                .map(|_| b'a' + rng.below(26) as u8)
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(len + 300);
    while out.len() < len {
        if out.len() > 1000 && rng.below(8) == 0 {
            // A copy from near (it may overlap itself) or far back.
            let n = 4 + rng.below(300);
            let d = if rng.below(2) == 0 {
                1 + rng.below(64)
            } else {
                1 + rng.below(out.len())
            };
            for _ in 0..n {
                out.push(out[out.len() - d]);
            }
        } else {
            out.extend_from_slice(&words[rng.below(words.len())]);
            out.push(if rng.below(10) == 0 { b'\n' } else { b' ' });
        }
    }
    out.truncate(len);
    out
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Run `cmd` with `input` on stdin and return its stdout.
fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 and xz are needed (make deps)");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let t = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    t.join().unwrap();
    assert!(out.status.success(), "{cmd:?} failed");
    out.stdout
}

/// `xz ARGS -c` of `input` (also for xz.rs's tests).
pub(in crate::host::store) fn xz(args: &[&str], input: &[u8]) -> Vec<u8> {
    pipe(Command::new("xz").args(args).args(["-c", "-q"]), input)
}

/// Python's `lzma.compress(data, <kwargs>)`, e.g. `format=lzma.FORMAT_XZ`.
fn python(kwargs: &str, input: &[u8]) -> Vec<u8> {
    let script = format!(
        "import lzma, sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), {kwargs}))"
    );
    pipe(Command::new("python3").args(["-c", &script]), input)
}

fn unxz(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress(&mut &data[..], &mut out)?;
    Ok(out)
}

fn assert_round_trip(what: &str, packed: &[u8], data: &[u8]) {
    let out = unxz(packed).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.len() == data.len(),
        "{what}: {} bytes, expected {}",
        out.len(),
        data.len()
    );
    assert!(out == data, "{what}: output differs");
}

fn invalid(r: io::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("decoded a malformed stream"),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            e.to_string()
        }
    }
}

#[test]
fn python_presets_and_checks() {
    let data = text(400_000, 1);
    for preset in ["0", "6", "9", "9 | lzma.PRESET_EXTREME"] {
        for check in ["CHECK_CRC32", "CHECK_CRC64", "CHECK_NONE", "CHECK_SHA256"] {
            let kw = format!("format=lzma.FORMAT_XZ, preset={preset}, check=lzma.{check}");
            assert_round_trip(&kw, &python(&kw, &data), &data);
        }
    }
}

#[test]
fn xz_tool_presets_and_odd_properties() {
    let data = text(300_000, 2);
    for args in [
        "-9e",
        "-0",
        "--lzma2=dict=4KiB,lc=0,lp=2,pb=0",
        "--lzma2=dict=64KiB,lc=4,lp=0,pb=4",
        "--lzma2=dict=8KiB,lc=1,lp=3,pb=2",
        "--lzma2=lc=0,lp=4,pb=4,mode=fast,mf=hc3",
        "--lzma2=preset=6,nice=273,depth=0",
        "--lzma2=dict=12KiB,lc=2,lp=1,pb=3,mf=bt2",
        // Several threads: blocks declare their sizes in their headers.
        "-T2 --block-size=70000 -3",
    ] {
        let args: Vec<&str> = args.split(' ').collect();
        assert_round_trip(&format!("{args:?}"), &xz(&args, &data), &data);
    }
}

#[test]
fn incompressible_data_makes_uncompressed_chunks() {
    // Random, text, random: uncompressed chunks (0x01, 0x02) between LZMA
    // chunks that reset the state or take new properties.
    let mut data = random(150_000, 3);
    data.extend(text(200_000, 4));
    data.extend(random(100_000, 5));
    for kw in ["format=lzma.FORMAT_XZ", "format=lzma.FORMAT_XZ, preset=0"] {
        let packed = python(kw, &data);
        assert!(packed.len() > 250_000, "not incompressible");
        assert_round_trip(kw, &packed, &data);
    }
    let only = random(70_000, 6);
    assert_round_trip("random", &xz(&["-6"], &only), &only);
}

#[test]
fn distances_wrap_a_small_dictionary() {
    // 1 MB through a 4 KiB ring: every match far back crosses its end.
    let data = text(1_000_000, 7);
    for args in [
        &["--lzma2=dict=4KiB"][..],
        &["--lzma2=dict=4KiB,lc=0,lp=0,pb=0,nice=273"],
    ] {
        assert_round_trip(&format!("{args:?}"), &xz(args, &data), &data);
    }
    let raw = python(
        "format=lzma.FORMAT_RAW, filters=[{'id': lzma.FILTER_LZMA2, 'dict_size': 4096}]",
        &data,
    );
    let mut out = Vec::new();
    let n = decode(&mut &raw[..], &mut out, 4096).unwrap();
    assert!(n == data.len() as u64 && out == data);
}

#[test]
fn concatenated_streams_from_both_encoders() {
    let a = text(50_000, 8);
    let b = random(20_000, 9);
    let c = text(90_000, 10);
    let mut packed = python("format=lzma.FORMAT_XZ, check=lzma.CHECK_SHA256", &a);
    packed.extend(xz(&["-0", "--check=none"], &b));
    packed.extend([0u8; 4]);
    packed.extend(python("format=lzma.FORMAT_XZ, preset=9", &c));
    let all = [a, b, c].concat();
    assert_round_trip("three streams", &packed, &all);
}

/// A fuzzing find: an LZMA chunk whose range coder needs more bytes than
/// the chunk's compressed size (9) before its 300 bytes are out.
#[test]
fn regression_range_decoder_overrun() {
    let crash = include_bytes!("../../../tests/fuzz/corpus/xz/regress-lzma-range-overrun");
    let msg = invalid(unxz(crash));
    assert!(msg.starts_with("xz: "), "{msg}");
}

#[test]
fn truncated_at_every_offset_fails() {
    let data = text(3000, 11);
    let packed = xz(&["-6"], &data);
    assert_round_trip("whole", &packed, &data);
    for cut in 0..packed.len() {
        assert!(unxz(&packed[..cut]).is_err(), "cut at {cut} decoded");
    }
    let raw = python(
        "format=lzma.FORMAT_RAW, filters=[{'id': lzma.FILTER_LZMA2}]",
        &data,
    );
    for cut in 0..raw.len() {
        assert!(
            decode(&mut &raw[..cut], &mut Vec::new(), 1 << 20).is_err(),
            "raw cut {cut}"
        );
    }
}

#[test]
fn corrupt_streams_never_panic() {
    // A cheap fuzz: flip bytes of a valid stream; any result but a panic.
    let data = text(20_000, 12);
    let raw = python(
        "format=lzma.FORMAT_RAW, filters=[{'id': lzma.FILTER_LZMA2}]",
        &data,
    );
    let mut rng = Rng(13);
    for _ in 0..3000 {
        let mut bad = raw.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bad.len());
            bad[i] = rng.next() as u8;
        }
        let _ = decode(&mut &bad[..], &mut Vec::new(), 4096);
    }
}

/// A range encoder, to forge LZMA chunks that no real encoder writes.
struct Encoder {
    low: u64,
    range: u32,
    cache: u8,
    pending: u64,
    out: Vec<u8>,
}

impl Encoder {
    fn new() -> Self {
        Self {
            low: 0,
            range: u32::MAX,
            cache: 0,
            pending: 1,
            out: Vec::new(),
        }
    }
    fn bit(&mut self, p: &mut u16, b: u32) {
        let bound = (self.range >> 11) * u32::from(*p);
        if b == 0 {
            self.range = bound;
            *p += (2048 - *p) >> 5;
        } else {
            self.low += u64::from(bound);
            self.range -= bound;
            *p -= *p >> 5;
        }
        while self.range < 1 << 24 {
            self.range <<= 8;
            self.shift();
        }
    }
    /// Bits under probabilities used for the first time (one half each).
    fn fresh(&mut self, bits: &[u32]) {
        for &b in bits {
            self.bit(&mut 1024, b);
        }
    }
    fn shift(&mut self) {
        if self.low < 0xff00_0000 || self.low >= 1 << 32 {
            let carry = (self.low >> 32) as u8;
            let mut b = self.cache;
            while self.pending > 0 {
                self.out.push(b.wrapping_add(carry));
                b = 0xff;
                self.pending -= 1;
            }
            self.cache = (self.low >> 24) as u8;
        }
        self.pending += 1;
        self.low = (self.low & 0x00ff_ffff) << 8;
    }
    fn finish(mut self) -> Vec<u8> {
        for _ in 0..5 {
            self.shift();
        }
        self.out
    }
}

/// One LZMA2 chunk (all reset, lc=3 lp=0 pb=2) of `unpacked` bytes.
fn chunk(packed: &[u8], unpacked: usize) -> Vec<u8> {
    let u = unpacked - 1;
    let p = packed.len() - 1;
    let mut c = vec![
        0xe0 | (u >> 16) as u8,
        (u >> 8) as u8,
        u as u8,
        (p >> 8) as u8,
        p as u8,
        0x5d,
    ];
    c.extend_from_slice(packed);
    c.push(0);
    c
}

fn decode_raw(raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decode(&mut &raw[..], &mut out, 4096).map(|_| out)
}

/// Literal `b` as the first byte (state 0, fresh probabilities).
fn first_literal(e: &mut Encoder, b: u8) {
    let bits: Vec<u32> = (0..8).rev().map(|i| u32::from(b >> i & 1)).collect();
    e.fresh(&[0]);
    e.fresh(&bits);
}

#[test]
fn forged_chunks_decode_as_forged() {
    // The test encoder itself: one literal then the end.
    let mut e = Encoder::new();
    first_literal(&mut e, b'A');
    assert_eq!(decode_raw(&chunk(&e.finish(), 1)).unwrap(), b"A");
    // A literal, then a match of length 2 at distance 1: "AAA".
    let mut e = Encoder::new();
    first_literal(&mut e, b'A');
    // is_match (pos state 1: a fresh one), is_rep, choice, 3 len, 6 slot.
    e.fresh(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode_raw(&chunk(&e.finish(), 3)).unwrap(), b"AAA");
}

#[test]
fn distance_beyond_decoded_data_fails() {
    // First symbol a match at distance 1: nothing decoded yet.
    let mut e = Encoder::new();
    e.fresh(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let msg = invalid(decode_raw(&chunk(&e.finish(), 2)));
    assert!(msg.contains("distance"), "{msg}");
    // One literal, then distance 4 (slot 3).
    let mut e = Encoder::new();
    first_literal(&mut e, b'A');
    e.fresh(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    let msg = invalid(decode_raw(&chunk(&e.finish(), 3)));
    assert!(msg.contains("distance"), "{msg}");
    // A short rep (distance 1) first.
    let mut e = Encoder::new();
    e.fresh(&[1, 1, 0, 0]);
    invalid(decode_raw(&chunk(&e.finish(), 1)));
}

#[test]
fn malformed_chunk_headers_fail() {
    let mut e = Encoder::new();
    first_literal(&mut e, b'A');
    let good = chunk(&e.finish(), 1);
    assert!(decode_raw(&good).is_ok());
    let with = |i: usize, b: u8| {
        let mut c = good.clone();
        c[i] = b;
        c
    };
    for (what, raw) in [
        ("no dict reset first (LZMA)", with(0, 0xc0)),
        ("no dict reset first (state)", with(0, 0xa0)),
        ("no dict reset first (copy)", vec![2, 0, 0, b'x', 0]),
        ("bad control byte", vec![1, 0, 0, b'x', 3]),
        ("lc + lp above 4", with(5, 4 * 9 + 1)),
        ("pb above 4", with(5, 225)),
        ("unpacked size beyond the data", with(2, 200)),
        ("packed size beyond the data", with(4, good[4] + 1)),
        ("packed size short of the data", with(4, good[4] - 1)),
        ("range coder start byte", with(6, 1)),
        (
            "chunk without properties after a copy",
            [&[1, 0, 0, b'x', 0x80, 0, 0, 0, 4][..], &good[6..]].concat(),
        ),
    ] {
        let msg = invalid(decode_raw(&raw));
        assert!(msg.starts_with("xz: "), "{what}: {msg}");
    }
    // A match longer than what is left of its chunk.
    let mut e = Encoder::new();
    first_literal(&mut e, b'A');
    e.fresh(&[1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // length 10
    let msg = invalid(decode_raw(&chunk(&e.finish(), 5)));
    assert!(msg.contains("past the end"), "{msg}");
}

#[test]
fn dictionary_over_the_cap_is_refused() {
    let data = text(10_000, 14);
    let good = xz(&["-1"], &data);
    // Byte 12 is the block header size, 13 its flags, 16 the dictionary.
    assert_eq!(good[13..16], [0, 0x21, 0x01]);
    for d in [29, 38, 40, 41] {
        let mut bad = good.clone();
        bad[16] = d;
        let msg = invalid(unxz(&bad));
        assert!(msg.contains("dictionary"), "{d}: {msg}");
    }
}

#[test]
fn block_sizes_must_match_their_header() {
    let data = text(200_000, 15);
    let good = xz(&["-T2", "--block-size=100000", "-1"], &data);
    assert_round_trip("good", &good, &data);
    // The first header's flags declare both sizes; its uncompressed size
    // is 100000 (a 3-byte varint after the compressed size).
    assert_eq!(good[13] & 0xc0, 0xc0);
    let mut pos = 14;
    while good[pos] & 0x80 != 0 {
        pos += 1;
    }
    pos += 1;
    assert_eq!(good[pos..pos + 3], [0xa0, 0x8d, 0x06]);
    let mut bad = good.clone();
    bad[pos] = 0xa1;
    invalid(unxz(&bad));
}
