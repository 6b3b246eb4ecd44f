//! The `eventdata` binary's administrative contract: migrate status, orgs and keys, and configuration errors
//! that name the variable.

use std::process::{Command, Output};

use crate::common::TestDb;

fn eventdata(db: Option<&TestDb>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventdata"));
    command.args(args).env("RUST_LOG", "warn");
    if let Some(db) = db {
        command.env("DATABASE_ADMIN_URL", &db.admin_url).env("DATABASE_URL", &db.app_url);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run eventdata")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn migrate_orgs_and_keys_from_the_command_line() {
    let db = TestDb::empty().await;
    let status = stdout(&eventdata(Some(&db), &["migrate", "status"], &[]));
    assert!(status.lines().all(|l| l.contains("pending")), "{status}");
    let up = stdout(&eventdata(Some(&db), &["migrate", "up"], &[]));
    assert!(up.lines().all(|l| l.contains("applied")), "{up}");
    let down = stdout(&eventdata(Some(&db), &["migrate", "down", "--steps", "1"], &[]));
    assert!(down.lines().last().is_some_and(|l| l.contains("pending")), "{down}");
    stdout(&eventdata(Some(&db), &["migrate", "up"], &[]));

    let created = stdout(&eventdata(Some(&db), &["orgs", "create", "acme", "--name", "Acme Events"], &[]));
    assert!(created.trim_end().ends_with("acme"), "{created}");
    let again = eventdata(Some(&db), &["orgs", "create", "acme"], &[]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let secret = stdout(&eventdata(Some(&db), &["keys", "create", "--org", "acme", "--scopes", "read,write"], &[]));
    let secret = secret.trim();
    assert!(secret.starts_with("edk_") && secret.len() > 40, "{secret}");
    let hash = eventdata::domain::api_key::hash_secret(secret);
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_hash FROM api_keys").fetch_one(&db.admin).await.expect("key row");
    assert_eq!(stored, hash.to_vec(), "only the hash is stored");

    let listed = stdout(&eventdata(Some(&db), &["keys", "list", "--org", "acme"], &[]));
    assert!(listed.contains("read,write") && !listed.contains(secret), "{listed}");
    let key_id = listed.lines().nth(1).and_then(|l| l.split('\t').next()).expect("a key row").to_owned();
    stdout(&eventdata(Some(&db), &["keys", "revoke", &key_id], &[]));
    let app = db.app_pool().await;
    assert!(eventdata::store::api_keys::authenticate(&app, &hash).await.expect("lookup").is_none(), "revoked");

    let bad_scope = eventdata(Some(&db), &["keys", "create", "--org", "acme", "--scopes", "root"], &[]);
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope"));
}

#[test]
fn configuration_errors_name_the_variable() {
    for (var, value) in [
        ("EVENTDATA_GRPC_ADDR", "not-an-address"),
        ("DATABASE_URL", "mysql://nope"),
        ("EVENTDATA_DB_POOL_MAX", "lots"),
        ("LOG_FORMAT", "yaml"),
    ] {
        let output = eventdata(None, &["serve"], &[(var, value)]);
        assert!(!output.status.success(), "{var}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "stderr does not name {var}: {stderr}");
    }
    let output = eventdata(None, &["migrate", "status"], &[("DATABASE_ADMIN_URL", "redis://x")]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("DATABASE_ADMIN_URL"));
}

/// Runs `eventdata call` against `app` with its key, feeding `stdin`; the server keeps running meanwhile.
async fn call(app: &crate::common::TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventdata"));
    command
        .arg("call")
        .args(args)
        .env("EVENTDATA_GRPC_URL", &app.server.grpc_url)
        .env("EVENTDATA_API_KEY", &app.key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn eventdata call");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or("").as_bytes()).await.expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("eventdata call")
}

#[tokio::test]
async fn call_sends_json_requests_and_prints_answers_and_errors() {
    let app = crate::common::TestApp::start().await;
    let listed = stdout(&call(&app, &[], None).await);
    assert!(listed.lines().any(|l| l.starts_with("eventdata.v1.EventService/CreateEvent\t")), "{listed}");

    let created = stdout(
        &call(
            &app,
            &["EventService/CreateEvent", r#"{"event": {"name": "RustConf", "slug": "rustconf", "country": "US"}}"#],
            None,
        )
        .await,
    );
    let event: serde_json::Value = serde_json::from_str(&created).expect("JSON answer");
    assert_eq!(event["name"], "RustConf");
    let id = event["id"].as_str().expect("an id").to_owned();

    let body = format!(r#"{{"id": "{id}"}}"#);
    let fetched = stdout(&call(&app, &["eventdata.v1.EventService/GetEvent", "-"], Some(&body)).await);
    let fetched: serde_json::Value = serde_json::from_str(&fetched).expect("JSON answer");
    assert_eq!((fetched["id"].as_str(), fetched["country"].as_str()), (Some(id.as_str()), Some("US")));

    let invalid = call(&app, &["EventService/CreateEvent", r#"{"event": {"name": ""}}"#], None).await;
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(!invalid.status.success());
    assert!(stderr.contains("InvalidArgument") && stderr.contains("event.name"), "{stderr}");

    let typo = call(&app, &["EventService/CreateEvent", r#"{"event": {"nmae": "x"}}"#], None).await;
    assert!(!typo.status.success() && String::from_utf8_lossy(&typo.stderr).contains("CreateEventRequest"));
}
