//! Compact, lossless storage encoding of trace and span ids.
//!
//! Ids are kept exactly as sent, but most are hex: a UUID (the seed's
//! `crypto.randomUUID()`), 32 hex digits (a W3C trace id) or 16 (a W3C span
//! id). Those are stored as a tag byte plus the raw bytes, less than half the
//! size of their text; anything else is stored as a tag byte plus its text.
//! [`decode`] gives back the original string byte for byte.

const TAG_TEXT: u8 = 0;
const TAG_HEX: u8 = 1;
const TAG_UUID: u8 = 2;

/// Encodes an id for storage.
pub fn encode(id: &str) -> Vec<u8> {
    if let Some(bytes) = parse_lower_hex(id) {
        let mut out = Vec::with_capacity(1 + bytes.len());
        out.push(TAG_HEX);
        out.extend_from_slice(&bytes);
        return out;
    }
    if let Some(bytes) = parse_uuid(id) {
        let mut out = Vec::with_capacity(17);
        out.push(TAG_UUID);
        out.extend_from_slice(&bytes);
        return out;
    }
    let mut out = Vec::with_capacity(1 + id.len());
    out.push(TAG_TEXT);
    out.extend_from_slice(id.as_bytes());
    out
}

/// Decodes what [`encode`] produced; `None` for bytes it could not have made.
pub fn decode(stored: &[u8]) -> Option<String> {
    let (&tag, rest) = stored.split_first()?;
    match tag {
        TAG_TEXT => String::from_utf8(rest.to_vec()).ok(),
        TAG_HEX if !rest.is_empty() => Some(to_lower_hex(rest)),
        TAG_UUID if rest.len() == 16 => {
            let h = to_lower_hex(rest);
            Some(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        _ => None,
    }
}

/// True when the id is made only of hex zeros and dashes (W3C's invalid id).
pub fn is_all_zero(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0' || b == b'-') && id.contains('0')
}

fn parse_lower_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() % 2 != 0 || bytes.len() > 64 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 2);
    for pair in bytes.chunks_exact(2) {
        out.push((lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?);
    }
    Some(out)
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let b = text.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b.iter().copied().filter(|&c| c != b'-');
    for slot in &mut out {
        let hi = lower_hex_digit(digits.next()?)?;
        let lo = lower_hex_digit(digits.next()?)?;
        *slot = (hi << 4) | lo;
    }
    if digits.next().is_some() {
        return None;
    }
    Some(out)
}

fn lower_hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn to_lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_shapes_are_compact() {
        assert_eq!(encode("4bf92f3577b34da6a3ce929d0e0e4736").len(), 17);
        assert_eq!(encode("00f067aa0ba902b7").len(), 9);
        assert_eq!(encode("0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69").len(), 17);
        // Upper-case hex is not canonical, so it is kept as text to stay lossless.
        assert_eq!(encode("4BF92F35").len(), 9);
        assert_eq!(encode("4BF92F35")[0], TAG_TEXT);
    }

    #[test]
    fn all_zero_ids_are_detected() {
        assert!(is_all_zero("00000000000000000000000000000000"));
        assert!(is_all_zero("00000000-0000-0000-0000-000000000000"));
        assert!(!is_all_zero("00f067aa0ba902b7"));
        assert!(!is_all_zero("-"));
    }

    proptest! {
        #[test]
        fn any_string_round_trips(id in ".{0,80}") {
            prop_assert_eq!(decode(&encode(&id)), Some(id));
        }

        #[test]
        fn hex_ids_round_trip(bytes in proptest::collection::vec(any::<u8>(), 1..32)) {
            let id = to_lower_hex(&bytes);
            let stored = encode(&id);
            prop_assert_eq!(stored[0], TAG_HEX);
            prop_assert_eq!(decode(&stored), Some(id));
        }

        #[test]
        fn uuids_round_trip(bytes in proptest::array::uniform16(any::<u8>())) {
            let h = to_lower_hex(&bytes);
            let id = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
            let stored = encode(&id);
            prop_assert_eq!(stored.len(), 17);
            prop_assert_eq!(decode(&stored), Some(id));
        }

        #[test]
        fn distinct_ids_encode_distinctly(a in "[0-9a-f-]{1,40}", b in "[0-9a-f-]{1,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(encode(&a), encode(&b));
        }
    }
}
