//! Each resource's proto message ⇄ domain: inputs for validation, and the store's JSON back to the message.

use serde_json::Value;

use super::convert::{Json, enum_input, object_input, opt_text, text, time_input};
use crate::app::AppError;
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
pub fn event(v: &Value) -> Result<pb::Event, AppError> {
    let j = Json(v);
    Ok(pb::Event {
        id: j.s("id")?,
        name: j.s("name")?,
        slug: j.s("slug")?,
        description: j.opt_s("description")?,
        status: j.enumerated("status", EVENT_STATUSES)?,
        start_time: j.time("start_time")?,
        end_time: j.time("end_time")?,
        timezone: j.opt_s("timezone")?,
        venue: j.opt_s("venue")?,
        city: j.opt_s("city")?,
        country: j.opt_s("country")?,
        online_url: j.opt_s("online_url")?,
        website_url: j.opt_s("website_url")?,
        metadata: j.object("metadata")?,
        etag: j.s("etag")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
        quality: quality(&j)?,
    })
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
pub fn speaker(v: &Value) -> Result<pb::Speaker, AppError> {
    let j = Json(v);
    Ok(pb::Speaker {
        id: j.s("id")?,
        name: j.s("name")?,
        normalized_name: j.s("normalized_name")?,
        title: j.opt_s("title")?,
        bio: j.opt_s("bio")?,
        company_id: j.opt_s("company_id")?,
        linkedin_url: j.opt_s("linkedin_url")?,
        twitter_url: j.opt_s("twitter_url")?,
        website_url: j.opt_s("website_url")?,
        avatar_url: j.opt_s("avatar_url")?,
        confidence_score: j.opt_f64("confidence_score")?,
        etag: j.s("etag")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
        quality: quality(&j)?,
    })
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
pub fn company(v: &Value) -> Result<pb::Company, AppError> {
    let j = Json(v);
    Ok(pb::Company {
        id: j.s("id")?,
        name: j.s("name")?,
        normalized_name: j.s("normalized_name")?,
        domain: j.opt_s("domain")?,
        description: j.opt_s("description")?,
        website_url: j.opt_s("website_url")?,
        logo_url: j.opt_s("logo_url")?,
        size: j.opt_s("size")?,
        location: j.opt_s("location")?,
        etag: j.s("etag")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
        quality: quality(&j)?,
    })
}

/// Inputs of a Topic.
pub fn topic_inputs(topic: pb::Topic) -> Vec<(&'static str, Input)> {
    let pb::Topic { id: _, name, normalized_name: _, description, parent_id, etag: _, create_time: _, update_time: _ } =
        topic;
    vec![("name", text(name)), ("description", opt_text(description)), ("parent_id", opt_text(parent_id))]
}

/// A Topic from its JSON.
pub fn topic(v: &Value) -> Result<pb::Topic, AppError> {
    let j = Json(v);
    Ok(pb::Topic {
        id: j.s("id")?,
        name: j.s("name")?,
        normalized_name: j.s("normalized_name")?,
        description: j.opt_s("description")?,
        parent_id: j.opt_s("parent_id")?,
        etag: j.s("etag")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
    })
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
pub fn media(v: &Value) -> Result<pb::Media, AppError> {
    let j = Json(v);
    Ok(pb::Media {
        id: j.s("id")?,
        event_id: j.s("event_id")?,
        kind: j.enumerated("kind", MEDIA_KINDS)?,
        url: j.s("url")?,
        title: j.opt_s("title")?,
        mime_type: j.opt_s("mime_type")?,
        bytes: j.opt_i64("bytes")?,
        capture_time: j.time("capture_time")?,
        metadata: j.object("metadata")?,
        etag: j.s("etag")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
    })
}

/// An EventSpeaker from its JSON (with `speaker` or `event` embedded when listed).
pub fn event_speaker(v: &Value) -> Result<pb::EventSpeaker, AppError> {
    let j = Json(v);
    Ok(pb::EventSpeaker {
        event_id: j.s("event_id")?,
        speaker_id: j.s("speaker_id")?,
        role: j.enumerated("role", SPEAKER_ROLES)?,
        talk_title: j.opt_s("talk_title")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
        speaker: j.nested("speaker").map(speaker).transpose()?,
        event: j.nested("event").map(event).transpose()?,
    })
}

/// An EventCompany from its JSON.
pub fn event_company(v: &Value) -> Result<pb::EventCompany, AppError> {
    let j = Json(v);
    Ok(pb::EventCompany {
        event_id: j.s("event_id")?,
        company_id: j.s("company_id")?,
        relation: j.enumerated("relation", COMPANY_RELATIONS)?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
        company: j.nested("company").map(company).transpose()?,
        event: j.nested("event").map(event).transpose()?,
    })
}

/// An EventTopic from its JSON.
pub fn event_topic(v: &Value) -> Result<pb::EventTopic, AppError> {
    let j = Json(v);
    Ok(pb::EventTopic {
        event_id: j.s("event_id")?,
        topic_id: j.s("topic_id")?,
        relevance: j.opt_f64("relevance")?,
        create_time: j.time("create_time")?,
        update_time: j.time("update_time")?,
        topic: j.nested("topic").map(topic).transpose()?,
        event: j.nested("event").map(event).transpose()?,
    })
}

/// The quality of an event, speaker or company from its JSON.
fn quality(j: &Json<'_>) -> Result<Option<pb::Quality>, AppError> {
    let q = Json(j.nested_required("quality")?);
    let reasons = q
        .items("reasons")?
        .iter()
        .map(|r| {
            r.as_str()
                .map(str::to_owned)
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a quality reason is not text")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(pb::Quality { score: q.f64("score")?, reasons }))
}

/// An EventContext from its JSON (`store::contexts`), with the text rendering when asked.
pub fn event_context(v: &Value, with_text: bool) -> Result<pb::EventContext, AppError> {
    let j = Json(v);
    let counts = Json(j.nested_required("counts")?);
    let count = |key: &str| -> Result<i32, AppError> {
        counts
            .opt_i64(key)?
            .map(|n| n as i32)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("context count {key} is null")))
    };
    Ok(pb::EventContext {
        event: Some(event(j.nested_required("event")?)?),
        speakers: j
            .items("speakers")?
            .iter()
            .map(|s| {
                let s = Json(s);
                Ok(pb::ContextSpeaker {
                    speaker: Some(speaker(s.nested_required("speaker")?)?),
                    role: s.enumerated("role", SPEAKER_ROLES)?,
                    talk_title: s.opt_s("talk_title")?,
                    company: s.opt_nested("company")?.map(company).transpose()?,
                })
            })
            .collect::<Result<_, AppError>>()?,
        companies: j
            .items("companies")?
            .iter()
            .map(|c| {
                let c = Json(c);
                Ok(pb::ContextCompany {
                    company: Some(company(c.nested_required("company")?)?),
                    relation: c.enumerated("relation", COMPANY_RELATIONS)?,
                })
            })
            .collect::<Result<_, AppError>>()?,
        topics: j
            .items("topics")?
            .iter()
            .map(|t| {
                let t = Json(t);
                Ok(pb::ContextTopic {
                    topic: Some(topic(t.nested_required("topic")?)?),
                    relevance: t.f64("relevance")?,
                    parent: t.opt_nested("parent")?.map(topic).transpose()?,
                })
            })
            .collect::<Result<_, AppError>>()?,
        media: j.items("media")?.iter().map(media).collect::<Result<_, _>>()?,
        counts: Some(pb::ContextCounts {
            speakers: count("speakers")?,
            companies: count("companies")?,
            topics: count("topics")?,
            media: count("media")?,
        }),
        text: if with_text { crate::domain::context_text::render(v) } else { String::new() },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored_topic() -> Value {
        json!({
            "id": "018cc251-f400-712a-b277-27f5fdd2d347", "name": "Rust", "normalized_name": "rust",
            "description": null, "parent_id": null, "etag": "3",
            "create_time": "2026-11-30T10:00:00.5+00:00", "update_time": "2026-11-30T11:00:00+00:00"
        })
    }

    fn stored_media() -> Value {
        json!({
            "id": "018cc251-f400-712a-b277-27f5fdd2d348", "event_id": "018cc251-f400-712a-b277-27f5fdd2d347",
            "kind": "video", "url": "https://x.test/v", "title": null, "mime_type": null, "bytes": 42,
            "capture_time": null, "metadata": {"a": 1}, "etag": "1",
            "create_time": "2026-11-30T10:00:00+00:00", "update_time": "2026-11-30T10:00:00+00:00"
        })
    }

    fn is_internal<T: std::fmt::Debug>(rendered: Result<T, AppError>) -> bool {
        matches!(rendered, Err(AppError::Internal(_)))
    }

    #[test]
    fn a_stored_resource_renders_with_nulls_as_unset() {
        let topic = topic(&stored_topic()).expect("renders");
        assert_eq!((topic.name.as_str(), topic.etag.as_str(), topic.description), ("Rust", "3", None));
        assert_eq!(topic.create_time.map(|t| (t.seconds, t.nanos)), Some((1_796_032_800, 500_000_000)));
        let media = media(&stored_media()).expect("renders");
        assert_eq!((media.kind, media.bytes, media.capture_time), (pb::MediaKind::Video as i32, Some(42), None));
    }

    #[test]
    fn a_missing_key_is_an_internal_error_not_an_empty_string() {
        let mut v = stored_topic();
        v.as_object_mut().expect("object").remove("name");
        assert!(is_internal(topic(&v)));
        let mut v = stored_topic();
        v["etag"] = json!(3);
        assert!(is_internal(topic(&v)), "a number where text is promised");
    }

    #[test]
    fn an_unknown_enum_name_is_an_internal_error_not_unspecified() {
        let mut v = stored_media();
        v["kind"] = json!("hologram");
        assert!(is_internal(media(&v)));
    }

    #[test]
    fn an_unparsable_time_is_an_internal_error_not_unset() {
        let mut v = stored_topic();
        v["update_time"] = json!("yesterday");
        assert!(is_internal(topic(&v)));
    }
}
