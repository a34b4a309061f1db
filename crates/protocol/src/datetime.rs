//! KooGallery's compact UTC time formats: `yyyyMMddHHmmss` and `yyyyMMddHHmmssSSS`.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A time text did not match either compact format or named an impossible date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a UTC time as yyyyMMddHHmmss or yyyyMMddHHmmssSSS")]
pub struct InvalidTime;

/// Parses an `expireTime` into UNIX milliseconds. The field is documented as 14 digits, but the
/// documentation's own example has 17 (with milliseconds), so both are accepted (spec §6.3).
pub fn parse_compact_utc(text: &str) -> Result<i64, InvalidTime> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidTime);
    }
    let (seconds_part, millis) = match text.len() {
        14 => (text, 0),
        17 => (&text[..14], text[14..].parse::<i64>().map_err(|_| InvalidTime)?),
        _ => return Err(InvalidTime),
    };
    let format = format_description!("[year][month][day][hour][minute][second]");
    let parsed = PrimitiveDateTime::parse(seconds_part, &format).map_err(|_| InvalidTime)?;
    Ok(parsed.assume_utc().unix_timestamp() * 1000 + millis)
}

/// Formats UNIX milliseconds as `yyyyMMddHHmmssSSS` UTC (the `statisticalTime` format, spec §6.2).
pub fn format_compact_utc_millis(unix_ms: i64) -> String {
    let format = format_description!("[year][month][day][hour][minute][second][subsecond digits:3]");
    let nanos = i128::from(unix_ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "00000000000000000".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourteen_and_seventeen_digit_forms_are_accepted() {
        assert_eq!(parse_compact_utc("20221124023618"), Ok(1_669_257_378_000));
        assert_eq!(parse_compact_utc("20221124023618256"), Ok(1_669_257_378_256));
    }

    #[test]
    fn other_shapes_and_impossible_dates_are_refused() {
        for bad in ["2022112402361", "202211240236182", "20221324023618", "2022-11-24T02:36", ""] {
            assert_eq!(parse_compact_utc(bad), Err(InvalidTime), "{bad}");
        }
    }

    #[test]
    fn statistical_time_has_seventeen_digits() {
        assert_eq!(format_compact_utc_millis(1_669_257_378_256), "20221124023618256");
    }
}
