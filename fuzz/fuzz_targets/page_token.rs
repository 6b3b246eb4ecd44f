//! Page-token decoding never panics, and accepts only tokens this service signed for the same query.
#![no_main]

use eventdata::domain::page_token::{Cursor, PageTokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tokens = PageTokens::new(b"fuzz");
    let text = String::from_utf8_lossy(data);
    if let Ok(cursor) = tokens.decode::<Cursor>("org|ListEvents", &text) {
        // Anything accepted must be what a genuine token for this query encodes.
        let again = tokens.encode("org|ListEvents", cursor.clone());
        assert_eq!(tokens.decode::<Cursor>("org|ListEvents", &again).ok(), Some(cursor));
    }
    let genuine = tokens.encode("org|ListEvents", Cursor { sort: Some(text.to_string()), id: uuid::Uuid::nil() });
    assert!(tokens.decode::<Cursor>("other|ListEvents", &genuine).is_err(), "a token never crosses queries");
});
