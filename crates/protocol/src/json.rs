//! Response encoding: compact JSON in which every non-ASCII character is written as a `\uXXXX` escape.
//!
//! The spec requires Chinese `memo` text as `\u` escapes (§6.2); escaping every string the same way keeps
//! the whole response ASCII, so the `Body-Sign` over it cannot be disturbed by any re-encoding on the way.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// Serialises `value` compactly with non-ASCII characters escaped.
pub fn to_ascii_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    value.serialize(&mut serializer).expect("serialising plain response data into memory cannot fail");
    out
}

/// Every method but `write_string_fragment` keeps its default, which is the compact form.
struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            if ch.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..index])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = index + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_becomes_u_escapes() {
        let out = to_ascii_json(&serde_json::json!({"memo": "中文 ok"}));
        assert_eq!(out, br#"{"memo":"\u4e2d\u6587 ok"}"#);
    }

    #[test]
    fn characters_beyond_the_bmp_become_surrogate_pairs() {
        assert_eq!(to_ascii_json("a😀"), br#""a\ud83d\ude00""#);
    }

    #[test]
    fn escaped_output_parses_back_to_the_same_text() {
        let text = "quote\" back\\ 中 \u{1}";
        let parsed: String = serde_json::from_slice(&to_ascii_json(text)).unwrap();
        assert_eq!(parsed, text);
    }
}
