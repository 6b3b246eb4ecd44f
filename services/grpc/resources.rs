//! Each resource's proto message ⇄ domain: inputs for validation, and the store's JSON back to the message.

use serde_json::Value;

use super::convert::{Json, enum_input, enum_number, object_input, opt_text, text, time_input};
use crate::domain::catalogue::{COMPANY_RELATIONS, EVENT_STATUSES, MEDIA_KINDS, SPEAKER_ROLES};
use crate::domain::fields::Input;
use crate::proto::v1 as pb;

/// Inputs of an Event, keyed by API path.
pub fn event_inputs(event: pb::Event) -> Vec<(&'static str, Input)> {
    let pb::Event {
        id: _,
        name,
        slug,
        description,
        status,
        start_time,
        end_time,
        timezone,
        venue,
        city,
        country,
        online_url,
        website_url,
        metadata,
        etag: _,
        create_time: _,
        update_time: _,
        quality: _,
    } = event;
    vec![
        ("name", text(name)),
        ("slug", text(slug)),
        ("description", opt_text(description)),
        ("status", enum_input(status, EVENT_STATUSES)),
        ("start_time", time_input(start_time)),
        ("end_time", time_input(end_time)),
        ("timezone", opt_text(timezone)),
        ("venue", opt_text(venue)),
        ("city", opt_text(city)),
        ("country", opt_text(country)),
        ("online_url", opt_text(online_url)),
        ("website_url", opt_text(website_url)),
        ("metadata", object_input(metadata)),
    ]
}

/// An Event from its JSON.
pub fn event(v: &Value) -> pb::Event {
    let j = Json(v);
    pb::Event {
        id: j.s("id"),
        name: j.s("name"),
        slug: j.s("slug"),
        description: j.opt_s("description"),
        status: enum_number(&j.s("status"), EVENT_STATUSES),
        start_time: j.time("start_time"),
        end_time: j.time("end_time"),
        timezone: j.opt_s("timezone"),
        venue: j.opt_s("venue"),
        city: j.opt_s("city"),
        country: j.opt_s("country"),
        online_url: j.opt_s("online_url"),
        website_url: j.opt_s("website_url"),
        metadata: j.object("metadata"),
        etag: j.s("etag"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
        quality: quality(&v["quality"]),
    }
}

/// Inputs of a Speaker.
pub fn speaker_inputs(speaker: pb::Speaker) -> Vec<(&'static str, Input)> {
    let pb::Speaker {
        id: _,
        name,
        normalized_name: _,
        title,
        bio,
        company_id,
        linkedin_url,
        twitter_url,
        website_url,
        avatar_url,
        confidence_score,
        etag: _,
        create_time: _,
        update_time: _,
        quality: _,
    } = speaker;
    vec![
        ("name", text(name)),
        ("title", opt_text(title)),
        ("bio", opt_text(bio)),
        ("company_id", opt_text(company_id)),
        ("linkedin_url", opt_text(linkedin_url)),
        ("twitter_url", opt_text(twitter_url)),
        ("website_url", opt_text(website_url)),
        ("avatar_url", opt_text(avatar_url)),
        ("confidence_score", Input::Float(confidence_score)),
    ]
}

/// A Speaker from its JSON.
pub fn speaker(v: &Value) -> pb::Speaker {
    let j = Json(v);
    pb::Speaker {
        id: j.s("id"),
        name: j.s("name"),
        normalized_name: j.s("normalized_name"),
        title: j.opt_s("title"),
        bio: j.opt_s("bio"),
        company_id: j.opt_s("company_id"),
        linkedin_url: j.opt_s("linkedin_url"),
        twitter_url: j.opt_s("twitter_url"),
        website_url: j.opt_s("website_url"),
        avatar_url: j.opt_s("avatar_url"),
        confidence_score: j.opt_f64("confidence_score"),
        etag: j.s("etag"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
        quality: quality(&v["quality"]),
    }
}

/// Inputs of a Company.
pub fn company_inputs(company: pb::Company) -> Vec<(&'static str, Input)> {
    let pb::Company {
        id: _,
        name,
        normalized_name: _,
        domain,
        description,
        website_url,
        logo_url,
        size,
        location,
        etag: _,
        create_time: _,
        update_time: _,
        quality: _,
    } = company;
    vec![
        ("name", text(name)),
        ("domain", opt_text(domain)),
        ("description", opt_text(description)),
        ("website_url", opt_text(website_url)),
        ("logo_url", opt_text(logo_url)),
        ("size", opt_text(size)),
        ("location", opt_text(location)),
    ]
}

/// A Company from its JSON.
pub fn company(v: &Value) -> pb::Company {
    let j = Json(v);
    pb::Company {
        id: j.s("id"),
        name: j.s("name"),
        normalized_name: j.s("normalized_name"),
        domain: j.opt_s("domain"),
        description: j.opt_s("description"),
        website_url: j.opt_s("website_url"),
        logo_url: j.opt_s("logo_url"),
        size: j.opt_s("size"),
        location: j.opt_s("location"),
        etag: j.s("etag"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
        quality: quality(&v["quality"]),
    }
}

/// Inputs of a Topic.
pub fn topic_inputs(topic: pb::Topic) -> Vec<(&'static str, Input)> {
    let pb::Topic { id: _, name, normalized_name: _, description, parent_id, etag: _, create_time: _, update_time: _ } =
        topic;
    vec![("name", text(name)), ("description", opt_text(description)), ("parent_id", opt_text(parent_id))]
}

/// A Topic from its JSON.
pub fn topic(v: &Value) -> pb::Topic {
    let j = Json(v);
    pb::Topic {
        id: j.s("id"),
        name: j.s("name"),
        normalized_name: j.s("normalized_name"),
        description: j.opt_s("description"),
        parent_id: j.opt_s("parent_id"),
        etag: j.s("etag"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
    }
}

/// Inputs of a Media item.
pub fn media_inputs(media: pb::Media) -> Vec<(&'static str, Input)> {
    let pb::Media {
        id: _,
        event_id,
        kind,
        url,
        title,
        mime_type,
        bytes,
        capture_time,
        metadata,
        etag: _,
        create_time: _,
        update_time: _,
    } = media;
    vec![
        ("event_id", text(event_id)),
        ("kind", enum_input(kind, MEDIA_KINDS)),
        ("url", text(url)),
        ("title", opt_text(title)),
        ("mime_type", opt_text(mime_type)),
        ("bytes", Input::Int(bytes)),
        ("capture_time", time_input(capture_time)),
        ("metadata", object_input(metadata)),
    ]
}

/// A Media item from its JSON.
pub fn media(v: &Value) -> pb::Media {
    let j = Json(v);
    pb::Media {
        id: j.s("id"),
        event_id: j.s("event_id"),
        kind: enum_number(&j.s("kind"), MEDIA_KINDS),
        url: j.s("url"),
        title: j.opt_s("title"),
        mime_type: j.opt_s("mime_type"),
        bytes: j.opt_i64("bytes"),
        capture_time: j.time("capture_time"),
        metadata: j.object("metadata"),
        etag: j.s("etag"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
    }
}

/// An EventSpeaker from its JSON (with `speaker` or `event` embedded when listed).
pub fn event_speaker(v: &Value) -> pb::EventSpeaker {
    let j = Json(v);
    pb::EventSpeaker {
        event_id: j.s("event_id"),
        speaker_id: j.s("speaker_id"),
        role: enum_number(&j.s("role"), SPEAKER_ROLES),
        talk_title: j.opt_s("talk_title"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
        speaker: j.nested("speaker").map(speaker),
        event: j.nested("event").map(event),
    }
}

/// An EventCompany from its JSON.
pub fn event_company(v: &Value) -> pb::EventCompany {
    let j = Json(v);
    pb::EventCompany {
        event_id: j.s("event_id"),
        company_id: j.s("company_id"),
        relation: enum_number(&j.s("relation"), COMPANY_RELATIONS),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
        company: j.nested("company").map(company),
        event: j.nested("event").map(event),
    }
}

/// An EventTopic from its JSON.
pub fn event_topic(v: &Value) -> pb::EventTopic {
    let j = Json(v);
    pb::EventTopic {
        event_id: j.s("event_id"),
        topic_id: j.s("topic_id"),
        relevance: j.opt_f64("relevance"),
        create_time: j.time("create_time"),
        update_time: j.time("update_time"),
        topic: j.nested("topic").map(topic),
        event: j.nested("event").map(event),
    }
}

/// The quality of an event, speaker or company from its JSON.
fn quality(v: &Value) -> Option<pb::Quality> {
    let score = v.get("score")?.as_f64()?;
    let reasons = v["reasons"].as_array().map(|r| r.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect());
    Some(pb::Quality { score, reasons: reasons.unwrap_or_default() })
}

/// An EventContext from its JSON (`store::contexts`), with the text rendering when asked.
pub fn event_context(v: &Value, with_text: bool) -> pb::EventContext {
    let items = |key: &str| v[key].as_array().map(Vec::as_slice).unwrap_or_default();
    let present = |x: &Value| (!x.is_null()).then_some(());
    let count = |key: &str| v["counts"][key].as_i64().unwrap_or_default() as i32;
    pb::EventContext {
        event: Some(event(&v["event"])),
        speakers: items("speakers")
            .iter()
            .map(|s| pb::ContextSpeaker {
                speaker: Some(speaker(&s["speaker"])),
                role: enum_number(s["role"].as_str().unwrap_or_default(), SPEAKER_ROLES),
                talk_title: s["talk_title"].as_str().map(str::to_owned),
                company: present(&s["company"]).map(|()| company(&s["company"])),
            })
            .collect(),
        companies: items("companies")
            .iter()
            .map(|c| pb::ContextCompany {
                company: Some(company(&c["company"])),
                relation: enum_number(c["relation"].as_str().unwrap_or_default(), COMPANY_RELATIONS),
            })
            .collect(),
        topics: items("topics")
            .iter()
            .map(|t| pb::ContextTopic {
                topic: Some(topic(&t["topic"])),
                relevance: t["relevance"].as_f64().unwrap_or_default(),
                parent: present(&t["parent"]).map(|()| topic(&t["parent"])),
            })
            .collect(),
        media: items("media").iter().map(media).collect(),
        counts: Some(pb::ContextCounts {
            speakers: count("speakers"),
            companies: count("companies"),
            topics: count("topics"),
            media: count("media"),
        }),
        text: if with_text { crate::domain::context_text::render(v) } else { String::new() },
    }
}
