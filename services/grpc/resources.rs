//! Each resource's proto message ⇄ domain: inputs for validation, and the typed resources back to the messages.
//! Both directions destructure in full, so a new field on either side does not compile until it is handled here.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use super::convert::{enum_input, json_to_struct, object_input, opt_text, text, time_input};
use crate::app::AppError;
use crate::domain::catalogue::{EVENT_STATUSES, MEDIA_KINDS};
use crate::domain::fields::Input;
use crate::domain::resources::{
    Company, CompanyRelation, ContextCompany, ContextCounts, ContextSpeaker, ContextTopic, Event, EventCompany,
    EventContext, EventSpeaker, EventStatus, EventTopic, Media, MediaKind, Quality, Relation, Resource, Speaker,
    SpeakerRole, Topic,
};
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

/// Inputs of a Topic.
pub fn topic_inputs(topic: pb::Topic) -> Vec<(&'static str, Input)> {
    let pb::Topic { id: _, name, normalized_name: _, description, parent_id, etag: _, create_time: _, update_time: _ } =
        topic;
    vec![("name", text(name)), ("description", opt_text(description)), ("parent_id", opt_text(parent_id))]
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

// ---- typed resources -> proto ------------------------------------------------------------------------------

fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

fn status(status: EventStatus) -> pb::EventStatus {
    match status {
        EventStatus::Draft => pb::EventStatus::Draft,
        EventStatus::Scheduled => pb::EventStatus::Scheduled,
        EventStatus::Live => pb::EventStatus::Live,
        EventStatus::Completed => pb::EventStatus::Completed,
        EventStatus::Cancelled => pb::EventStatus::Cancelled,
    }
}

fn media_kind(kind: MediaKind) -> pb::MediaKind {
    match kind {
        MediaKind::Image => pb::MediaKind::Image,
        MediaKind::Video => pb::MediaKind::Video,
        MediaKind::Audio => pb::MediaKind::Audio,
        MediaKind::Document => pb::MediaKind::Document,
        MediaKind::Slides => pb::MediaKind::Slides,
        MediaKind::Other => pb::MediaKind::Other,
    }
}

fn role(role: SpeakerRole) -> pb::SpeakerRole {
    match role {
        SpeakerRole::Keynote => pb::SpeakerRole::Keynote,
        SpeakerRole::Speaker => pb::SpeakerRole::Speaker,
        SpeakerRole::Panelist => pb::SpeakerRole::Panelist,
        SpeakerRole::Moderator => pb::SpeakerRole::Moderator,
    }
}

fn company_relation(relation: CompanyRelation) -> pb::CompanyRelation {
    match relation {
        CompanyRelation::Host => pb::CompanyRelation::Host,
        CompanyRelation::Sponsor => pb::CompanyRelation::Sponsor,
        CompanyRelation::Exhibitor => pb::CompanyRelation::Exhibitor,
        CompanyRelation::Partner => pb::CompanyRelation::Partner,
    }
}

fn quality(Quality { score, reasons }: Quality) -> Option<pb::Quality> {
    Some(pb::Quality { score, reasons })
}

/// An Event.
pub fn event(event: Event) -> pb::Event {
    let Event {
        id,
        name,
        slug,
        description,
        status: stored_status,
        start_time,
        end_time,
        timezone,
        venue,
        city,
        country,
        online_url,
        website_url,
        metadata,
        etag,
        create_time,
        update_time,
        quality: stored_quality,
    } = event;
    pb::Event {
        id: id.to_string(),
        name,
        slug,
        description,
        status: status(stored_status) as i32,
        start_time: start_time.map(timestamp),
        end_time: end_time.map(timestamp),
        timezone,
        venue,
        city,
        country,
        online_url,
        website_url,
        metadata: metadata.as_ref().map(json_to_struct),
        etag,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        quality: quality(stored_quality),
    }
}

/// A Speaker.
pub fn speaker(speaker: Speaker) -> pb::Speaker {
    let Speaker {
        id,
        name,
        normalized_name,
        title,
        bio,
        company_id,
        linkedin_url,
        twitter_url,
        website_url,
        avatar_url,
        confidence_score,
        etag,
        create_time,
        update_time,
        quality: stored_quality,
    } = speaker;
    pb::Speaker {
        id: id.to_string(),
        name,
        normalized_name,
        title,
        bio,
        company_id: company_id.map(|id| id.to_string()),
        linkedin_url,
        twitter_url,
        website_url,
        avatar_url,
        confidence_score,
        etag,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        quality: quality(stored_quality),
    }
}

/// A Company.
pub fn company(company: Company) -> pb::Company {
    let Company {
        id,
        name,
        normalized_name,
        domain,
        description,
        website_url,
        logo_url,
        size,
        location,
        etag,
        create_time,
        update_time,
        quality: stored_quality,
    } = company;
    pb::Company {
        id: id.to_string(),
        name,
        normalized_name,
        domain,
        description,
        website_url,
        logo_url,
        size,
        location,
        etag,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        quality: quality(stored_quality),
    }
}

/// A Topic.
pub fn topic(topic: Topic) -> pb::Topic {
    let Topic { id, name, normalized_name, description, parent_id, etag, create_time, update_time } = topic;
    pb::Topic {
        id: id.to_string(),
        name,
        normalized_name,
        description,
        parent_id: parent_id.map(|id| id.to_string()),
        etag,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
    }
}

/// A Media item.
pub fn media(media: Media) -> pb::Media {
    let Media {
        id,
        event_id,
        kind,
        url,
        title,
        mime_type,
        bytes,
        capture_time,
        metadata,
        etag,
        create_time,
        update_time,
    } = media;
    pb::Media {
        id: id.to_string(),
        event_id: event_id.to_string(),
        kind: media_kind(kind) as i32,
        url,
        title,
        mime_type,
        bytes,
        capture_time: capture_time.map(timestamp),
        metadata: metadata.as_ref().map(json_to_struct),
        etag,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
    }
}

/// An EventSpeaker (with `speaker` or `event` embedded when listed).
pub fn event_speaker(relation: EventSpeaker) -> pb::EventSpeaker {
    let EventSpeaker {
        event_id,
        speaker_id,
        role: stored_role,
        talk_title,
        create_time,
        update_time,
        speaker: far,
        event: near,
    } = relation;
    pb::EventSpeaker {
        event_id: event_id.to_string(),
        speaker_id: speaker_id.to_string(),
        role: role(stored_role) as i32,
        talk_title,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        speaker: far.map(speaker),
        event: near.map(event),
    }
}

/// An EventCompany (with `company` or `event` embedded when listed).
pub fn event_company(relation: EventCompany) -> pb::EventCompany {
    let EventCompany {
        event_id,
        company_id,
        relation: stored_relation,
        create_time,
        update_time,
        company: far,
        event: near,
    } = relation;
    pb::EventCompany {
        event_id: event_id.to_string(),
        company_id: company_id.to_string(),
        relation: company_relation(stored_relation) as i32,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        company: far.map(company),
        event: near.map(event),
    }
}

/// An EventTopic (with `topic` or `event` embedded when listed).
pub fn event_topic(relation: EventTopic) -> pb::EventTopic {
    let EventTopic { event_id, topic_id, relevance, create_time, update_time, topic: far, event: near } = relation;
    pb::EventTopic {
        event_id: event_id.to_string(),
        topic_id: topic_id.to_string(),
        relevance,
        create_time: Some(timestamp(create_time)),
        update_time: Some(timestamp(update_time)),
        topic: far.map(topic),
        event: near.map(event),
    }
}

/// An EventContext, with the text rendering when asked (rendered from the context's JSON form, the form the
/// documented text layout reads).
pub fn event_context(context: EventContext, with_text: bool) -> Result<pb::EventContext, AppError> {
    let text = if with_text {
        let json = serde_json::to_value(&context).map_err(|e| AppError::Internal(e.into()))?;
        crate::domain::context_text::render(&json)
    } else {
        String::new()
    };
    let EventContext { event: subject, speakers, companies, topics, media: items, counts } = context;
    let ContextCounts { speakers: speaker_count, companies: company_count, topics: topic_count, media: media_count } =
        counts;
    Ok(pb::EventContext {
        event: Some(event(subject)),
        speakers: speakers
            .into_iter()
            .map(|ContextSpeaker { speaker: s, role: r, talk_title, company: employer }| pb::ContextSpeaker {
                speaker: Some(speaker(s)),
                role: role(r) as i32,
                talk_title,
                company: employer.map(company),
            })
            .collect(),
        companies: companies
            .into_iter()
            .map(|ContextCompany { company: c, relation }| pb::ContextCompany {
                company: Some(company(c)),
                relation: company_relation(relation) as i32,
            })
            .collect(),
        topics: topics
            .into_iter()
            .map(|ContextTopic { topic: t, relevance, parent }| pb::ContextTopic {
                topic: Some(topic(t)),
                relevance,
                parent: parent.map(topic),
            })
            .collect(),
        media: items.into_iter().map(media).collect(),
        counts: Some(pb::ContextCounts {
            speakers: speaker_count,
            companies: company_count,
            topics: topic_count,
            media: media_count,
        }),
        text,
    })
}

// ---- resources of a kind the handler names -------------------------------------------------------------------

/// An Event from a resource the use case returned for `Kind::Event`.
pub fn event_from(resource: Resource) -> Result<pb::Event, AppError> {
    Ok(event(resource.into_event()?))
}

/// A Speaker from a resource returned for `Kind::Speaker`.
pub fn speaker_from(resource: Resource) -> Result<pb::Speaker, AppError> {
    Ok(speaker(resource.into_speaker()?))
}

/// A Company from a resource returned for `Kind::Company`.
pub fn company_from(resource: Resource) -> Result<pb::Company, AppError> {
    Ok(company(resource.into_company()?))
}

/// A Topic from a resource returned for `Kind::Topic`.
pub fn topic_from(resource: Resource) -> Result<pb::Topic, AppError> {
    Ok(topic(resource.into_topic()?))
}

/// A Media item from a resource returned for `Kind::Media`.
pub fn media_from(resource: Resource) -> Result<pb::Media, AppError> {
    Ok(media(resource.into_media()?))
}

/// A relation of another kind than the handler's: a defect of ours.
fn wrong_relation(expected: &'static str, got: &Relation) -> AppError {
    AppError::Internal(anyhow::anyhow!("expected an event {expected} relation, got {:?}", got.kind()))
}

/// An EventSpeaker from a relation returned for `RelationKind::Speaker`.
pub fn event_speaker_from(relation: Relation) -> Result<pb::EventSpeaker, AppError> {
    match relation {
        Relation::Speaker(r) => Ok(event_speaker(r)),
        other => Err(wrong_relation("speaker", &other)),
    }
}

/// An EventCompany from a relation returned for `RelationKind::Company`.
pub fn event_company_from(relation: Relation) -> Result<pb::EventCompany, AppError> {
    match relation {
        Relation::Company(r) => Ok(event_company(r)),
        other => Err(wrong_relation("company", &other)),
    }
}

/// An EventTopic from a relation returned for `RelationKind::Topic`.
pub fn event_topic_from(relation: Relation) -> Result<pb::EventTopic, AppError> {
    match relation {
        Relation::Topic(r) => Ok(event_topic(r)),
        other => Err(wrong_relation("topic", &other)),
    }
}
