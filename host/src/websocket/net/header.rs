//! A frame header (RFC 6455, 5.2), as far as the layers under tungstenite need it: `scan`, which follows frames to
//! take large ones out, and `inflate`, which rewrites compressed ones.

/// The reserved bit permessage-deflate gives a compressed message's first frame (RFC 7692, 6).
pub(super) const RSV1: u8 = 0x40;

pub(super) struct Header {
    pub fin: bool,
    /// The three reserved bits, in place (`0x70` of the first byte).
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub len: u64,
    /// Its own length in bytes.
    pub size: usize,
}

pub(super) enum Parsed {
    Whole(Header),
    Short,
    /// A length tungstenite refuses (the 64-bit form with its top bit set).
    Unknown,
}

impl Header {
    /// The header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Parsed {
        let [first, second, rest @ ..] = bytes else { return Parsed::Short };
        let masked = second & 0x80 != 0;
        let (len, extended) = match second & 0x7f {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => return Parsed::Short,
            },
            127 => match rest.first_chunk::<8>() {
                Some(len) if len[0] & 0x80 == 0 => (u64::from_be_bytes(*len), 8),
                Some(_) => return Parsed::Unknown,
                None => return Parsed::Short,
            },
            len => (u64::from(len), 0),
        };
        let size = 2 + extended + if masked { 4 } else { 0 };
        if bytes.len() < size {
            return Parsed::Short;
        }
        Parsed::Whole(Header { fin: first & 0x80 != 0, rsv: first & 0x70, opcode: first & 0x0f, masked, len, size })
    }
}
