//! Points in time as the store's JSON carries them, decoded for `domain::resources`. PostgreSQL writes a
//! `timestamptz` into JSON in one shape, `2026-12-01T14:08:08.823893+00:00` (fraction optional, offset always
//! `±HH:MM`). That shape is read here digit by digit; chrono's general RFC 3339 parser, which took a fifth of the
//! time to decode a page of events (`perf` of ListEvents, docs/performance.md), reads anything else, so every text
//! chrono accepts is still accepted and every text it refuses is still refused.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserializer;
use serde::de::{Error, Visitor};

/// A time that must be present and not null.
pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(TimeVisitor)
}

/// A time whose key must be present but may be null.
pub fn nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    deserializer.deserialize_option(NullableVisitor)
}

/// `text` as a point in time: PostgreSQL's shape directly, anything else by chrono.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    postgres_shape(text).or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc)))
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]±HH:MM`, or `None` for any other text (or an impossible date or time).
fn postgres_shape(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<u32> {
        b.get(from..from + len)?.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(at, c)| b.get(at) == Some(&c)) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        nanos = number(at + 1, digits)? * 10u32.pow(9 - digits as u32);
        at += 1 + digits;
    }
    // The offset, and nothing after it.
    if b.len() != at + 6 || b[at + 3] != b':' {
        return None;
    }
    let sign = match b[at] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (offset_hours, offset_minutes) = (number(at + 1, 2)?, number(at + 4, 2)?);
    if offset_hours > 23 || offset_minutes > 59 {
        return None;
    }
    let local = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?;
    let offset = TimeDelta::seconds(sign * i64::from(offset_hours * 3600 + offset_minutes * 60));
    Some(local.checked_sub_signed(offset)?.and_utc())
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 time")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<DateTime<Utc>, E> {
        parse(text).ok_or_else(|| E::custom(format!("not an RFC 3339 time: {text:?}")))
    }
}

struct NullableVisitor;

impl<'de> Visitor<'de> for NullableVisitor {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 time or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        required(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn postgres_shapes_read_as_chrono_reads_them() {
        for text in [
            "2026-12-01T14:08:08.823893+00:00",
            "2026-12-01T14:08:08+00:00",
            "2026-12-01T14:08:08.8+02:00",
            "2026-12-01T00:30:00.123456789-05:30",
            "2024-02-29T23:59:59.999999+14:00",
            "0001-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59.999999-12:00",
        ] {
            assert_eq!(postgres_shape(text), chrono(text), "{text}");
            assert!(postgres_shape(text).is_some(), "{text}");
        }
    }

    #[test]
    fn other_shapes_go_to_chrono_and_impossible_ones_are_refused() {
        // Other RFC 3339 spellings are chrono's to read.
        for text in [
            "2026-12-01T14:08:08Z",
            "2026-12-01t14:08:08.5z",
            "2026-12-01 14:08:08+00:00",
            "2026-12-01T14:08:08.1234567890+00:00",
        ] {
            assert_eq!(postgres_shape(text), None, "{text}");
            assert_eq!(parse(text), chrono(text), "{text}");
            assert!(parse(text).is_some(), "{text}");
        }
        for text in [
            "2026-02-30T00:00:00+00:00",
            "2026-12-01T24:00:00+00:00",
            "2026-12-01T14:60:00+00:00",
            "2026-12-01T14:08:08.+00:00",
            "2026-12-01T14:08:08+00:00 ",
            "2026-12-01T14:08:08+0000",
            "2026-12-01T14:08:08+24:00",
            "2026-1-01T14:08:08+00:00",
            "+2026-12-01T14:08:08+00:00",
            "",
            "tomorrow",
        ] {
            assert_eq!(parse(text), None, "{text}");
            assert_eq!(chrono(text), None, "chrono refuses {text} too");
        }
    }

    #[test]
    fn presence_and_null_are_kept_apart() {
        #[derive(serde::Deserialize, Debug)]
        struct Row {
            #[serde(deserialize_with = "required")]
            at: DateTime<Utc>,
            #[serde(deserialize_with = "nullable")]
            until: Option<DateTime<Utc>>,
        }
        let row: Row = serde_json::from_str(r#"{"at": "2026-12-01T14:08:08+01:00", "until": null}"#).expect("row");
        assert_eq!(row.at, chrono("2026-12-01T13:08:08Z").expect("time"));
        assert_eq!(row.until, None);
        let row: Row = serde_json::from_str(r#"{"at": "2026-12-01T14:08:08Z", "until": "2026-12-02T00:00:00+00:00"}"#)
            .expect("row");
        assert_eq!(row.until, chrono("2026-12-02T00:00:00Z"));
        assert!(serde_json::from_str::<Row>(r#"{"at": "2026-12-01T14:08:08Z"}"#).is_err(), "a missing key");
        assert!(serde_json::from_str::<Row>(r#"{"at": null, "until": null}"#).is_err(), "a null required time");
        assert!(serde_json::from_str::<Row>(r#"{"at": "soon", "until": null}"#).is_err(), "not a time");
    }
}
