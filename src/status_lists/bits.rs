//! The status list byte array of draft-ietf-oauth-status-list with `bits: 1`:
//! the status of index `i` is bit `i % 8` of byte `i / 8`, least significant
//! bit first; 1 = invalid, 0 = valid. On the wire: base64url (no padding) of
//! the zlib (RFC 1950) deflate of those bytes.

use std::io::Write;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use flate2::write::ZlibEncoder;
use flate2::Compression;

/// The bytes of a list of `size` indices (a multiple of 8) with `invalid` set.
/// Indices at or past `size` are ignored.
pub fn pack(size: u64, invalid: impl IntoIterator<Item = u64>) -> Vec<u8> {
    let mut bytes = vec![0u8; size.div_ceil(8) as usize];
    for idx in invalid.into_iter().filter(|&i| i < size) {
        bytes[(idx / 8) as usize] |= 1 << (idx % 8);
    }
    bytes
}

/// Whether index `idx` is set in `bytes` (false past the end).
pub fn is_set(bytes: &[u8], idx: u64) -> bool {
    bytes.get((idx / 8) as usize).is_some_and(|b| b & (1 << (idx % 8)) != 0)
}

/// zlib at the best level: lists are compressed once per change, fetched by
/// every verifier, so bytes matter more than the few milliseconds.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 8 + 64), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The `lst` claim: base64url_no_pad(zlib(bytes)).
pub fn encode_lst(bytes: &[u8]) -> String {
    B64.encode(compress(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::ZlibDecoder;
    use std::io::Read;

    #[test]
    fn layout_is_lsb_first() {
        let bytes = pack(16, [0, 9, 15, 99]);
        assert_eq!(bytes, vec![0b0000_0001, 0b1000_0010]);
        assert!(is_set(&bytes, 9) && !is_set(&bytes, 8) && !is_set(&bytes, 99));
    }

    #[test]
    fn lst_round_trips_through_zlib() {
        let bytes = pack(1024, [3, 500, 1023]);
        let compressed = B64.decode(encode_lst(&bytes)).expect("base64url");
        assert_eq!(compressed[0] & 0x0f, 8, "zlib header: deflate");
        let mut out = Vec::new();
        ZlibDecoder::new(&compressed[..]).read_to_end(&mut out).expect("zlib");
        assert_eq!(out, bytes);
    }
}
