//! The plain-text rendering of an event context (GetEventContext with CONTEXT_FORMAT_TEXT), for prompts.
//!
//! The layout is a contract (docs/api.md, "Event context"): Markdown-like headings, one line per item, absent
//! values left out rather than printed empty, the same order as the structured context, and nothing that
//! changes between two calls on unchanged data (no timestamps of the call, no ids but the event's).

use std::fmt::Write;

use serde_json::Value;

/// Renders a context (the JSON of `store::contexts`).
pub fn render(context: &Value) -> String {
    let event = &context["event"];
    let mut out = String::new();
    let _ = writeln!(out, "# Event: {}", text(&event["name"]).unwrap_or_default());
    line(&mut out, "Id", text(&event["id"]));
    line(&mut out, "Status", text(&event["status"]));
    let when = match (text(&event["start_time"]), text(&event["end_time"])) {
        (Some(start), Some(end)) => Some(format!("{} to {}", day_time(&start), day_time(&end))),
        (Some(start), None) => Some(day_time(&start)),
        _ => None,
    };
    let when = when.map(|w| match text(&event["timezone"]) {
        Some(tz) => format!("{w} UTC (local time zone {tz})"),
        None => format!("{w} UTC"),
    });
    line(&mut out, "When", when);
    let place = [text(&event["venue"]), text(&event["city"]), text(&event["country"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    line(&mut out, "Where", (!place.is_empty()).then(|| place.join(", ")));
    line(&mut out, "Online", text(&event["online_url"]));
    line(&mut out, "Website", text(&event["website_url"]));
    if let Some(description) = text(&event["description"]) {
        let _ = writeln!(out, "\n{}", description.trim());
    }

    let items = |key: &str| context[key].as_array().cloned().unwrap_or_default();
    let speakers = items("speakers");
    heading(&mut out, "Speakers", speakers.len());
    for s in &speakers {
        let mut entry =
            format!("- {} ({})", text(&s["speaker"]["name"]).unwrap_or_default(), text(&s["role"]).unwrap_or_default());
        let job = match (text(&s["speaker"]["title"]), text(&s["company"]["name"])) {
            (Some(title), Some(company)) => Some(format!("{title} at {company}")),
            (Some(title), None) => Some(title),
            (None, Some(company)) => Some(company),
            (None, None) => None,
        };
        if let Some(job) = job {
            let _ = write!(entry, ", {job}");
        }
        if let Some(talk) = text(&s["talk_title"]) {
            let _ = write!(entry, ": \"{talk}\"");
        }
        let _ = writeln!(out, "{entry}");
    }
    let companies = items("companies");
    heading(&mut out, "Companies", companies.len());
    for c in &companies {
        let mut entry = format!(
            "- {} ({})",
            text(&c["company"]["name"]).unwrap_or_default(),
            text(&c["relation"]).unwrap_or_default()
        );
        if let Some(domain) = text(&c["company"]["domain"]) {
            let _ = write!(entry, ", {domain}");
        }
        let _ = writeln!(out, "{entry}");
    }
    let topics = items("topics");
    heading(&mut out, "Topics", topics.len());
    for t in &topics {
        let relevance = t["relevance"].as_f64().unwrap_or_default();
        let mut entry = format!("- {} (relevance {relevance:.2}", text(&t["topic"]["name"]).unwrap_or_default());
        if let Some(parent) = text(&t["parent"]["name"]) {
            let _ = write!(entry, ", under {parent}");
        }
        let _ = writeln!(out, "{entry})");
    }
    let media = items("media");
    heading(&mut out, "Media", media.len());
    for m in &media {
        let label = text(&m["title"]).unwrap_or_else(|| "untitled".into());
        let _ = writeln!(
            out,
            "- {}: {label} <{}>",
            text(&m["kind"]).unwrap_or_default(),
            text(&m["url"]).unwrap_or_default()
        );
    }
    out
}

/// A section heading with its count; an empty section is left out, like every absent value.
fn heading(out: &mut String, title: &str, count: usize) {
    if count > 0 {
        let _ = writeln!(out, "\n## {title} ({count})");
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn line(out: &mut String, label: &str, value: Option<String>) {
    if let Some(value) = value {
        let _ = writeln!(out, "{label}: {value}");
    }
}

/// `2026-05-04T09:00:00+00:00` as `2026-05-04 09:00`.
fn day_time(timestamp: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(timestamp) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => timestamp.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_layout() {
        let context = serde_json::json!({
            "event": {"id": "e1", "name": "RustConf 2026", "status": "scheduled",
                      "start_time": "2026-09-01T09:00:00+00:00", "end_time": "2026-09-02T17:00:00+00:00",
                      "timezone": "America/Chicago", "venue": "Hall A", "city": "Austin", "country": "US",
                      "online_url": null, "website_url": "https://rustconf.example.org",
                      "description": "Two days of Rust."},
            "speakers": [
                {"speaker": {"name": "Ada Lovelace", "title": "Engineer"}, "role": "keynote",
                 "talk_title": "Engines", "company": {"name": "Analytical"}},
                {"speaker": {"name": "Alan Turing", "title": null}, "role": "speaker", "talk_title": null,
                 "company": null}
            ],
            "companies": [{"company": {"name": "Analytical", "domain": "analytical.example"}, "relation": "host"}],
            "topics": [{"topic": {"name": "Rust"}, "relevance": 0.9, "parent": {"name": "Programming"}},
                       {"topic": {"name": "Compilers"}, "relevance": 0.5, "parent": null}],
            "media": [{"kind": "video", "title": null, "url": "https://v.example/1"}]
        });
        let expected = "\
# Event: RustConf 2026
Id: e1
Status: scheduled
When: 2026-09-01 09:00 to 2026-09-02 17:00 UTC (local time zone America/Chicago)
Where: Hall A, Austin, US
Website: https://rustconf.example.org

Two days of Rust.

## Speakers (2)
- Ada Lovelace (keynote), Engineer at Analytical: \"Engines\"
- Alan Turing (speaker)

## Companies (1)
- Analytical (host), analytical.example

## Topics (2)
- Rust (relevance 0.90, under Programming)
- Compilers (relevance 0.50)

## Media (1)
- video: untitled <https://v.example/1>
";
        assert_eq!(render(&context), expected);
    }

    #[test]
    fn empty_sections_are_left_out() {
        let context = serde_json::json!({
            "event": {"id": "e1", "name": "Bare", "status": "draft"},
            "speakers": [], "companies": [], "topics": [], "media": []
        });
        let text = render(&context);
        assert!(!text.contains("##"), "no section heading without entries: {text}");
    }
}
