//! The reference docs agree with the service: every ErrorInfo reason the code can send is in docs/api.md's error
//! table, and every change type the code can emit is in docs/events.md's closed list.

use eventdata::domain::catalogue::{Kind, RelationKind};
use eventdata::domain::change::ChangeType;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// The `UPPER_SNAKE` string literals on `line`.
fn upper_literals(line: &str) -> Vec<String> {
    line.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.len() > 3 && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_error_reason_is_documented() {
    let api = read("docs/api.md");
    let mut reasons = Vec::new();
    for dir in ["services/grpc", "services/app"] {
        for entry in std::fs::read_dir(format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"))).expect(dir) {
            let source = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
            // Where reasons are written: ErrorInfo builders, `reason` fields, and the constraint → reason table.
            for line in source.lines().filter(|l| l.contains("info(") || l.contains("reason") || l.contains("=> (")) {
                reasons.extend(upper_literals(line));
            }
        }
    }
    for expected in ["MALFORMED_MESSAGE", "TOPIC_CYCLE", "NO_EMBEDDING", "OVERLOADED", "SLUG_TAKEN"] {
        assert!(reasons.iter().any(|r| r == expected), "the scan finds {expected}: {reasons:?}");
    }
    for reason in &reasons {
        assert!(api.contains(&format!("`{reason}`")), "docs/api.md does not list the reason {reason}");
    }
}

#[test]
fn every_change_type_is_in_the_closed_list() {
    let events = read("docs/events.md");
    let closed_list = events.split("## The closed list").nth(1).expect("closed list section");
    let mut types: Vec<ChangeType> = Kind::ALL
        .into_iter()
        .flat_map(|k| [ChangeType::Created(k), ChangeType::Updated(k), ChangeType::Deleted(k)])
        .collect();
    types.extend([Kind::Event, Kind::Speaker, Kind::Topic].map(ChangeType::EmbeddingUpdated));
    for r in [RelationKind::Speaker, RelationKind::Company, RelationKind::Topic] {
        types.extend([ChangeType::RelationAdded(r), ChangeType::RelationUpdated(r), ChangeType::RelationRemoved(r)]);
    }
    for change in types {
        assert!(closed_list.contains(&format!("`{}`", change.name())), "docs/events.md lacks {}", change.name());
    }
}
