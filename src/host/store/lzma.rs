//! berth's LZMA2 decoder, for the data inside each .xz block (xz.rs walks the
//! container around it). It streams: output goes to a `Write` through the
//! dictionary, a ring buffer of the size the block header declares, so memory
//! is that dictionary plus one 64 KiB chunk of input.
//!
//! Every input is hostile: each chunk's compressed bytes are read into a
//! buffer of exactly its declared size and the range decoder never reads
//! beyond it; every match distance is checked against what has been decoded.
//! Malformed data is an `InvalidData` error, never a panic. Each loop ends
//! within a chunk's declared sizes (at most 2 MiB out, 64 KiB in).

use std::io::{self, Read, Write};

/// Probabilities are 11-bit fixed point; a fresh one is one half.
const PROB_INIT: u16 = 1 << 10;
/// The range is renormalised (one more input byte) below 2^24.
const TOP: u32 = 1 << 24;
/// States 0..7 follow a literal; 7..12 follow a match or rep.
const STATES: usize = 12;
const LIT_STATES: usize = 7;
/// pb is at most 4: 16 position states.
const POS_STATES: usize = 16;
/// Distance slots 4..14 use `dist_special`, the rest direct and align bits.
const DIST_MODEL_END: u32 = 14;
/// One unused probability in front: slot 4's tree starts at index 1, as
/// every other tree does (see `Lzma::distance`).
const DIST_SPECIAL: usize = 1 + 128 - DIST_MODEL_END as usize;
/// 0x300 probabilities per literal context; lc + lp is at most 4.
const LITERAL_CODER: usize = 0x300;

/// The smallest dictionary LZMA2 declares (xz's property byte 0).
const MIN_DICT: usize = 4096;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("xz: {what}"))
}

/// `read_exact`, with a short stream reported as malformed data.
fn read_exact<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<()> {
    src.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => bad("truncated lzma2 data"),
        _ => e,
    })
}

fn read_u16<R: Read>(src: &mut R) -> io::Result<usize> {
    let mut b = [0u8; 2];
    read_exact(src, &mut b)?;
    Ok(usize::from(u16::from_be_bytes(b)))
}

/// The range decoder over one chunk's compressed bytes.
struct RangeDecoder {
    input: Vec<u8>,
    /// Bytes taken so far; past `input.len()` once the data ran out (each
    /// such byte reads as zero and the chunk is refused).
    pos: usize,
    range: u32,
    code: u32,
}

impl RangeDecoder {
    fn new() -> Self {
        Self {
            input: Vec::with_capacity(1 << 16),
            pos: 0,
            range: u32::MAX,
            code: 0,
        }
    }

    /// Read a chunk's `n` compressed bytes and the coder's 5 start bytes.
    fn load<R: Read>(&mut self, src: &mut R, n: usize) -> io::Result<()> {
        self.input.clear();
        let got = src
            .take(u64::try_from(n).unwrap_or(u64::MAX))
            .read_to_end(&mut self.input)?;
        if got != n {
            return Err(bad("truncated lzma2 data"));
        }
        self.pos = 0;
        self.range = u32::MAX;
        // An encoder's first byte is always zero; anything else is not LZMA.
        if self.byte() != 0 {
            return Err(bad("bad range coder start"));
        }
        self.code = 0;
        for _ in 0..4 {
            self.code = (self.code << 8) | u32::from(self.byte());
        }
        self.check()
    }

    #[inline(always)]
    fn byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// Refuse a chunk whose decoding has needed more bytes than it has.
    #[inline(always)]
    fn check(&self) -> io::Result<()> {
        if self.pos > self.input.len() {
            return Err(bad("compressed data ends inside a symbol"));
        }
        Ok(())
    }

    /// The chunk's data is used up exactly and the coder ended flushed.
    fn finished(&self) -> bool {
        self.pos == self.input.len() && self.code == 0
    }

    #[inline(always)]
    fn normalize(&mut self) {
        if self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.byte());
        }
    }

    /// One bit under the adaptive probability `p`.
    #[inline(always)]
    fn bit(&mut self, p: &mut u16) -> u32 {
        self.normalize();
        let bound = (self.range >> 11) * u32::from(*p);
        if self.code < bound {
            self.range = bound;
            *p += ((1 << 11) - *p) >> 5;
            0
        } else {
            self.range -= bound;
            self.code -= bound;
            *p -= *p >> 5;
            1
        }
    }

    /// A `bits`-bit symbol, most significant bit first; `probs` holds
    /// `1 << bits` probabilities (index 0 unused).
    #[inline(always)]
    fn tree(&mut self, probs: &mut [u16], bits: u32) -> u32 {
        let mut m = 1u32;
        for _ in 0..bits {
            m = (m << 1) | self.bit(&mut probs[m as usize]);
        }
        m - (1 << bits)
    }

    /// A `bits`-bit symbol, least significant bit first.
    #[inline(always)]
    fn reverse(&mut self, probs: &mut [u16], bits: u32) -> u32 {
        let mut m = 1u32;
        let mut v = 0;
        for i in 0..bits {
            let b = self.bit(&mut probs[m as usize]);
            m = (m << 1) | b;
            v |= b << i;
        }
        v
    }

    /// `bits` bits of probability one half (the middle bits of a distance).
    fn direct(&mut self, bits: u32) -> u32 {
        let mut v = 0u32;
        for _ in 0..bits {
            self.normalize();
            self.range >>= 1;
            let b = u32::from(self.code >= self.range);
            self.code -= self.range & 0u32.wrapping_sub(b);
            v = (v << 1) | b;
        }
        v
    }
}

/// The dictionary: the last `buf.len()` bytes of output, in a ring.
struct Dict {
    buf: Vec<u8>,
    /// Where the next byte goes.
    pos: usize,
    /// How many bytes behind `pos` hold data (at most `buf.len()`).
    full: usize,
    /// `buf[flushed..pos]` is not yet written out.
    flushed: usize,
    /// Bytes written out in all.
    total: u64,
}

impl Dict {
    fn new(size: usize) -> Self {
        Self {
            buf: vec![0; size],
            pos: 0,
            full: 0,
            flushed: 0,
            total: 0,
        }
    }

    /// Write out what is new; at the end of the ring, start again at 0.
    fn flush<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(&self.buf[self.flushed..self.pos])?;
        self.total += (self.pos - self.flushed) as u64;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        self.flushed = self.pos;
        Ok(())
    }

    /// Forget the history (after a flush).
    fn reset(&mut self) {
        self.pos = 0;
        self.flushed = 0;
        self.full = 0;
    }

    /// The byte `dist + 1` back from `pos` (`dist < full`, checked by the
    /// caller; out of the ring it reads as zero rather than panic).
    #[inline(always)]
    fn get(&self, dist: usize) -> u8 {
        let back = dist + 1;
        let i = if self.pos >= back {
            self.pos - back
        } else {
            (self.pos + self.buf.len()).wrapping_sub(back)
        };
        self.buf.get(i).copied().unwrap_or(0)
    }

    /// The last byte, or zero with an empty history.
    #[inline(always)]
    fn prev(&self) -> u8 {
        if self.full == 0 {
            0
        } else {
            self.get(0)
        }
    }

    /// Append one byte (`pos` is below the caller's limit, so in the ring).
    #[inline(always)]
    fn put(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
        if self.full < self.pos {
            self.full = self.pos;
        }
    }

    /// Copy `len` bytes from `dist + 1` back (`dist < full`), stopping at
    /// `limit`; returns how many are left for the next call.
    #[inline(always)]
    fn repeat(&mut self, dist: usize, len: usize, limit: usize) -> usize {
        let size = self.buf.len();
        let n = len.min(limit - self.pos);
        let back = dist + 1;
        let src = if self.pos >= back {
            self.pos - back
        } else {
            self.pos + size - back
        };
        let end = self.pos + n;
        if src + n <= size && (src + n <= self.pos || end <= src) {
            // Disjoint: one memmove.
            self.buf.copy_within(src..src + n, self.pos);
        } else if back == 1 {
            // A run of one byte.
            let b = self.buf[src];
            self.buf[self.pos..end].fill(b);
        } else {
            // Overlapping (the copy repeats itself) or wrapping: byte by byte.
            let mut s = src;
            for i in self.pos..end {
                self.buf[i] = self.buf[s];
                s += 1;
                if s == size {
                    s = 0;
                }
            }
        }
        self.pos = end;
        if self.full < end {
            self.full = end;
        }
        len - n
    }

    /// Append an uncompressed chunk of `n` bytes read from `src`.
    fn copy_from<R: Read, W: Write>(
        &mut self,
        src: &mut R,
        mut n: usize,
        w: &mut W,
    ) -> io::Result<()> {
        while n > 0 {
            let k = n.min(self.buf.len() - self.pos);
            read_exact(src, &mut self.buf[self.pos..self.pos + k])?;
            self.pos += k;
            self.full = self.full.max(self.pos);
            n -= k;
            if self.pos == self.buf.len() {
                self.flush(w)?;
            }
        }
        Ok(())
    }
}

/// The probabilities of a length: 2..10, 10..18 (per position state) and
/// 18..274.
struct LenProbs {
    choice: u16,
    choice2: u16,
    low: [[u16; 8]; POS_STATES],
    mid: [[u16; 8]; POS_STATES],
    high: [u16; 256],
}

impl LenProbs {
    const fn new() -> Self {
        Self {
            choice: PROB_INIT,
            choice2: PROB_INIT,
            low: [[PROB_INIT; 8]; POS_STATES],
            mid: [[PROB_INIT; 8]; POS_STATES],
            high: [PROB_INIT; 256],
        }
    }

    #[inline(always)]
    fn decode(&mut self, rc: &mut RangeDecoder, ps: usize) -> usize {
        if rc.bit(&mut self.choice) == 0 {
            2 + rc.tree(&mut self.low[ps], 3) as usize
        } else if rc.bit(&mut self.choice2) == 0 {
            10 + rc.tree(&mut self.mid[ps], 3) as usize
        } else {
            18 + rc.tree(&mut self.high, 8) as usize
        }
    }
}

/// Every adaptive probability of the LZMA model.
struct Probs {
    is_match: [[u16; POS_STATES]; STATES],
    is_rep: [u16; STATES],
    is_rep0: [u16; STATES],
    is_rep1: [u16; STATES],
    is_rep2: [u16; STATES],
    is_rep0_long: [[u16; POS_STATES]; STATES],
    dist_slot: [[u16; 64]; 4],
    dist_special: [u16; DIST_SPECIAL],
    align: [u16; 16],
    len: LenProbs,
    rep_len: LenProbs,
    literal: [u16; LITERAL_CODER << 4],
}

impl Probs {
    const fn new() -> Self {
        Self {
            is_match: [[PROB_INIT; POS_STATES]; STATES],
            is_rep: [PROB_INIT; STATES],
            is_rep0: [PROB_INIT; STATES],
            is_rep1: [PROB_INIT; STATES],
            is_rep2: [PROB_INIT; STATES],
            is_rep0_long: [[PROB_INIT; POS_STATES]; STATES],
            dist_slot: [[PROB_INIT; 64]; 4],
            dist_special: [PROB_INIT; DIST_SPECIAL],
            align: [PROB_INIT; 16],
            len: LenProbs::new(),
            rep_len: LenProbs::new(),
            literal: [PROB_INIT; LITERAL_CODER << 4],
        }
    }
}

/// The LZMA decoder's state between symbols and chunks.
struct Lzma {
    probs: Box<Probs>,
    /// The last four match distances (minus one); `reps[0]` is the latest.
    reps: [u32; 4],
    state: usize,
    /// Bytes of the last match still to copy (it reached the chunk's end or
    /// the end of the ring).
    pending: usize,
    lc: u32,
    lp_mask: usize,
    pb_mask: usize,
}

impl Lzma {
    fn new() -> Self {
        Self {
            probs: Box::new(Probs::new()),
            reps: [0; 4],
            state: 0,
            pending: 0,
            lc: 0,
            lp_mask: 0,
            pb_mask: 0,
        }
    }

    /// Take the properties byte: (pb * 5 + lp) * 9 + lc.
    fn set_props(&mut self, props: u8) -> io::Result<()> {
        if props >= 9 * 5 * 5 {
            return Err(bad("bad lzma properties (pb above 4)"));
        }
        let lc = u32::from(props % 9);
        let lp = u32::from(props / 9 % 5);
        let pb = u32::from(props / 45);
        if lc + lp > 4 {
            return Err(bad("bad lzma properties (lc + lp above 4)"));
        }
        self.lc = lc;
        self.lp_mask = (1 << lp) - 1;
        self.pb_mask = (1 << pb) - 1;
        Ok(())
    }

    /// A state reset: fresh probabilities, no distances.
    fn reset(&mut self) {
        let p = &mut *self.probs;
        *p = Probs::new();
        self.reps = [0; 4];
        self.state = 0;
        self.pending = 0;
    }

    /// Decode one LZMA chunk of `unpacked` bytes from `rc` into `dict`,
    /// writing out each time the ring fills.
    fn chunk<W: Write>(
        &mut self,
        dict: &mut Dict,
        rc: &mut RangeDecoder,
        mut unpacked: usize,
        w: &mut W,
    ) -> io::Result<()> {
        while unpacked > 0 {
            let start = dict.pos;
            let limit = start + unpacked.min(dict.buf.len() - start);
            self.run(dict, rc, limit)?;
            unpacked -= limit - start;
            if dict.pos == dict.buf.len() {
                dict.flush(w)?;
            }
        }
        if self.pending != 0 {
            return Err(bad("match runs past the end of its chunk"));
        }
        if !rc.finished() {
            return Err(bad("chunk's compressed size does not match its data"));
        }
        dict.flush(w)
    }

    /// Decode symbols until `dict.pos` reaches `limit`.
    fn run(&mut self, dict: &mut Dict, rc: &mut RangeDecoder, limit: usize) -> io::Result<()> {
        if self.pending > 0 {
            self.pending = dict.repeat(self.reps[0] as usize, self.pending, limit);
        }
        while dict.pos < limit {
            rc.check()?;
            let ps = dict.pos & self.pb_mask;
            let state = self.state;
            if rc.bit(&mut self.probs.is_match[state][ps]) == 0 {
                self.literal(dict, rc);
                continue;
            }
            let len = if rc.bit(&mut self.probs.is_rep[state]) == 0 {
                let len = self.probs.len.decode(rc, ps);
                self.state = if state < LIT_STATES { 7 } else { 10 };
                let dist = self.distance(rc, len);
                self.reps = [dist, self.reps[0], self.reps[1], self.reps[2]];
                len
            } else {
                self.rep(rc, ps)
            };
            // Also refuses 0xffffffff, LZMA's end marker, which LZMA2 has not.
            if self.reps[0] as usize >= dict.full {
                return Err(bad("match distance beyond the decoded data"));
            }
            self.pending = dict.repeat(self.reps[0] as usize, len, limit);
        }
        // Encoders renormalise after each bit, this decoder before: take the
        // last bit's byte now, so a chunk ends with its data used up.
        rc.normalize();
        rc.check()
    }

    /// One literal byte, coded against the byte at `reps[0]` after a match.
    #[inline(always)]
    fn literal(&mut self, dict: &mut Dict, rc: &mut RangeDecoder) {
        let ctx =
            ((dict.pos & self.lp_mask) << self.lc) + (usize::from(dict.prev()) >> (8 - self.lc));
        let base = ctx * LITERAL_CODER;
        let probs = &mut self.probs.literal[base..base + LITERAL_CODER];
        let mut sym = 1u32;
        if self.state < LIT_STATES {
            while sym < 0x100 {
                sym = (sym << 1) | rc.bit(&mut probs[sym as usize]);
            }
        } else {
            // Each bit also depends on the match byte's bit, while they agree.
            let mut mb = u32::from(dict.get(self.reps[0] as usize)) << 1;
            let mut offset = 0x100;
            while sym < 0x100 {
                let mbit = mb & offset;
                mb <<= 1;
                let b = rc.bit(&mut probs[(offset + mbit + sym) as usize]);
                sym = (sym << 1) | b;
                if b == 0 {
                    offset &= !mbit;
                } else {
                    offset = mbit;
                }
            }
        }
        dict.put(sym.to_le_bytes()[0]);
        self.state = match self.state {
            0..=3 => 0,
            4..=9 => self.state - 3,
            _ => self.state - 6,
        };
    }

    /// A rep match: one of the last four distances again. Returns its length.
    #[inline(always)]
    fn rep(&mut self, rc: &mut RangeDecoder, ps: usize) -> usize {
        let state = self.state;
        let p = &mut *self.probs;
        if rc.bit(&mut p.is_rep0[state]) == 0 {
            if rc.bit(&mut p.is_rep0_long[state][ps]) == 0 {
                // A short rep: one byte at `reps[0]`.
                self.state = if state < LIT_STATES { 9 } else { 11 };
                return 1;
            }
        } else {
            let dist;
            if rc.bit(&mut p.is_rep1[state]) == 0 {
                dist = self.reps[1];
            } else {
                if rc.bit(&mut p.is_rep2[state]) == 0 {
                    dist = self.reps[2];
                } else {
                    dist = self.reps[3];
                    self.reps[3] = self.reps[2];
                }
                self.reps[2] = self.reps[1];
            }
            self.reps[1] = self.reps[0];
            self.reps[0] = dist;
        }
        self.state = if state < LIT_STATES { 8 } else { 11 };
        p.rep_len.decode(rc, ps)
    }

    /// A match's distance minus one: a 6-bit slot by length, then the
    /// slot's low bits (reverse-coded, or direct bits and 4 align bits).
    #[inline(always)]
    fn distance(&mut self, rc: &mut RangeDecoder, len: usize) -> u32 {
        let p = &mut *self.probs;
        let slot = rc.tree(&mut p.dist_slot[(len - 2).min(3)], 6);
        if slot < 4 {
            return slot;
        }
        let bits = (slot >> 1) - 1;
        let base = (2 | (slot & 1)) << bits;
        if slot < DIST_MODEL_END {
            // Slots 4..14 have `base - slot` probabilities before theirs.
            let off = (base - slot) as usize;
            base | rc.reverse(&mut p.dist_special[off..], bits)
        } else {
            base | (rc.direct(bits - 4) << 4) | rc.reverse(&mut p.align, 4)
        }
    }
}

/// Decode one block's LZMA2 data from `src` into `w`, with a dictionary of
/// `dict_size` bytes (already capped by the caller). Reads exactly the
/// LZMA2 data, up to and including its end byte; returns the bytes written.
pub(super) fn decode<R: Read, W: Write>(src: &mut R, w: &mut W, dict_size: u32) -> io::Result<u64> {
    // Whole 16-byte units keep `pos & pb_mask` the position in the stream.
    let size = usize::try_from(dict_size)
        .map_err(|_| bad("dictionary too large"))?
        .max(MIN_DICT)
        .next_multiple_of(POS_STATES);
    let mut dict = Dict::new(size);
    let mut rc = RangeDecoder::new();
    let mut lzma = Lzma::new();
    let mut need_dict_reset = true;
    let mut need_props = true;
    loop {
        let mut control = [0u8; 1];
        read_exact(src, &mut control)?;
        let control = control[0];
        if control == 0 {
            break;
        }
        // 0x01 (uncompressed) and 0xe0.. (LZMA, all reset) reset the
        // dictionary; the first chunk must.
        if control == 1 || control >= 0xe0 {
            dict.flush(w)?;
            dict.reset();
            need_dict_reset = false;
            need_props = true;
        } else if need_dict_reset {
            return Err(bad("first lzma2 chunk does not reset the dictionary"));
        }
        if control < 0x80 {
            if control > 2 {
                return Err(bad(&format!("bad lzma2 chunk type {control:#04x}")));
            }
            let n = read_u16(src)? + 1;
            dict.copy_from(src, n, w)?;
            dict.flush(w)?;
            continue;
        }
        let unpacked = (usize::from(control & 0x1f) << 16) + read_u16(src)? + 1;
        let packed = read_u16(src)? + 1;
        // Bits 5-6: 0 no reset, 1 state, 2 state and props, 3 also dict.
        if control >= 0xc0 {
            let mut props = [0u8; 1];
            read_exact(src, &mut props)?;
            lzma.set_props(props[0])?;
            need_props = false;
            lzma.reset();
        } else if need_props {
            return Err(bad("lzma2 chunk without properties"));
        } else if control >= 0xa0 {
            lzma.reset();
        }
        rc.load(src, packed)?;
        lzma.chunk(&mut dict, &mut rc, unpacked, w)?;
    }
    dict.flush(w)?;
    Ok(dict.total)
}

#[cfg(test)]
#[path = "lzma_tests.rs"]
pub(super) mod tests;
