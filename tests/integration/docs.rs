//! The reference docs agree with the service: every ErrorInfo reason the code can send is in docs/api.md's error
//! table, every change type the code can emit is in docs/events.md's closed list, and every metric either process
//! exposes is in docs/operations.md, and every index of the schema is in docs/schema.md with the read path it serves.

use eventdata::domain::change::ChangeType;

use crate::common::TestDb;

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
    for change in ChangeType::all() {
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

/// The backticked names in the row of docs/consumers.md's topology table that starts with `| {what} |`.
fn topology_row(what: &str) -> Vec<String> {
    let consumers = read("docs/consumers.md");
    let row = consumers
        .lines()
        .find(|l| l.starts_with(&format!("| {what} |")))
        .unwrap_or_else(|| panic!("docs/consumers.md has no `{what}` row"));
    row.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_consumer_topology_in_the_docs_is_what_the_relay_publishes() {
    use eventdata::domain::change::LoggedChange;
    use eventdata::outbox::message::OutgoingMessage;
    let change = LoggedChange {
        position: 7,
        txid: 1,
        change_id: uuid::Uuid::now_v7(),
        org_id: uuid::Uuid::now_v7(),
        aggregate_type: "event".into(),
        aggregate_id: uuid::Uuid::now_v7(),
        change_type: "event.speaker_added".into(),
        payload: "{}".into(),
        actor_key_id: Some(uuid::Uuid::now_v7()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        tracestate: Some("vendor=x".into()),
        created_at: chrono::Utc::now(),
    };
    let message = OutgoingMessage::from(&change);
    let carried: Vec<String> =
        message.properties.headers().as_ref().expect("headers").inner().keys().map(|k| k.as_str().to_owned()).collect();
    let documented: Vec<String> = topology_row("headers")
        .into_iter()
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name != "message_id")
        .collect();
    for name in &carried {
        assert!(documented.contains(name), "the relay sends header {name}, docs/consumers.md does not list it");
    }
    for name in &documented {
        assert!(carried.contains(name), "docs/consumers.md lists header {name}, the relay does not send it");
    }

    let properties = topology_row("properties");
    for name in ["delivery_mode", "message_id", "type", "timestamp", "app_id"] {
        assert!(properties.contains(&name.to_owned()), "docs/consumers.md does not list property {name}");
    }
    let p = &message.properties;
    assert_eq!(*p.delivery_mode(), Some(2));
    assert_eq!(p.message_id().as_ref().map(|m| m.as_str().to_owned()), Some(change.change_id.to_string()));
    assert_eq!(p.kind().as_ref().map(|k| k.as_str()), Some("event.speaker_added"));
    assert_eq!(p.app_id().as_ref().map(|a| a.as_str()), Some("eventdata"));
    assert!(p.timestamp().is_some());
    assert!(topology_row("body").contains(&"application/json".to_owned()));
    assert_eq!(p.content_type().as_ref().map(|c| c.as_str()), Some("application/json"));
    assert_eq!(message.routing_key, "event.speaker_added", "the routing key is `<resource>.<change>`");

    // The Broadway example reads headers the relay sends, from a queue the page declares (quorum, dead-lettered).
    let consumers = read("docs/consumers.md");
    let read_headers: Vec<&str> =
        consumers.split("List.keyfind(headers, \"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert!(!read_headers.is_empty(), "the Broadway example reads headers");
    for name in read_headers {
        assert!(carried.iter().any(|c| c == name), "the Broadway example reads header {name}, which is not sent");
    }
    for queue in consumers.split("queue: \"").skip(1).filter_map(|rest| rest.split('"').next()) {
        let declared = consumers.lines().find(|l| l.contains(&format!("declare queue name={queue} ")));
        let declared =
            declared.unwrap_or_else(|| panic!("the example consumes queue {queue}, which the page never declares"));
        let arguments = consumers.lines().skip_while(|l| *l != declared).take(2).collect::<String>();
        assert!(arguments.contains("\"x-queue-type\":\"quorum\""), "{queue} is a quorum queue: {arguments}");
        assert!(arguments.contains("x-dead-letter-exchange"), "{queue} dead-letters: {arguments}");
    }

    let exchange = topology_row("exchange");
    let defaults = eventdata::config::RelaySettings::from_lookup(|_| None).expect("defaults");
    assert!(exchange.contains(&defaults.exchange), "the documented exchange is the default {}", defaults.exchange);
    assert!(exchange.contains(&"topic".to_owned()) && exchange.contains(&"EVENTDATA_RELAY_EXCHANGE".to_owned()));
    let publisher = read("services/outbox/publisher.rs");
    assert!(
        publisher.contains("topology.exchange.as_str().into(), ExchangeKind::Topic, durable"),
        "the relay declares its exchange as a durable topic exchange, as documented"
    );
}

#[test]
fn the_operations_guide_lists_every_metric() {
    let guide = read("docs/operations.md");
    let exposed =
        [eventdata::metrics::ApiMetrics::default().encode(), eventdata::metrics::RelayMetrics::default().encode()];
    let names: Vec<&str> = exposed
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|l| l.strip_prefix("# HELP ")?.split(' ').next())
        .collect();
    assert!(names.len() >= 15, "found the metrics: {names:?}");
    for name in names {
        assert!(guide.contains(&format!("`{name}")), "docs/operations.md does not list {name}");
    }
}

/// The index names in docs/schema.md's "Indexes" section.
fn documented_indexes() -> std::collections::BTreeSet<String> {
    let schema = read("docs/schema.md");
    let section = schema.split("\n## Indexes\n").nth(1).expect("an Indexes section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| {
            name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && ["_idx", "_key", "_pkey"].iter().any(|end| name.ends_with(end))
        })
        .map(str::to_owned)
        .collect()
}

/// Every index costs every write of its table, so each is in the schema guide with the read path it serves, and
/// the guide names none that is gone (the trigram index on event names was dropped in 0019 for serving none).
#[tokio::test]
async fn every_index_is_documented_with_the_read_path_it_serves() {
    let db = TestDb::migrated().await;
    let indexes: std::collections::BTreeSet<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations'",
    )
    .fetch_all(&db.admin)
    .await
    .expect("the schema's indexes")
    .into_iter()
    .collect();
    assert!(!indexes.contains("events_name_trgm_idx"), "dropped by migration 0019");
    let documented = documented_indexes();
    let undocumented: Vec<_> = indexes.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&indexes).collect();
    assert!(undocumented.is_empty(), "indexes missing from docs/schema.md's Indexes section: {undocumented:?}");
    assert!(gone.is_empty(), "docs/schema.md names indexes the schema does not have: {gone:?}");
}
