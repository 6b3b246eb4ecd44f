//! The event relations (speakers, companies, topics), handled once. Each relation message says which relation it
//! is, where its ids are and how it renders; one generic handler per method serves all three kinds, and the
//! EventService methods only delegate.

use prost_types::FieldMask;
use tonic::{Response, Status};

use super::convert::{Checks, enum_input, parse_id};
use super::events::MAX_BATCH_CREATE;
use super::handlers::{Api, Place, mask_paths};
use super::resources::{event_company_from, event_speaker_from, event_topic_from};
use crate::app::{AppError, Caller};
use crate::domain::catalogue::{COMPANY_RELATIONS, RelationKind, SPEAKER_ROLES};
use crate::domain::fields::{Input, Patch, validate_update};
use crate::domain::new_resources::NewAttributes;
use crate::domain::queries::{From, NewRelation};
use crate::domain::resources::Relation;
use crate::proto::v1 as pb;

/// A relation message of the API: `EventSpeaker`, `EventCompany` or `EventTopic`.
pub trait RelationMessage: Default + Sized + Send + 'static {
    /// The relation it is.
    const KIND: RelationKind;
    /// The request field that holds it, as violation paths start (`event_speaker.`).
    const FIELD: &'static str;
    /// The field naming the other end (`speaker_id`).
    const OTHER_FIELD: &'static str;
    /// The event's id, as the request holds it.
    fn event_id(&self) -> &str;
    /// The other end's id, as the request holds it.
    fn other_id(&self) -> &str;
    /// Its attributes, keyed by API path.
    fn attributes(&self) -> Vec<(&'static str, Input)>;
    /// The message of a relation the use case returned for [`RelationMessage::KIND`].
    fn render(stored: Relation) -> Result<Self, AppError>;
}

/// Implements [`RelationMessage`] for one relation message: its kind, request field, other-end id field, the
/// function that renders it and how its attributes are read.
macro_rules! relation_message {
    ($msg:ident, $kind:ident, $field:literal, $other:ident, $render:ident, |$r:ident| $attributes:expr) => {
        impl RelationMessage for pb::$msg {
            const KIND: RelationKind = RelationKind::$kind;
            const FIELD: &'static str = $field;
            const OTHER_FIELD: &'static str = stringify!($other);
            fn event_id(&self) -> &str {
                &self.event_id
            }
            fn other_id(&self) -> &str {
                &self.$other
            }
            fn attributes(&self) -> Vec<(&'static str, Input)> {
                let $r = self;
                $attributes
            }
            fn render(stored: Relation) -> Result<Self, AppError> {
                $render(stored)
            }
        }
    };
}

relation_message!(EventSpeaker, Speaker, "event_speaker.", speaker_id, event_speaker_from, |r| vec![
    ("role", enum_input(r.role, SPEAKER_ROLES)),
    ("talk_title", Input::Text(r.talk_title.clone())),
]);
relation_message!(EventCompany, Company, "event_company.", company_id, event_company_from, |r| vec![(
    "relation",
    enum_input(r.relation, COMPANY_RELATIONS)
)]);
relation_message!(EventTopic, Topic, "event_topic.", topic_id, event_topic_from, |r| vec![(
    "relevance",
    Input::Float(r.relevance)
)]);

/// Renders stored relations.
fn render_all<M: RelationMessage>(stored: Vec<Relation>) -> Result<Vec<M>, Status> {
    Ok(stored.into_iter().map(M::render).collect::<Result<_, _>>()?)
}

impl Api {
    /// Add one relation.
    pub(super) async fn add_one<M: RelationMessage>(
        &self,
        caller: &Caller,
        relation: Option<M>,
    ) -> Result<Response<M>, Status> {
        let r = relation.unwrap_or_default();
        let added = self.add_relation(caller, M::KIND, r.event_id(), r.other_id(), r.attributes(), M::FIELD).await?;
        Ok(Response::new(M::render(added)?))
    }

    /// Add a batch of relations, all or none.
    pub(super) async fn add_batch<M: RelationMessage>(
        &self,
        caller: &Caller,
        relations: impl Iterator<Item = Option<M>>,
    ) -> Result<Vec<M>, Status> {
        let items = relations
            .map(|r| {
                let r = r.unwrap_or_default();
                (r.event_id().to_owned(), r.other_id().to_owned(), r.attributes())
            })
            .collect();
        render_all(self.add_relations(caller, M::KIND, items, M::FIELD).await?)
    }

    /// Update one relation's attributes.
    pub(super) async fn update_one<M: RelationMessage>(
        &self,
        caller: &Caller,
        relation: Option<M>,
        update_mask: Option<FieldMask>,
    ) -> Result<Response<M>, Status> {
        let r = relation.unwrap_or_default();
        let updated = self
            .update_relation(caller, M::KIND, r.event_id(), r.other_id(), r.attributes(), update_mask, M::FIELD)
            .await?;
        Ok(Response::new(M::render(updated)?))
    }

    /// Remove one relation.
    pub(super) async fn remove_one<M: RelationMessage>(
        &self,
        caller: &Caller,
        event_id: &str,
        other_id: &str,
    ) -> Result<Response<()>, Status> {
        self.remove_relation(caller, M::KIND, event_id, other_id, M::OTHER_FIELD).await
    }

    /// A page of an event's relations of one kind, and the next page's token.
    pub(super) async fn list_of_event<M: RelationMessage>(
        &self,
        caller: &Caller,
        event_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<M>, String), Status> {
        let page =
            self.list_relations(caller, M::KIND, From::Event, event_id, "event_id", page_size, page_token).await?;
        Ok((render_all(page.items)?, page.next_page_token))
    }
}

/// One item of a batch of relation adds: event id, other id, attributes, as the request holds them.
type RelationItem = (String, String, Vec<(&'static str, Input)>);

/// Relation handlers shared by the three relation kinds.
impl Api {
    /// Adds the relations of a batch (`requests`), all or none: every item checked first, violations named by
    /// item (`requests[2].event_topic.topic_id`), a pair named twice refused.
    async fn add_relations(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        items: Vec<RelationItem>,
        prefix: &'static str,
    ) -> Result<Vec<Relation>, Status> {
        if items.is_empty() || items.len() > MAX_BATCH_CREATE {
            return Err(AppError::invalid("requests", format!("must hold 1 to {MAX_BATCH_CREATE} relations")).into());
        }
        let place = Place::batch("requests", prefix);
        let mut checks = Checks::default();
        let mut relations = Vec::with_capacity(items.len());
        let mut seen = std::collections::HashMap::new();
        for (i, (event_id, other_id, attributes)) in items.iter().enumerate() {
            let item = place.prefix(Some(i));
            let ids = checks.take(relation_ids(kind, event_id, other_id, &item));
            let attributes = checks.take_violations(NewAttributes::parse(kind, attributes).map_err(|v| v.under(&item)));
            let (Some((event_id, other_id)), Some(attributes)) = (ids, attributes) else { continue };
            let first = *seen.entry((event_id, other_id)).or_insert(i);
            if first != i {
                let mut repeated = crate::domain::fields::Violations::default();
                let field = format!("{item}{}_id", kind.target().name());
                repeated.add_in_request(field, format!("repeats requests[{first}]"));
                checks.add(repeated);
            }
            relations.push(NewRelation { event_id, other_id, attributes });
        }
        checks.finish()?;
        Ok(self.app.add_relations(caller, kind, &relations).await.map_err(|e| place.locate(e))?)
    }

    async fn add_relation(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        event_id: &str,
        other_id: &str,
        attributes: Vec<(&'static str, Input)>,
        prefix: &'static str,
    ) -> Result<Relation, Status> {
        let (event_id, other_id) = relation_ids(kind, event_id, other_id, prefix)?;
        let attributes =
            NewAttributes::parse(kind, &attributes).map_err(|v| AppError::InvalidArgument(v.under(prefix)))?;
        let added = self.app.add_relation(caller, kind, event_id, other_id, &attributes).await;
        Ok(added.map_err(|e| Place::single(prefix).locate(e))?)
    }

    #[expect(clippy::too_many_arguments, reason = "mirrors the Update request fields")]
    async fn update_relation(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        event_id: &str,
        other_id: &str,
        attributes: Vec<(&'static str, Input)>,
        mask: Option<prost_types::FieldMask>,
        prefix: &'static str,
    ) -> Result<Relation, Status> {
        let (event_id, other_id) = relation_ids(kind, event_id, other_id, prefix)?;
        let output_only = ["event_id", "speaker_id", "company_id", "topic_id", "create_time", "update_time"];
        let Patch { columns, .. } = validate_update(kind.fields(), &attributes, &mask_paths(mask), &output_only)
            .map_err(|v| AppError::InvalidArgument(v.under(prefix)))?;
        let updated = self.app.update_relation(caller, kind, event_id, other_id, &columns).await;
        Ok(updated.map_err(|e| Place::single(prefix).locate(e))?)
    }

    async fn remove_relation(
        &self,
        caller: &crate::app::Caller,
        kind: RelationKind,
        event_id: &str,
        other_id: &str,
        other_field: &str,
    ) -> Result<Response<()>, Status> {
        let event_id = parse_id("event_id", event_id)?;
        let other_id = parse_id(other_field, other_id)?;
        self.app.remove_relation(caller, kind, event_id, other_id).await?;
        Ok(Response::new(()))
    }
}

fn relation_ids(
    kind: RelationKind,
    event_id: &str,
    other_id: &str,
    prefix: &str,
) -> Result<(uuid::Uuid, uuid::Uuid), AppError> {
    let other_field = format!("{prefix}{}_id", kind.target().name());
    Ok((parse_id(&format!("{prefix}event_id"), event_id)?, parse_id(&other_field, other_id)?))
}
