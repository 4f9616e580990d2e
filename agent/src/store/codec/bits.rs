//! The codec's lowest layer: varints and zigzag for bytes, and a bit
//! writer and reader with the exp-Golomb codes the value columns use.

use super::CodecError;

// ---------------------------------------------------------------------------
// Varints

/// `v` as a varint: its bytes, and how many of them there are.
pub(super) fn varint(mut v: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        bytes[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    (bytes, n + 1)
}

pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    let (bytes, n) = varint(v);
    out.extend_from_slice(&bytes[..n]);
}

/// Appends what `write` writes, preceded by its length as a varint, with no
/// buffer of its own: it is written in place, then moved up past the length.
pub fn put_prefixed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    write(out);
    let (prefix, n) = varint((out.len() - start) as u64);
    out.splice(start..start, prefix[..n].iter().copied());
}

pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(CodecError::Truncated)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(CodecError::Corrupt("varint longer than 10 bytes"))
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

// ---------------------------------------------------------------------------
// Bits

/// Clears `v`, keeping its buffer if `keep`, else giving it back.
pub(super) fn empty<T>(v: &mut Vec<T>, keep: bool) {
    if keep {
        v.clear();
    } else {
        *v = Vec::new();
    }
}

/// Appends bits, most significant first.
#[derive(Debug, Clone, Default)]
pub(super) struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    nacc: u32,
}

impl BitWriter {
    /// Heap bytes held, for memory accounting.
    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    pub(super) fn write(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64);
        if nbits == 0 {
            return;
        }
        let value = if nbits == 64 {
            value
        } else {
            value & ((1u64 << nbits) - 1)
        };
        let free = 64 - self.nacc;
        if nbits <= free {
            self.acc |= if nbits == 64 {
                value
            } else {
                value << (free - nbits)
            };
            self.nacc += nbits;
            if self.nacc == 64 {
                self.bytes.extend_from_slice(&self.acc.to_be_bytes());
                self.acc = 0;
                self.nacc = 0;
            }
        } else {
            let rest = nbits - free;
            self.acc |= value >> rest;
            self.bytes.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = value << (64 - rest);
            self.nacc = rest;
        }
    }

    /// Starts over; see [`ChunkEncoder::restart`] for `keep`.
    pub(super) fn restart(&mut self, keep: bool) {
        empty(&mut self.bytes, keep);
        self.acc = 0;
        self.nacc = 0;
    }

    /// A writer that goes on from where this one is, appending to `out`.
    pub(super) fn continued_in(&self, mut out: Vec<u8>) -> Self {
        out.extend_from_slice(&self.bytes);
        Self {
            bytes: out,
            acc: self.acc,
            nacc: self.nacc,
        }
    }

    /// The bytes written, the last bits zero-padded to a whole byte.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let tail = self.nacc.div_ceil(8) as usize;
        self.bytes
            .extend_from_slice(&self.acc.to_be_bytes()[..tail]);
        self.bytes
    }
}

/// Reads bits written by [`BitWriter`].
pub(super) struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Buffered bits, left-aligned.
    acc: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            acc: 0,
            avail: 0,
        }
    }

    pub(super) fn refill(&mut self) {
        if self.avail == 0 && self.pos + 8 <= self.bytes.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.bytes[self.pos..self.pos + 8]);
            self.acc = u64::from_be_bytes(w);
            self.avail = 64;
            self.pos += 8;
            return;
        }
        while self.avail <= 56 && self.pos < self.bytes.len() {
            self.acc |= u64::from(self.bytes[self.pos]) << (56 - self.avail);
            self.avail += 8;
            self.pos += 1;
        }
    }

    /// Reads up to 56 bits at once.
    pub(super) fn read_short(&mut self, nbits: u32) -> Result<u64, CodecError> {
        debug_assert!(nbits <= 56);
        if nbits == 0 {
            return Ok(0);
        }
        if self.avail < nbits {
            self.refill();
            if self.avail < nbits {
                return Err(CodecError::Truncated);
            }
        }
        let v = self.acc >> (64 - nbits);
        self.acc <<= nbits;
        self.avail -= nbits;
        Ok(v)
    }

    pub(super) fn read(&mut self, nbits: u32) -> Result<u64, CodecError> {
        if nbits <= 56 {
            self.read_short(nbits)
        } else {
            let hi = self.read_short(nbits - 32)?;
            let lo = self.read_short(32)?;
            Ok((hi << 32) | lo)
        }
    }

    pub(super) fn read_bit(&mut self) -> Result<bool, CodecError> {
        Ok(self.read_short(1)? == 1)
    }

    /// Exp-Golomb code of order `k`.
    pub(super) fn read_exp_golomb(&mut self, k: u32) -> Result<u64, CodecError> {
        let mut zeros = 0u32;
        loop {
            if self.avail == 0 {
                self.refill();
                if self.avail == 0 {
                    return Err(CodecError::Truncated);
                }
            }
            let lz = self.acc.leading_zeros().min(self.avail);
            zeros += lz;
            if lz < self.avail {
                // Consume the zeros; the next bit is the leading one of w.
                self.acc <<= lz;
                self.avail -= lz;
                break;
            }
            self.acc = 0;
            self.avail = 0;
            if zeros > 64 {
                return Err(CodecError::Corrupt("exp-Golomb prefix too long"));
            }
        }
        let n = zeros + k + 1;
        if n > 64 {
            return Err(CodecError::Corrupt("exp-Golomb code too long"));
        }
        let w = self.read(n)?;
        Ok(w - (1u64 << k))
    }
}

pub(super) fn write_exp_golomb(w: &mut BitWriter, v: u64, k: u32) {
    let x = v + (1u64 << k);
    let n = 64 - x.leading_zeros();
    w.write(0, n - 1 - k);
    w.write(x, n);
}
