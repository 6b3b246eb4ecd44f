//! Validation of writable fields, driven by one table of field specs per resource. Every violation in a request
//! is reported (not only the first). Violations name fields as the resource has them (`name`, `end_time`), or, for
//! a field of the request itself, as the request has it (`update_mask`); the transport puts the former under the
//! path where its request carries the resource ([`Violations::under`]).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path: in the resource (`name`, empty for the whole resource), or in the request when
    /// `in_request` (`update_mask`, `event.name`, `requests[3].event.slug`).
    pub field: String,
    /// What is wrong, for a human.
    pub description: String,
    /// Whether `field` is a path in the request already (else in the resource the request carries).
    pub in_request: bool,
}

/// Every violation found in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    /// Records a violation of a field of the resource (or relation) being validated.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), description: description.into(), in_request: false });
    }

    /// Records a violation of a field of the request itself (`update_mask`, `requests`), or of any field by its
    /// full request path.
    pub fn add_in_request(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), description: description.into(), in_request: true });
    }

    /// The violations with every resource field put under `prefix`, the request path of the resource (`event.`,
    /// `requests[3].event.`; the whole resource is `prefix` without its dot). Afterwards every field is a request
    /// path.
    pub fn under(self, prefix: &str) -> Violations {
        Violations(
            self.0
                .into_iter()
                .map(|v| match v.in_request {
                    true => v,
                    false => FieldViolation {
                        field: request_path(prefix, &v.field),
                        description: v.description,
                        in_request: true,
                    },
                })
                .collect(),
        )
    }

    /// Adds all of `other`'s violations.
    pub fn extend(&mut self, other: Violations) {
        self.0.extend(other.0);
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, Violations> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

/// The request path of `field` (a path in a resource; empty for the whole resource) when the request carries the
/// resource at `prefix` (`event.`, `requests[3].event.`).
pub fn request_path(prefix: &str, field: &str) -> String {
    match field {
        "" => prefix.trim_end_matches('.').to_owned(),
        field => format!("{prefix}{field}"),
    }
}

/// A field's value as the request carried it, before validation. `None` means absent.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Text.
    Text(Option<String>),
    /// A point in time.
    Time(Option<DateTime<Utc>>),
    /// A JSON object.
    Object(Option<Map<String, Value>>),
    /// A floating-point number.
    Float(Option<f64>),
    /// An integer.
    Int(Option<i64>),
    /// A closed-list value by its stored name; `None` for the unspecified enum value.
    Enum(Option<&'static str>),
    /// A value that could not even be read (an out-of-range timestamp, an unknown enum number).
    Invalid(String),
}

impl Input {
    /// Whether the request carried the field at all.
    pub fn is_present(&self) -> bool {
        match self {
            Input::Text(v) => v.is_some(),
            Input::Time(v) => v.is_some(),
            Input::Object(v) => v.is_some(),
            Input::Float(v) => v.is_some(),
            Input::Int(v) => v.is_some(),
            Input::Enum(v) => v.is_some(),
            Input::Invalid(_) => true,
        }
    }
}

/// What a field must satisfy. Mirrors the database CHECKs, which stay the last line of defence.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Text of 1..=max characters with at least one visible character.
    Text { max: usize },
    /// Lower-case letters and digits in hyphen-separated groups.
    Slug { max: usize },
    /// An http(s) URL of at most 2048 characters.
    Url,
    /// An assigned ISO 3166-1 alpha-2 code, upper case.
    Country,
    /// A bare lower-case host name.
    Domain,
    /// `type/subtype`.
    MimeType,
    /// An IANA time zone name such as `Europe/Berlin` (zones and links of the tz database).
    TimeZone,
    /// One of the listed stored names.
    OneOf(&'static [&'static str]),
    /// A finite number in [0, 1].
    Score,
    /// An integer >= 0.
    NonNegative,
    /// A UUID.
    Id,
    /// A timestamp.
    Timestamp,
    /// A JSON object of at most 64 KiB.
    Object,
}

/// A default applied on create when the caller leaves a field out.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A stored name or text.
    Str(&'static str),
    /// A number.
    Number(f64),
    /// `{}`.
    EmptyObject,
}

/// One writable field of a resource.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Name in the API (the proto field name), used in field masks and violations.
    pub path: &'static str,
    /// The database column.
    pub column: &'static str,
    /// What the value must satisfy.
    pub rule: Rule,
    /// Whether it must be present (on create, and when named in an update mask).
    pub required: bool,
    /// Value used on create when absent.
    pub default: Option<Default>,
    /// Set on create only.
    pub immutable: bool,
}

impl FieldSpec {
    /// An optional, mutable field without default.
    pub const fn optional(path: &'static str, column: &'static str, rule: Rule) -> Self {
        Self { path, column, rule, required: false, default: None, immutable: false }
    }

    /// A required field.
    pub const fn required(path: &'static str, column: &'static str, rule: Rule) -> Self {
        Self { path, column, rule, required: true, default: None, immutable: false }
    }

    /// The same field with a default for create.
    pub const fn with_default(mut self, default: Default) -> Self {
        self.default = Some(default);
        self
    }

    /// The same field, settable on create only.
    pub const fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
}

/// A validated value of one column, typed as its rule checked it.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValue {
    /// No value: SQL NULL (an optional field left out, or cleared).
    Null,
    /// Text: names, slugs, URLs, codes, the stored names of closed lists.
    Text(String),
    /// A point in time.
    Time(DateTime<Utc>),
    /// A JSON object (metadata), at most 64 KiB.
    Object(Map<String, Value>),
    /// A finite number (scores in [0, 1]).
    Float(f64),
    /// An integer.
    Int(i64),
    /// A resource id.
    Id(uuid::Uuid),
}

impl ColumnValue {
    /// The value as `jsonb_populate_record` reads it into its column.
    pub fn to_json(&self) -> Value {
        match self {
            ColumnValue::Null => Value::Null,
            ColumnValue::Text(s) => Value::from(s.as_str()),
            ColumnValue::Time(t) => Value::from(t.to_rfc3339()),
            ColumnValue::Object(map) => Value::Object(map.clone()),
            ColumnValue::Float(x) => serde_json::Number::from_f64(*x).map(Value::Number).unwrap_or(Value::Null),
            ColumnValue::Int(n) => Value::from(*n),
            ColumnValue::Id(id) => Value::from(id.to_string()),
        }
    }

    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ColumnValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The point in time, if this is one.
    pub fn as_time(&self) -> Option<DateTime<Utc>> {
        match self {
            ColumnValue::Time(t) => Some(*t),
            _ => None,
        }
    }
}

/// Validated values by column, in the order of the resource's field specs: the row a create inserts (every
/// writable column, defaults applied) or the columns an update sets. Built only by [`validate_create`] and
/// [`validate_update`], so every value passed its field's rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns(Vec<(&'static str, ColumnValue)>);

impl Columns {
    /// The value of `column`, if the row holds it.
    pub fn get(&self, column: &str) -> Option<&ColumnValue> {
        self.0.iter().find(|(name, _)| *name == column).map(|(_, value)| value)
    }

    /// The text value of `column`, if the row holds text there.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.get(column).and_then(ColumnValue::as_text)
    }

    /// The columns' names, in spec order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }

    /// Each column and its value, in spec order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &ColumnValue)> {
        self.0.iter().map(|(name, value)| (*name, value))
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (an upsert that changes nothing of an existing resource).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The row as a JSON object keyed by column, as `jsonb_populate_record(set)` reads it.
    pub fn to_json(&self) -> Map<String, Value> {
        self.0.iter().map(|(name, value)| ((*name).to_owned(), value.to_json())).collect()
    }

    fn set(&mut self, column: &'static str, value: ColumnValue) {
        match self.0.iter_mut().find(|(name, _)| *name == column) {
            Some((_, old)) => *old = value,
            None => self.0.push((column, value)),
        }
    }
}

/// Serialized as [`Columns::to_json`]: the request hash of an idempotent create is taken over this.
impl serde::Serialize for Columns {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A validated update: the columns to set, and the API paths of the fields they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    /// The columns to set.
    pub columns: Columns,
    /// The API paths of the fields being changed (`name`, `end_time`), in spec order.
    pub paths: Vec<&'static str>,
}

/// Validates a create: every field of `specs`, defaults applied, required ones present.
/// `inputs` holds the request's values by API path; violations name the resource's fields.
pub fn validate_create(specs: &[FieldSpec], inputs: &[(&'static str, Input)]) -> Result<Columns, Violations> {
    let mut violations = Violations::default();
    let mut columns = Columns::default();
    for spec in specs {
        let input = lookup(inputs, spec.path);
        let field = spec.path;
        let value = match input {
            Some(input) if input.is_present() => check(spec, input, field, &mut violations),
            _ => match spec.default {
                Some(default) => default_value(default),
                None if spec.required => {
                    violations.add(field, "is required");
                    ColumnValue::Null
                }
                None => ColumnValue::Null,
            },
        };
        columns.set(spec.column, value);
    }
    violations.into_result(columns)
}

/// Validates an update of the fields named in `mask` (all present fields when the mask is empty, every mutable
/// field for `*`).
pub fn validate_update(
    specs: &[FieldSpec],
    inputs: &[(&'static str, Input)],
    mask: &[String],
    output_only: &[&str],
) -> Result<Patch, Violations> {
    let mut violations = Violations::default();
    let paths: Vec<&FieldSpec> = if mask.is_empty() {
        specs.iter().filter(|s| !s.immutable && lookup(inputs, s.path).is_some_and(Input::is_present)).collect()
    } else if mask.iter().any(|p| p == "*") {
        specs.iter().filter(|s| !s.immutable).collect()
    } else {
        let mut chosen = Vec::new();
        for path in mask {
            match specs.iter().find(|s| s.path == path) {
                Some(spec) if spec.immutable => {
                    violations.add_in_request("update_mask", format!("{} cannot be changed", spec.path))
                }
                Some(spec) => chosen.push(spec),
                None if output_only.contains(&path.as_str()) => {
                    violations.add_in_request("update_mask", format!("{path} is output only"))
                }
                None => violations.add_in_request("update_mask", format!("unknown field {:?}", excerpt(path))),
            }
        }
        chosen
    };
    if paths.is_empty() && violations.0.is_empty() {
        violations.add_in_request("update_mask", "names no field to change");
    }
    let mut patch = Patch::default();
    for spec in paths {
        let field = spec.path;
        let value = match lookup(inputs, spec.path) {
            Some(input) if input.is_present() => check(spec, input, field, &mut violations),
            _ if spec.required => {
                violations.add(field, "is required and cannot be cleared");
                ColumnValue::Null
            }
            _ => match spec.default {
                // Clearing a field with a default resets it (an object to {}, a score to its default).
                Some(default) => default_value(default),
                None => ColumnValue::Null,
            },
        };
        patch.columns.set(spec.column, value);
        patch.paths.push(spec.path);
    }
    violations.into_result(patch)
}

fn lookup<'a>(inputs: &'a [(&'static str, Input)], path: &str) -> Option<&'a Input> {
    inputs.iter().find(|(p, _)| *p == path).map(|(_, input)| input)
}

fn default_value(default: Default) -> ColumnValue {
    match default {
        Default::Str(s) => ColumnValue::Text(s.to_owned()),
        Default::Number(n) => ColumnValue::Float(n),
        Default::EmptyObject => ColumnValue::Object(Map::new()),
    }
}

/// Checks one present value; records a violation and returns Null when it is bad.
fn check(spec: &FieldSpec, input: &Input, field: &str, violations: &mut Violations) -> ColumnValue {
    match check_value(spec.rule, input) {
        Ok(value) => value,
        Err(reason) => {
            violations.add(field, reason);
            ColumnValue::Null
        }
    }
}

fn check_value(rule: Rule, input: &Input) -> Result<ColumnValue, String> {
    match (rule, input) {
        (_, Input::Invalid(reason)) => Err(reason.clone()),
        (Rule::Text { max }, Input::Text(Some(s))) => text(s, max).map(ColumnValue::Text),
        (Rule::Slug { max }, Input::Text(Some(s))) => {
            let groups_ok =
                s.split('-').all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
            if s.len() > max || !groups_ok {
                return Err(format!(
                    "must be lower-case letters and digits in hyphen-separated groups, at most {max} characters"
                ));
            }
            Ok(ColumnValue::Text(s.clone()))
        }
        (Rule::Url, Input::Text(Some(s))) => {
            let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
            match rest {
                Some(host)
                    if !host.is_empty()
                        && s.len() <= 2048
                        && !s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    Ok(ColumnValue::Text(s.clone()))
                }
                _ => Err("must be an http:// or https:// URL of at most 2048 characters".into()),
            }
        }
        (Rule::Country, Input::Text(Some(s))) => {
            if super::iana::is_country(s) {
                Ok(ColumnValue::Text(s.clone()))
            } else {
                Err("must be an assigned ISO 3166-1 alpha-2 code in upper case, e.g. DE".into())
            }
        }
        (Rule::Domain, Input::Text(Some(s))) => {
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            let labels: Vec<&str> = s.split('.').collect();
            if s.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) {
                Ok(ColumnValue::Text(s.clone()))
            } else {
                Err("must be a lower-case domain name without scheme or path, e.g. example.com".into())
            }
        }
        (Rule::MimeType, Input::Text(Some(s))) => {
            let part_ok = |p: &str| {
                !p.is_empty()
                    && p.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&^_.+-".contains(&b))
            };
            match s.split_once('/') {
                Some((t, sub)) if s.len() <= 255 && part_ok(t) && part_ok(sub) => Ok(ColumnValue::Text(s.clone())),
                _ => Err("must be a lower-case MIME type such as video/mp4".into()),
            }
        }
        (Rule::TimeZone, Input::Text(Some(s))) => {
            if super::iana::is_time_zone(s) {
                Ok(ColumnValue::Text(s.clone()))
            } else {
                Err("must be an IANA time zone name such as Europe/Berlin".into())
            }
        }
        (Rule::OneOf(allowed), Input::Enum(Some(name))) if allowed.contains(name) => {
            Ok(ColumnValue::Text((*name).to_owned()))
        }
        (Rule::OneOf(allowed), Input::Text(Some(s))) if allowed.contains(&s.as_str()) => {
            Ok(ColumnValue::Text(s.clone()))
        }
        (Rule::OneOf(allowed), _) => Err(format!("must be one of {}", allowed.join(", "))),
        (Rule::Score, Input::Float(Some(x))) => {
            if x.is_finite() && (0.0..=1.0).contains(x) {
                Ok(ColumnValue::Float(*x))
            } else {
                Err("must be a number from 0 to 1".into())
            }
        }
        (Rule::NonNegative, Input::Int(Some(n))) if *n >= 0 => Ok(ColumnValue::Int(*n)),
        (Rule::NonNegative, Input::Int(Some(_))) => Err("must not be negative".into()),
        (Rule::Id, Input::Text(Some(s))) => match uuid::Uuid::parse_str(s) {
            Ok(id) => Ok(ColumnValue::Id(id)),
            Err(_) => Err("must be a UUID".into()),
        },
        (Rule::Timestamp, Input::Time(Some(t))) => Ok(ColumnValue::Time(*t)),
        (Rule::Object, Input::Object(Some(map))) => {
            if Value::Object(map.clone()).to_string().len() > 64 * 1024 {
                Err("must be at most 64 KiB of JSON".into())
            } else {
                Ok(ColumnValue::Object(map.clone()))
            }
        }
        (rule, _) => Err(format!("has the wrong type for {rule:?}")),
    }
}

/// At most 40 characters of caller input, for messages: errors travel in HTTP/2 headers, which must stay small.
pub fn excerpt(input: &str) -> String {
    let mut shown: String = input.chars().take(40).collect();
    if shown.len() < input.len() {
        shown.push('…');
    }
    shown
}

/// Text of at most `max` characters with a visible character and without NUL (PostgreSQL text cannot hold it).
fn text(s: &str, max: usize) -> Result<String, String> {
    if !s.chars().any(is_visible) {
        return Err("must contain a visible character (not only white space or invisible characters)".into());
    }
    if s.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if s.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(s.to_owned())
}

/// Whether `c` shows as something: not white space, not a control character, and not a Unicode
/// Default_Ignorable_Code_Point (zero-width spaces and joiners, bidi controls, variation selectors, fillers).
pub fn is_visible(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(
            u32::from(c),
            0x00AD
                | 0x034F
                | 0x061C
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x206F
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFF8
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_needs_a_visible_character() {
        for invisible in ["\u{200B}", " \u{200B}\u{FEFF} ", "\u{3164}", "\u{2060}\t", "\u{E0020}"] {
            assert!(text(invisible, 10).is_err(), "{invisible:?} is not a name");
        }
        assert!(text("\u{200B}a", 10).is_ok());
        assert!(text("Zoë", 10).is_ok() && text("東京", 10).is_ok());
    }

    const SPECS: &[FieldSpec] = &[
        FieldSpec::required("name", "name", Rule::Text { max: 10 }),
        FieldSpec::optional("country", "country", Rule::Country),
        FieldSpec::optional("status", "status", Rule::OneOf(&["draft", "live"])).with_default(Default::Str("draft")),
        FieldSpec::optional("score", "score", Rule::Score),
        FieldSpec::required("event_id", "event_id", Rule::Id).immutable(),
    ];

    #[test]
    fn create_reports_every_violation_and_applies_defaults() {
        let inputs = [
            ("name", Input::Text(Some("   ".into()))),
            ("country", Input::Text(Some("de".into()))),
            ("score", Input::Float(Some(f64::NAN))),
        ];
        let err = validate_create(SPECS, &inputs).expect_err("invalid").under("x.");
        let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["x.name", "x.country", "x.score", "x.event_id"]);

        let inputs =
            [("name", Input::Text(Some("ok".into()))), ("event_id", Input::Text(Some(uuid::Uuid::nil().to_string())))];
        let columns = validate_create(SPECS, &inputs).expect("valid");
        assert_eq!(columns.text("status"), Some("draft"));
        assert_eq!(columns.get("country"), Some(&ColumnValue::Null));
        assert_eq!(columns.names(), vec!["name", "country", "status", "score", "event_id"], "every column, spec order");
        assert_eq!(columns.get("event_id"), Some(&ColumnValue::Id(uuid::Uuid::nil())));
        let row = columns.to_json();
        assert_eq!((row["status"].clone(), row["score"].clone()), (Value::from("draft"), Value::Null));
        assert_eq!(row["event_id"], Value::from(uuid::Uuid::nil().to_string()), "as jsonb_populate_record reads it");
    }

    #[test]
    fn update_masks_are_checked() {
        let inputs = [("name", Input::Text(Some("new".into())))];
        let Patch { columns, paths } = validate_update(SPECS, &inputs, &["name".into()], &["id"]).expect("valid");
        assert_eq!((columns.len(), paths), (1, vec!["name"]));
        assert_eq!(columns.text("name"), Some("new"));

        let err = validate_update(SPECS, &inputs, &["nope".into(), "id".into(), "event_id".into()], &["id"])
            .expect_err("bad mask");
        assert_eq!(err.0.len(), 3, "{err:?}");
        let huge = "x".repeat(100_000);
        let err = validate_update(SPECS, &inputs, &[huge], &[]).expect_err("unknown path");
        assert!(err.0[0].description.len() < 100, "input is not echoed in full");
        let err = validate_update(SPECS, &[], &["name".into()], &[]).expect_err("clearing a required field");
        assert_eq!(err.0[0].field, "name");
        let implicit = validate_update(SPECS, &inputs, &[], &[]).expect("implicit mask");
        assert_eq!(implicit.paths, vec!["name"]);
        let reset = validate_update(SPECS, &[], &["status".into()], &[]).expect("reset to default");
        assert_eq!(reset.columns.text("status"), Some("draft"));
    }

    #[test]
    fn under_puts_resource_fields_at_their_request_path_and_leaves_request_fields() {
        let err = validate_update(SPECS, &[], &["name".into(), "nope".into()], &[]).expect_err("invalid");
        let mut all = err.under("requests[2].event.");
        all.add("", "has a value the catalogue cannot store");
        let all = all.under("event.");
        let fields: Vec<&str> = all.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["update_mask", "requests[2].event.name", "event"]);
        assert!(all.0.iter().all(|v| v.in_request), "every field is a request path afterwards");
    }
}
