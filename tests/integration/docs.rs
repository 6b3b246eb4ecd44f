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

/// The environment variables named in `source`: string literals that look like one.
fn variable_names(source: &str) -> std::collections::BTreeSet<String> {
    const PREFIXES: [&str; 5] = ["EVENTDATA_", "DATABASE_", "AMQP_", "OTEL_", "LOG_"];
    source.lines().flat_map(upper_literals).filter(|name| PREFIXES.iter().any(|p| name.starts_with(p))).collect()
}

#[test]
fn the_readme_configuration_table_lists_exactly_what_the_code_reads() {
    let readme = read("README.md");
    let table: std::collections::BTreeSet<String> = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|row| row.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // config.rs holds every setting; main.rs names the loadgen's clap `env` fallbacks.
    let mut read_by_code = variable_names(&read("services/config.rs"));
    read_by_code.extend(variable_names(&read("services/main.rs")));
    assert!(read_by_code.contains("EVENTDATA_BACKUP_URL") && read_by_code.contains("EVENTDATA_API_KEY"));
    for name in &read_by_code {
        assert!(table.contains(name), "README's configuration table misses {name}");
    }
    // Read by libraries, not by our code: the log filter and the OpenTelemetry SDK's sampler.
    let read_by_libraries = ["RUST_LOG", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"];
    for name in &table {
        assert!(
            read_by_code.contains(name) || read_by_libraries.contains(&name.as_str()),
            "README documents {name}, which nothing reads"
        );
    }
}

#[test]
fn the_api_reference_names_every_service() {
    let api = read("docs/api.md");
    let dir = format!("{}/proto/eventdata/v1", env!("CARGO_MANIFEST_DIR"));
    let mut services = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("proto dir") {
        let proto = std::fs::read_to_string(entry.expect("entry").path()).expect("proto");
        services.extend(
            proto.lines().filter_map(|l| l.strip_prefix("service ")?.split_whitespace().next().map(str::to_owned)),
        );
    }
    assert!(services.len() >= 9, "found the services: {services:?}");
    for service in &services {
        assert!(api.contains(&format!("`{service}`")), "docs/api.md does not name {service}");
    }
}
