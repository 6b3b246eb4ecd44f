//! Request validation never panics on any input, and whatever it accepts satisfies the rules it states.
#![no_main]

use eventdata::domain::catalogue::Kind;
use eventdata::domain::fields::{Input, validate_create, validate_update};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
        if let Ok(columns) = validate_create(kind.fields(), &inputs, "x.") {
            for value in columns.values() {
                if let Some(s) = value.as_str() {
                    assert!(!s.contains('\0'), "accepted text never holds NUL");
                }
            }
        }
        let mask: Vec<String> = pieces.iter().take(3).cloned().collect();
        let _ = validate_update(kind.fields(), &inputs, &mask, kind.output_only(), "x.");
    }
});
