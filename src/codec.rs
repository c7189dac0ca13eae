//! A bounds-checked, borrowing reader and a small writer for the
//! variable-length vectors of RFC 9420 (section 2.1.2).
//!
//! The envelope and the hub layer are decoded with this reader rather than
//! with owned `tls_codec` types: it borrows from the input, so a 1 MiB
//! message is never copied while the hub inspects it, and no length read
//! from the wire is used for an allocation before it has been checked
//! against the bytes actually present. Length prefixes must use the
//! shortest encoding and stay below 2^30, as RFC 9420 requires.

use crate::error::{Error, Res};

/// The largest value a varint length prefix can carry (2^30 - 1).
pub const VARINT_MAX: usize = (1 << 30) - 1;

/// Reads fields from an untrusted byte string.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Res<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Malformed(what));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Res<[u8; N]> {
        let b = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// Reads a `uint8`.
    pub fn u8(&mut self, what: &'static str) -> Res<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Reads a big-endian `uint16`.
    pub fn u16(&mut self, what: &'static str) -> Res<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `uint32`.
    pub fn u32(&mut self, what: &'static str) -> Res<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian `uint64`.
    pub fn u64(&mut self, what: &'static str) -> Res<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads an RFC 9420 variable-length integer, minimal encoding only.
    pub fn varint(&mut self, what: &'static str) -> Res<usize> {
        let first = self.u8(what)?;
        let (len, mut value) = match first >> 6 {
            0 => (1, usize::from(first & 0x3f)),
            1 => (2, usize::from(first & 0x3f)),
            2 => (4, usize::from(first & 0x3f)),
            _ => return Err(Error::Malformed(what)),
        };
        for _ in 1..len {
            value = (value << 8) | usize::from(self.u8(what)?);
        }
        let minimal = match len {
            1 => true,
            2 => value >= 64,
            _ => value >= 16384,
        };
        if !minimal {
            return Err(Error::Malformed(what));
        }
        Ok(value)
    }

    /// Reads an `opaque data<V>` vector, borrowing it.
    pub fn vec(&mut self, what: &'static str) -> Res<&'a [u8]> {
        let n = self.varint(what)?;
        self.bytes(n, what)
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, what: &'static str) -> Res<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::Malformed(what))
        }
    }
}

/// Length of the varint prefix for `n`.
pub fn varint_len(n: usize) -> usize {
    if n < 64 {
        1
    } else if n < 16384 {
        2
    } else {
        4
    }
}

/// Appends a varint. Fails above [`VARINT_MAX`].
pub fn put_varint(out: &mut Vec<u8>, n: usize) -> Res<()> {
    if n > VARINT_MAX {
        return Err(Error::TooLarge("vector longer than 2^30 - 1"));
    }
    match varint_len(n) {
        1 => out.push(n as u8),
        2 => out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes()),
        _ => out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes()),
    }
    Ok(())
}

/// Appends an `opaque data<V>` vector.
pub fn put_vec(out: &mut Vec<u8>, data: &[u8]) -> Res<()> {
    put_varint(out, data.len())?;
    out.extend_from_slice(data);
    Ok(())
}

/// Checks that every byte of `bytes` (the padding after a structure) is
/// zero; [`Error::Malformed`]`(what)` otherwise. The one padding check of
/// the crate: the hub layer (HUB-2), the key layer (HUB-8), the fan-out
/// body (FAN-5) and RFC 9420's `PrivateMessageContent` (6.3.1) all use it.
/// It reads every byte without stopping at the first non-zero one, and
/// never panics (the empty slice is all zero).
pub(crate) fn check_zero_padding(bytes: &[u8], what: &'static str) -> Res<()> {
    if bytes.iter().fold(0u8, |acc, &b| acc | b) == 0 {
        Ok(())
    } else {
        Err(Error::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padding() {
        assert_eq!(check_zero_padding(&[], "t"), Ok(()));
        assert_eq!(check_zero_padding(&[0; 300], "t"), Ok(()));
        for i in 0..8 {
            let mut p = [0u8; 8];
            p[i] = 0x80;
            assert_eq!(check_zero_padding(&p, "t"), Err(Error::Malformed("t")));
        }
    }

    #[test]
    fn varint_round_trip_and_minimality() {
        for n in [0usize, 1, 63, 64, 16383, 16384, VARINT_MAX] {
            let mut v = Vec::new();
            put_varint(&mut v, n).unwrap();
            assert_eq!(v.len(), varint_len(n));
            let mut r = Reader::new(&v);
            assert_eq!(r.varint("t").unwrap(), n);
            r.finish("t").unwrap();
        }
        // Non-minimal encodings of 1 and the reserved 0b11 prefix.
        for bad in [
            &[0x40u8, 0x01][..],
            &[0x80, 0, 0, 1],
            &[0xc0, 0, 0, 0, 0, 0, 0, 1],
        ] {
            assert!(Reader::new(bad).varint("t").is_err());
        }
        assert!(put_varint(&mut Vec::new(), VARINT_MAX + 1).is_err());
    }

    #[test]
    fn truncated_vector_is_an_error() {
        let mut r = Reader::new(&[0x05, 1, 2]);
        assert!(r.vec("t").is_err());
    }
}

/// An owned `opaque data<V>` field for `tls_codec`-derived structs.
///
/// `tls_codec` 0.5's own `VLBytes` hits a `debug_assert` (a panic in debug
/// builds) on a truncated buffer; this type decodes through [`Reader`],
/// which returns an error instead, and otherwise encodes identically.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Opaque(pub Vec<u8>);

impl core::fmt::Debug for Opaque {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("0x")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl tls_codec::Size for Opaque {
    fn tls_serialized_len(&self) -> usize {
        varint_len(self.0.len()) + self.0.len()
    }
}

impl tls_codec::Serialize for Opaque {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        let mut out = Vec::with_capacity(self.0.len() + 4);
        put_vec(&mut out, &self.0).map_err(|_| tls_codec::Error::InvalidVectorLength)?;
        writer
            .write_all(&out)
            .map_err(|e| tls_codec::Error::EncodingError(e.to_string()))?;
        Ok(out.len())
    }
}

impl tls_codec::DeserializeBytes for Opaque {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let mut r = Reader::new(bytes);
        let v = r
            .vec("opaque vector")
            .map_err(|_| tls_codec::Error::EndOfStream)?;
        Ok((Opaque(v.to_vec()), r.rest()))
    }
}
