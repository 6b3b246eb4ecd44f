//! The properties the fuzz targets assert, as plain functions over raw bytes: `fuzz/` drives them with libFuzzer
//! (coverage-guided, nightly flags), and the unit tests below drive them with proptest on the stable toolchain, so
//! CI checks the same properties on every run within a bounded time.

use crate::domain::catalogue::Kind;
use crate::domain::fields::{Input, validate_update};
use crate::domain::new_resources::NewResource;
use crate::domain::page_token::{Cursor, PageTokens};

/// Page-token decoding never panics, accepts only what a genuine token for the same query encodes, and a token
/// never crosses queries.
pub fn page_token(data: &[u8]) {
    let tokens = PageTokens::new(b"fuzz");
    let text = String::from_utf8_lossy(data);
    if let Ok(cursor) = tokens.decode::<Cursor>("org|ListEvents", &text) {
        let again = tokens.encode("org|ListEvents", cursor.clone());
        assert_eq!(tokens.decode::<Cursor>("org|ListEvents", &again).ok(), Some(cursor));
    }
    let genuine = tokens
        .encode("org|ListEvents", Cursor { sort: Some(text.to_string()), id: uuid::Uuid::nil(), skip: Vec::new() });
    assert!(tokens.decode::<Cursor>("other|ListEvents", &genuine).is_err(), "a token never crosses queries");
}

/// Request validation never panics on any input, and what it accepts holds no NUL (PostgreSQL text cannot).
pub fn validation(data: &[u8]) {
    let text = String::from_utf8_lossy(data).to_string();
    let pieces: Vec<String> = text.split('\u{1f}').map(str::to_owned).collect();
    let piece = |i: usize| pieces.get(i).cloned();
    for kind in Kind::ALL {
        let inputs: Vec<(&'static str, Input)> = kind
            .fields()
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let input = match i % 4 {
                    0 => Input::Text(piece(i)),
                    1 => Input::Float(piece(i).and_then(|p| p.parse().ok())),
                    2 => Input::Int(piece(i).and_then(|p| p.parse().ok())),
                    _ => Input::Text(piece(i).map(|p| p.repeat(3))),
                };
                (spec.path, input)
            })
            .collect();
        if let Ok(new) = NewResource::parse(kind, &inputs) {
            assert_eq!(new.kind(), kind);
            for value in new.to_row().values() {
                if let Some(s) = value.as_str() {
                    assert!(!s.contains('\0'), "accepted text never holds NUL");
                }
            }
        }
        let mask: Vec<String> = pieces.iter().take(3).cloned().collect();
        if let Ok(patch) = validate_update(kind.fields(), &inputs, &mask, kind.output_only()) {
            let _ = kind.check_together(&patch.columns);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            // Valid UTF-8 with the validation target's separator, so several fields get values.
            "(\\PC{0,20}\u{1f}){0,14}".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn page_token_properties_hold(data in bytes()) {
            super::page_token(&data);
        }

        #[test]
        fn validation_properties_hold(data in bytes()) {
            super::validation(&data);
        }
    }
}
