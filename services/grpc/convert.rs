//! Conversions between the generated proto types and the domain's scalar inputs: ids, etags, request ids,
//! filters, timestamps, enums and Struct ⇄ JSON. Whole resources are converted in `super::resources`.

use chrono::{DateTime, Utc};
use prost_types::{ListValue, Struct, Timestamp, value::Kind as ValueKind};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::app::AppError;
use crate::domain::fields::Input;
use crate::domain::queries::QualityRange;

// ---- scalar helpers ----------------------------------------------------------------------------------------

/// A required id field.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, AppError> {
    if raw.is_empty() {
        return Err(AppError::invalid(field, "is required"));
    }
    Uuid::parse_str(raw).map_err(|_| AppError::invalid(field, "must be a UUID"))
}

/// An optional id filter.
pub fn parse_opt_id(field: &str, raw: Option<&str>) -> Result<Option<Uuid>, AppError> {
    raw.filter(|s| !s.is_empty()).map(|s| parse_id(field, s)).transpose()
}

/// A list of ids (BatchGet), every bad one reported.
pub fn parse_ids(field: &str, raw: &[String]) -> Result<Vec<Uuid>, AppError> {
    let mut violations = crate::domain::fields::Violations::default();
    let ids: Vec<Uuid> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match Uuid::parse_str(s) {
            Ok(id) => Some(id),
            Err(_) => {
                violations.add_in_request(format!("{field}[{i}]"), "must be a UUID");
                None
            }
        })
        .collect();
    violations.into_result(ids).map_err(AppError::InvalidArgument)
}

/// An optional etag (`""` = unconditional). Etags are the resource's version, a positive decimal number, bare or
/// in double quotes; anything else (a sign, leading zeros, zero) was never issued and is INVALID_ARGUMENT, so only a
/// well-formed but stale etag is ABORTED.
pub fn parse_etag(field: &str, raw: &str) -> Result<Option<i64>, AppError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let digits = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw);
    let well_formed = !digits.is_empty() && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
    match digits.parse::<i64>() {
        Ok(version) if well_formed => Ok(Some(version)),
        _ => Err(AppError::invalid(field, "is not an etag this service issued")),
    }
}

/// An optional request id (AIP-155: a UUID).
pub fn parse_request_id(raw: &str) -> Result<Option<Uuid>, AppError> {
    match raw {
        "" => Ok(None),
        raw => Uuid::parse_str(raw).map(Some).map_err(|_| AppError::invalid("request_id", "must be a UUID")),
    }
}

/// Runs every step of a request's validation and reports all of their violations at once (BadRequest lists
/// every violation): `Ok` values pass through, INVALID_ARGUMENT violations are gathered, and any other error
/// (none is expected from parsing) wins.
#[derive(Default)]
pub struct Checks {
    violations: crate::domain::fields::Violations,
    other: Option<AppError>,
}

impl Checks {
    /// The value of a step that succeeded; records the violations of one that failed.
    pub fn take<T>(&mut self, step: Result<T, AppError>) -> Option<T> {
        match step {
            Ok(value) => Some(value),
            Err(AppError::InvalidArgument(found)) if !found.0.is_empty() => {
                self.violations.0.extend(found.0);
                None
            }
            Err(other) => {
                self.other.get_or_insert(other);
                None
            }
        }
    }

    /// The value of a domain validation step that collects violations itself.
    pub fn take_violations<T>(&mut self, step: Result<T, crate::domain::fields::Violations>) -> Option<T> {
        self.take(step.map_err(AppError::InvalidArgument))
    }

    /// Records violations found by a rule over several fields.
    pub fn add(&mut self, found: crate::domain::fields::Violations) {
        self.violations.0.extend(found.0);
    }

    /// Every violation found, or nothing.
    pub fn finish(self) -> Result<(), AppError> {
        match self.other {
            Some(other) => Err(other),
            None => self.violations.into_result(()).map_err(AppError::InvalidArgument),
        }
    }
}

/// Longest text filter value (city, country, name prefix).
const MAX_FILTER_CHARS: usize = 500;

/// An optional text filter: empty means absent; NUL (which PostgreSQL text cannot hold) and over-long values are
/// violations of `field`.
pub fn text_filter(field: &str, raw: Option<String>) -> Result<Option<String>, AppError> {
    match raw.filter(|s| !s.is_empty()) {
        Some(s) if s.contains('\0') => Err(AppError::invalid(field, "must not contain NUL characters")),
        Some(s) if s.chars().count() > MAX_FILTER_CHARS => {
            Err(AppError::invalid(field, format!("must be at most {MAX_FILTER_CHARS} characters")))
        }
        value => Ok(value),
    }
}

/// A proto enum field that selects behaviour (an ordering, a format): 0 and every known number pass; an unknown
/// number is INVALID_ARGUMENT, as for enum fields that carry data (docs/api.md, "Enums").
pub fn known_enum<E: TryFrom<i32>>(field: &str, value: i32) -> Result<E, AppError> {
    E::try_from(value).map_err(|_| AppError::invalid(field, format!("unknown enum value {value}")))
}

/// A timestamp filter.
pub fn time_filter(field: &str, ts: Option<Timestamp>) -> Result<Option<DateTime<Utc>>, AppError> {
    match time_input(ts) {
        Input::Time(t) => Ok(t),
        Input::Invalid(reason) => Err(AppError::invalid(field, reason)),
        _ => Ok(None),
    }
}

pub(crate) fn text(value: String) -> Input {
    Input::Text(Some(value).filter(|s| !s.is_empty()))
}

pub(crate) fn opt_text(value: Option<String>) -> Input {
    Input::Text(value)
}

pub(crate) fn time_input(ts: Option<Timestamp>) -> Input {
    match ts {
        None => Input::Time(None),
        Some(Timestamp { seconds, nanos }) => {
            match u32::try_from(nanos).ok().and_then(|n| DateTime::from_timestamp(seconds, n)) {
                Some(t) if (0..1_000_000_000).contains(&nanos) => Input::Time(Some(t)),
                _ => Input::Invalid("is not a valid timestamp".into()),
            }
        }
    }
}

/// A closed-list enum: 0 is unspecified (absent); `names[n-1]` is value n; anything else is invalid.
pub(crate) fn enum_input(value: i32, names: &'static [&'static str]) -> Input {
    match value {
        0 => Input::Enum(None),
        n => match usize::try_from(n - 1).ok().and_then(|i| names.get(i)) {
            Some(name) => Input::Enum(Some(name)),
            None => Input::Invalid(format!("unknown enum value {n}")),
        },
    }
}

pub(crate) fn object_input(value: Option<Struct>) -> Input {
    match value {
        None => Input::Object(None),
        Some(s) => match struct_to_json(s) {
            Ok(map) => Input::Object(Some(map)),
            Err(reason) => Input::Invalid(reason),
        },
    }
}

// ---- Struct <-> JSON ----------------------------------------------------------------------------------------

/// A protobuf Struct as a JSON object. NaN and infinities have no JSON form and are refused.
pub fn struct_to_json(s: Struct) -> Result<Map<String, Value>, String> {
    s.fields.into_iter().map(|(k, v)| Ok((k, value_to_json(v)?))).collect()
}

fn value_to_json(v: prost_types::Value) -> Result<Value, String> {
    Ok(match v.kind {
        None | Some(ValueKind::NullValue(_)) => Value::Null,
        Some(ValueKind::BoolValue(b)) => Value::Bool(b),
        Some(ValueKind::StringValue(s)) => {
            if s.contains('\0') {
                return Err("must not contain NUL characters".into());
            }
            Value::String(s)
        }
        Some(ValueKind::NumberValue(n)) => Value::Number(Number::from_f64(n).ok_or("numbers must be finite")?),
        Some(ValueKind::StructValue(s)) => Value::Object(struct_to_json(s)?),
        Some(ValueKind::ListValue(l)) => {
            Value::Array(l.values.into_iter().map(value_to_json).collect::<Result<_, _>>()?)
        }
    })
}

/// A JSON object as a protobuf Struct.
pub fn json_to_struct(map: &Map<String, Value>) -> Struct {
    Struct { fields: map.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect() }
}

fn json_to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => ValueKind::NullValue(0),
        Value::Bool(b) => ValueKind::BoolValue(*b),
        Value::Number(n) => ValueKind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => ValueKind::StringValue(s.clone()),
        Value::Array(a) => ValueKind::ListValue(ListValue { values: a.iter().map(json_to_value).collect() }),
        Value::Object(o) => ValueKind::StructValue(json_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Quality bounds from a List request: each in [0, 1], min not above max.
pub fn quality_range(min: Option<f64>, max: Option<f64>) -> Result<QualityRange, AppError> {
    for (field, value) in [("min_quality_score", min), ("max_quality_score", max)] {
        if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(AppError::invalid(field, "must be between 0 and 1"));
        }
    }
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(AppError::invalid("min_quality_score", "must not be above max_quality_score"));
    }
    Ok(QualityRange { min, max })
}
