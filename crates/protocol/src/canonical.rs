//! The canonical JSON form KooGallery signs: keys sorted ascending, `null` members dropped, compact.
//!
//! This reproduces Jackson's `writeValueAsString(new TreeMap<>(body))` as used by Huawei's V2 demo
//! (spec §2.3–2.4). Sorting is done here explicitly rather than relying on `serde_json::Map`'s order,
//! because any crate in the build enabling serde_json's `preserve_order` feature would silently change it.
//! Keys compare by their UTF-8 bytes; Java's `TreeMap` compares UTF-16 units, which differs only for keys
//! mixing characters above U+FFFF with U+E000–U+FFFF — never the case in KooGallery's ASCII field names.

use serde_json::Value;

/// Canonical bytes of a JSON value. Non-ASCII text is written as raw UTF-8 and `/` is not escaped,
/// matching Jackson's defaults.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().filter(|(_, v)| !v.is_null()).collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        // Null only survives inside arrays; numbers and booleans print as serde_json prints them.
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping equals Jackson's default for the characters that matter here:
    // quotes, backslash and control characters are escaped, everything else is written as is.
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonical_bytes(&serde_json::from_str(text).unwrap())).unwrap()
    }

    #[test]
    fn keys_are_sorted_and_white_space_removed() {
        assert_eq!(
            canon(r#"{"testFlag":"1", "instanceId":"x", "activity":"queryInstance"}"#),
            r#"{"activity":"queryInstance","instanceId":"x","testFlag":"1"}"#
        );
    }

    #[test]
    fn nulls_are_dropped_and_empty_strings_kept() {
        assert_eq!(canon(r#"{"b":null,"a":"","c":{"z":null,"y":1}}"#), r#"{"a":"","c":{"y":1}}"#);
    }

    #[test]
    fn nested_objects_are_sorted_recursively() {
        assert_eq!(
            canon(r#"{"productInfo":{"skuCode":"s","productId":"p"},"activity":"a"}"#),
            r#"{"activity":"a","productInfo":{"productId":"p","skuCode":"s"}}"#
        );
    }

    #[test]
    fn non_ascii_and_slash_are_written_raw() {
        assert_eq!(canon(r#"{"memo":"中文/\u0001"}"#), "{\"memo\":\"中文/\\u0001\"}");
    }

    #[test]
    fn arrays_keep_their_order_and_numbers_their_text() {
        assert_eq!(canon(r#"{"a":[3,1,null,true],"n":1.5}"#), r#"{"a":[3,1,null,true],"n":1.5}"#);
    }
}
