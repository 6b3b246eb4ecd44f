//! eventdata: a catalogue of events, speakers, companies, topics and media, served over gRPC from PostgreSQL
//! (with pgvector), where every change is written to an outbox in the same transaction and relayed to RabbitMQ.
//!
//! Layering: `domain` depends on nothing of ours; `store` and `outbox` on `domain`; `app` on those; `grpc` on
//! `app` and `domain` (never SQL); `startup` and the binary wire everything.

pub mod admin;
pub mod app;
pub mod backup;
pub mod call;
pub mod config;
pub mod db;
pub mod domain;
pub mod fuzzing;
pub mod grpc;
pub mod health;
pub mod loadgen;
pub mod metrics;
pub mod outbox;
pub mod proto;
pub mod replica;
pub mod seed;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod warm_connections;

/// The layering above, checked on the sources: a module that imports what its layer must not fails the build's
/// tests, naming the file and the line.
#[cfg(test)]
mod layering {
    /// Each layer's directory and what no file in it may name.
    const RULES: &[(&str, &[&str])] = &[
        ("domain", &["crate::store", "crate::outbox", "crate::app", "crate::grpc", "sqlx", "tonic"]),
        ("store", &["crate::app", "crate::grpc", "tonic"]),
        ("outbox", &["crate::app", "crate::grpc", "tonic"]),
        ("app", &["crate::grpc", "tonic"]),
        ("grpc", &["crate::store", "crate::outbox", "sqlx"]),
    ];

    #[test]
    fn no_layer_names_what_it_must_not() {
        let mut breaches = Vec::new();
        for (layer, forbidden) in RULES {
            let dir = format!("{}/services/{layer}", env!("CARGO_MANIFEST_DIR"));
            let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
            for file in files {
                let path = file.expect("entry").path();
                let source = std::fs::read_to_string(&path).expect("source");
                for (n, line) in source.lines().enumerate() {
                    for name in forbidden.iter().filter(|name| line.contains(*name)) {
                        breaches.push(format!("{}:{}: {layer} names {name}", path.display(), n + 1));
                    }
                }
            }
        }
        assert!(breaches.is_empty(), "layering breached:\n{}", breaches.join("\n"));
    }

    #[test]
    fn the_check_sees_a_breach() {
        let line = "use crate::store::lists::EventFilter;";
        assert!(RULES.iter().any(|(layer, forbidden)| *layer == "grpc" && forbidden.iter().any(|f| line.contains(f))));
    }
}
