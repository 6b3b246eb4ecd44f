//! The synthetic catalogue, row by row, as COPY text lines. Every row is a pure function of (seed, size, kind,
//! index): each row draws from its own generator, so a row is the same whatever batch it falls in, and ids are
//! hashed from the organization too, so two organizations seeded alike hold the same content under other ids.

use std::fmt::Write;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::vocabulary::*;

/// Dimension of the seeded embeddings (the schema's `vector(1536)`).
pub const DIMENSION: usize = 1536;
/// The model name seeded embeddings carry.
pub const EMBEDDING_MODEL: &str = "seed-clustered-1536";
/// How many clusters embeddings fall into: events of one cluster share a primary topic family.
const CLUSTERS: usize = 32;
/// Events are placed relative to this date (not "now"), so a seed gives the same statuses on every run.
const REFERENCE_DATE: (i32, u32, u32) = (2026, 1, 1);

/// Column lists, in the order the lines below are written.
pub const TOPIC_COLUMNS: &str = "id, org_id, name, description, parent_id, embedding, embedding_model";
pub const COMPANY_COLUMNS: &str = "id, org_id, name, domain, description, website_url, logo_url, size, location";
pub const SPEAKER_COLUMNS: &str = "id, org_id, name, title, bio, company_id, linkedin_url, twitter_url, \
    website_url, avatar_url, confidence_score, embedding, embedding_model";
pub const EVENT_COLUMNS: &str = "id, org_id, name, slug, description, status, starts_at, ends_at, timezone, \
    venue, city, country, online_url, website_url, metadata, embedding, embedding_model";
pub const EVENT_SPEAKER_COLUMNS: &str = "org_id, event_id, speaker_id, role, talk_title";
pub const EVENT_TOPIC_COLUMNS: &str = "org_id, event_id, topic_id, relevance";
pub const EVENT_COMPANY_COLUMNS: &str = "org_id, event_id, company_id, relation";
pub const MEDIA_COLUMNS: &str = "id, org_id, event_id, kind, url, title, mime_type, bytes, captured_at, metadata";

/// The kinds of generated rows, each with its own id and random stream.
#[derive(Debug, Clone, Copy)]
pub enum Entity {
    Topic,
    Company,
    Speaker,
    Event,
    Media,
    Cluster,
}

impl Entity {
    fn tag(self) -> &'static str {
        match self {
            Entity::Topic => "topic",
            Entity::Company => "company",
            Entity::Speaker => "speaker",
            Entity::Event => "event",
            Entity::Media => "media",
            Entity::Cluster => "cluster",
        }
    }
}

/// How big each part of the catalogue is for a number of events, and the embedding centres.
pub struct Plan {
    pub org_id: Uuid,
    pub seed: u64,
    pub events: u64,
    pub speakers: u64,
    pub companies: u64,
    pub topics: u64,
    /// Events and speakers with an index below this carry an embedding (topics always do).
    pub embedded: u64,
    centres: Vec<Vec<f32>>,
}

/// The rows of one batch of events: the events and everything that hangs off them.
#[derive(Default)]
pub struct EventBatch {
    pub events: String,
    pub speakers: String,
    pub topics: String,
    pub companies: String,
    pub media: String,
    pub relation_count: u64,
}

/// The timestamp of the first seeded row of each kind: 2024-01-01T00:00:00Z.
pub const SEED_EPOCH_MS: u64 = 1_704_067_200_000;

impl Plan {
    /// The plan for `events` events: ~0.4 speakers, 0.05 companies and 0.01 topics per event (with floors so a
    /// small demo set still has variety), `embedded` events and speakers with embeddings.
    pub fn new(org_id: Uuid, seed: u64, events: u64, embedded: u64) -> Plan {
        let speakers = (events * 2 / 5).max(50);
        let companies = (events / 20).max(20);
        let topics = (events / 100).clamp(TOPICS.len() as u64, 600);
        let mut plan = Plan { org_id, seed, events, speakers, companies, topics, embedded, centres: Vec::new() };
        plan.centres = (0..CLUSTERS as u64)
            .map(|k| {
                let mut rng = plan.rng(Entity::Cluster, k);
                normalized((0..DIMENSION).map(|_| gaussian(&mut rng)).collect())
            })
            .collect();
        plan
    }

    /// The id of row `index` of `entity`: a UUIDv7 like every id of the API, deterministic: its timestamp is
    /// [`SEED_EPOCH_MS`] plus the index (so rows of one kind sort and index in load order, as API-made ids do),
    /// its 74 random bits a hash of the organization, seed, kind and index.
    pub fn id(&self, entity: Entity, index: u64) -> Uuid {
        let mut hash = Sha256::new();
        hash.update(self.org_id.as_bytes());
        hash.update(self.seed.to_le_bytes());
        hash.update(entity.tag().as_bytes());
        hash.update(index.to_le_bytes());
        let digest = hash.finalize();
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        uuid::Builder::from_unix_timestamp_millis(SEED_EPOCH_MS + index, &random).into_uuid()
    }

    /// The random stream of row `index` of `entity`: from the seed, kind and index only, so every organization
    /// seeded with the same seed gets the same content (under its own ids).
    fn rng(&self, entity: Entity, index: u64) -> Xoshiro256PlusPlus {
        let mut hash = Sha256::new();
        hash.update(self.seed.to_le_bytes());
        hash.update(entity.tag().as_bytes());
        hash.update(index.to_le_bytes());
        let digest = hash.finalize();
        Xoshiro256PlusPlus::seed_from_u64(u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()))
    }

    /// The topic `index`: the stems first (the roots), then qualified stems under their stem.
    pub fn topic_name(index: u64) -> String {
        let stems = TOPICS.len() as u64;
        let stem = TOPICS[(index % stems) as usize];
        match index / stems {
            0 => stem.to_string(),
            n if n <= TOPIC_QUALIFIERS.len() as u64 => format!("{} {stem}", TOPIC_QUALIFIERS[(n - 1) as usize]),
            n => format!("{stem} {n}"),
        }
    }

    /// Appends topic `index` to `out`.
    pub fn topic_row(&self, index: u64, out: &mut String) {
        let mut rng = self.rng(Entity::Topic, index);
        let name = Self::topic_name(index);
        let stems = TOPICS.len() as u64;
        let parent = (index >= stems).then(|| self.id(Entity::Topic, index % stems).to_string());
        let description = rng.random_bool(0.7).then(|| format!("Talks, tools and practice of {name}."));
        let embedding = self.embedding(&mut rng, self.topic_cluster(index), 0.25);
        line(
            out,
            &[
                Some(&self.id(Entity::Topic, index).to_string()),
                Some(&self.org_id.to_string()),
                Some(&name),
                description.as_deref(),
                parent.as_deref(),
                Some(&embedding),
                Some(EMBEDDING_MODEL),
            ],
        );
    }

    fn topic_cluster(&self, topic: u64) -> usize {
        (topic % TOPICS.len() as u64) as usize % CLUSTERS
    }

    /// The company `index`'s name: a word and a suffix, numbered beyond the first combinations.
    pub fn company_name(index: u64) -> String {
        let combos = (COMPANY_WORDS.len() * COMPANY_SUFFIXES.len()) as u64;
        let word = COMPANY_WORDS[(index % COMPANY_WORDS.len() as u64) as usize];
        let suffix = COMPANY_SUFFIXES[((index / COMPANY_WORDS.len() as u64) % COMPANY_SUFFIXES.len() as u64) as usize];
        match index / combos {
            0 => format!("{word} {suffix}"),
            n => format!("{word} {suffix} {}", n + 1),
        }
    }

    /// Appends company `index` to `out`.
    pub fn company_row(&self, index: u64, out: &mut String) {
        let mut rng = self.rng(Entity::Company, index);
        let name = Self::company_name(index);
        let domain = format!("{}.example.com", slugify(&name));
        let city = CITIES[rng.random_range(0..CITIES.len())].0;
        let description = rng
            .random_bool(0.6)
            .then(|| format!("{name} builds {} products.", Self::topic_name(rng.random_range(0..TOPICS.len() as u64))));
        let has_domain = rng.random_bool(0.9);
        line(
            out,
            &[
                Some(&self.id(Entity::Company, index).to_string()),
                Some(&self.org_id.to_string()),
                Some(&name),
                has_domain.then_some(domain.as_str()),
                description.as_deref(),
                rng.random_bool(0.8).then(|| format!("https://{domain}")).as_deref(),
                rng.random_bool(0.4).then(|| format!("https://{domain}/logo.png")).as_deref(),
                rng.random_bool(0.85).then(|| COMPANY_SIZES[rng.random_range(0..COMPANY_SIZES.len())]),
                rng.random_bool(0.8).then_some(city),
            ],
        );
    }

    /// The speaker `index`'s name; unique within the plan (first, middle initial, last, then a number).
    pub fn speaker_name(index: u64) -> String {
        let first = FIRST_NAMES[(index % FIRST_NAMES.len() as u64) as usize];
        let rest = index / FIRST_NAMES.len() as u64;
        let last = LAST_NAMES[(rest % LAST_NAMES.len() as u64) as usize];
        let generation = rest / LAST_NAMES.len() as u64;
        match (generation % 27, generation / 27) {
            (0, 0) => format!("{first} {last}"),
            (0, n) => format!("{first} {last} {}", n + 1),
            (initial, 0) => format!("{first} {}. {last}", (b'A' + initial as u8 - 1) as char),
            (initial, n) => format!("{first} {}. {last} {}", (b'A' + initial as u8 - 1) as char, n + 1),
        }
    }

    /// Appends speaker `index` to `out`.
    pub fn speaker_row(&self, index: u64, out: &mut String) {
        let mut rng = self.rng(Entity::Speaker, index);
        let name = Self::speaker_name(index);
        let handle = slugify(&name);
        let title = rng.random_bool(0.85).then(|| TITLES[rng.random_range(0..TITLES.len())]);
        let company = rng.random_bool(0.75).then(|| self.id(Entity::Company, zipf(&mut rng, self.companies)));
        let topic = Self::topic_name(rng.random_range(0..TOPICS.len() as u64));
        let bio = rng
            .random_bool(0.7)
            .then(|| format!("{name} works on {topic} and speaks about it at conferences around the world."));
        let confidence = 1.0 - rng.random::<f64>().powi(2) * 0.7;
        let embedding =
            (index < self.embedded).then(|| self.embedding(&mut rng, (index % CLUSTERS as u64) as usize, 0.35));
        line(
            out,
            &[
                Some(&self.id(Entity::Speaker, index).to_string()),
                Some(&self.org_id.to_string()),
                Some(&name),
                title,
                bio.as_deref(),
                company.map(|id| id.to_string()).as_deref(),
                rng.random_bool(0.5).then(|| format!("https://www.linkedin.com/in/{handle}")).as_deref(),
                rng.random_bool(0.3).then(|| format!("https://x.com/{handle}")).as_deref(),
                rng.random_bool(0.2).then(|| format!("https://{handle}.example.net")).as_deref(),
                rng.random_bool(0.4).then(|| format!("https://avatars.example.org/{handle}.jpg")).as_deref(),
                Some(&format!("{confidence:.2}")),
                embedding.as_deref(),
                embedding.is_some().then_some(EMBEDDING_MODEL),
            ],
        );
    }

    /// Appends event `index` with its speakers, topics, companies and media to `batch`.
    pub fn event_rows(&self, index: u64, batch: &mut EventBatch) {
        let mut rng = self.rng(Entity::Event, index);
        let id = self.id(Entity::Event, index);
        let (org, event) = (self.org_id.to_string(), id.to_string());

        let topic_count = rng.random_range(2..=4);
        let topics = distinct(&mut rng, topic_count, self.topics);
        let primary = topics[0];
        let (city, country, timezone) = CITIES[rng.random_range(0..CITIES.len())];
        let kind = EVENT_KINDS[rng.random_range(0..EVENT_KINDS.len())];
        let stem = TOPICS[(primary % TOPICS.len() as u64) as usize];

        let reference = Utc
            .with_ymd_and_hms(REFERENCE_DATE.0, REFERENCE_DATE.1, REFERENCE_DATE.2, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let undated = rng.random_bool(0.04);
        let starts = reference + Duration::days(rng.random_range(-7 * 365..2 * 365));
        let ends = starts + Duration::days(rng.random_range(0..3)) + Duration::hours(8);
        let status = match (undated, starts < reference) {
            (true, _) => "draft",
            (false, true) if rng.random_bool(0.07) => "cancelled",
            (false, true) => "completed",
            (false, false) if rng.random_bool(0.15) => "draft",
            (false, false) => "scheduled",
        };
        let year = starts.format("%Y").to_string();
        let name = format!("{city} {stem} {kind} {year}");
        let slug = format!("{}-{index}", slugify(&name));
        let second = Self::topic_name(*topics.get(1).unwrap_or(&primary));
        let description = rng.random_bool(0.85).then(|| {
            format!(
                "{name} brings together practitioners of {} and {second} in {city} for talks, workshops and \
                 hallway conversations.",
                Self::topic_name(primary)
            )
        });
        let venue = rng.random_bool(0.9).then(|| format!("{city} Convention Center"));
        let online = rng.random_bool(0.2).then(|| format!("https://live.example.org/{slug}"));
        let website = rng.random_bool(0.7).then(|| format!("https://{slug}.example.org"));
        let metadata = format!("{{\"capacity\": {}}}", rng.random_range(1..=50) * 100);
        let embedding = (index < self.embedded).then(|| self.embedding(&mut rng, self.topic_cluster(primary), 0.35));
        let (starts_text, ends_text) = (timestamp(starts), timestamp(ends));
        line(
            &mut batch.events,
            &[
                Some(&event),
                Some(&org),
                Some(&name),
                Some(&slug),
                description.as_deref(),
                Some(status),
                (!undated).then_some(starts_text.as_str()),
                (!undated).then_some(ends_text.as_str()),
                Some(timezone),
                venue.as_deref(),
                Some(city),
                Some(country),
                online.as_deref(),
                website.as_deref(),
                Some(&metadata),
                embedding.as_deref(),
                embedding.is_some().then_some(EMBEDDING_MODEL),
            ],
        );

        for (rank, topic) in topics.iter().enumerate() {
            let relevance = format!("{:.2}", 1.0 - rank as f64 * 0.2 - rng.random::<f64>() * 0.1);
            let topic = self.id(Entity::Topic, *topic).to_string();
            line(&mut batch.topics, &[Some(&org), Some(&event), Some(&topic), Some(&relevance)]);
        }
        // A few thin events have no or one speaker.
        let speaker_count = if rng.random_bool(0.06) { rng.random_range(0..=1) } else { rng.random_range(3..=5) };
        for speaker in distinct(&mut rng, speaker_count, self.speakers) {
            let role = SPEAKER_ROLES[rng.random_range(0..SPEAKER_ROLES.len())];
            let talk = rng.random_bool(0.8).then(|| format!("{} in practice", Self::topic_name(primary)));
            let speaker = self.id(Entity::Speaker, speaker).to_string();
            line(&mut batch.speakers, &[Some(&org), Some(&event), Some(&speaker), Some(role), talk.as_deref()]);
        }
        let company_count = rng.random_range(0..=2);
        for company in distinct(&mut rng, company_count, self.companies) {
            let relation = COMPANY_RELATIONS[rng.random_range(0..COMPANY_RELATIONS.len())];
            let company = self.id(Entity::Company, company).to_string();
            line(&mut batch.companies, &[Some(&org), Some(&event), Some(&company), Some(relation)]);
        }
        let media_count = rng.random_range(0..=2u64);
        for slot in 0..media_count {
            let (kind, mime, extension) = MEDIA_KINDS[rng.random_range(0..MEDIA_KINDS.len())];
            let media = self.id(Entity::Media, index * 4 + slot).to_string();
            let url = format!("https://media.example.org/{event}/{slot}.{extension}");
            let title = rng.random_bool(0.8).then(|| format!("{name}: {kind} {}", slot + 1));
            let bytes = rng.random_range(10_000..500_000_000u64).to_string();
            line(
                &mut batch.media,
                &[
                    Some(&media),
                    Some(&org),
                    Some(&event),
                    Some(kind),
                    Some(&url),
                    title.as_deref(),
                    Some(mime),
                    Some(&bytes),
                    (!undated).then_some(starts_text.as_str()),
                    Some("{}"),
                ],
            );
        }
        batch.relation_count += (topic_count + speaker_count + company_count) as u64 + media_count;
    }

    /// A unit vector near the centre of `cluster`: the centre plus Gaussian noise of about `spread` in norm.
    fn embedding(&self, rng: &mut Xoshiro256PlusPlus, cluster: usize, spread: f32) -> String {
        let sigma = spread / (DIMENSION as f32).sqrt();
        let vector = normalized(self.centres[cluster].iter().map(|c| c + gaussian(rng) * sigma).collect::<Vec<_>>());
        let mut text = String::with_capacity(DIMENSION * 9);
        text.push('[');
        for (i, x) in vector.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{x:.5}");
        }
        text.push(']');
        text
    }
}

/// One line of COPY text format: tab-separated, `\N` for NULL. Values never contain tabs, newlines or
/// backslashes (they come from the vocabulary), so nothing needs escaping.
fn line(out: &mut String, values: &[Option<&str>]) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        out.push_str(value.unwrap_or("\\N"));
    }
    out.push('\n');
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S+00").to_string()
}

/// A skewed (Zipf-like) draw from `0..n`: P(rank < k) = (k/n)^(1/3), so the first 1 % of ranks gets about a fifth
/// of the draws and the long tail the rest.
pub fn zipf(rng: &mut Xoshiro256PlusPlus, n: u64) -> u64 {
    let u: f64 = rng.random();
    ((n as f64 * u.powi(3)) as u64).min(n.saturating_sub(1))
}

/// `count` distinct skewed draws from `0..n` (fewer when `n` is smaller).
fn distinct(rng: &mut Xoshiro256PlusPlus, count: usize, n: u64) -> Vec<u64> {
    let mut picked = Vec::with_capacity(count);
    let mut attempts = 0;
    while picked.len() < count.min(n as usize) && attempts < count * 20 {
        let candidate = zipf(rng, n);
        if !picked.contains(&candidate) {
            picked.push(candidate);
        }
        attempts += 1;
    }
    picked
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut Xoshiro256PlusPlus) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normalized(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

/// Lower-case ASCII words joined by hyphens, as the schema's slug check wants.
pub fn slugify(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::new(Uuid::from_u128(7), 42, 1000, 10)
    }

    #[test]
    fn ids_are_uuid_v7_in_index_order() {
        let plan = plan();
        let ids: Vec<Uuid> = (0..100).map(|i| plan.id(Entity::Event, i)).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7), "every id is a UUIDv7");
        assert!(ids.is_sorted(), "ids sort in index order");
        assert_ne!(plan.id(Entity::Event, 3), plan.id(Entity::Speaker, 3), "kinds do not share ids");
    }

    #[test]
    fn rows_are_a_function_of_seed_and_index() {
        let (a, b) = (plan(), plan());
        let (mut first, mut second) = (EventBatch::default(), EventBatch::default());
        a.event_rows(17, &mut first);
        b.event_rows(17, &mut second);
        assert_eq!(first.events, second.events);
        assert_eq!(first.speakers, second.speakers);
        let other = Plan::new(Uuid::from_u128(7), 43, 1000, 10);
        assert_ne!(a.id(Entity::Event, 17), other.id(Entity::Event, 17), "another seed gives other ids");
    }

    #[test]
    fn names_are_unique_where_the_schema_wants_them_unique() {
        let speakers: std::collections::HashSet<_> = (0..300_000).map(Plan::speaker_name).collect();
        assert_eq!(speakers.len(), 300_000);
        let companies: std::collections::HashSet<_> = (0..60_000).map(Plan::company_name).collect();
        assert_eq!(companies.len(), 60_000);
        let topics: std::collections::HashSet<_> = (0..600).map(Plan::topic_name).collect();
        assert_eq!(topics.len(), 600);
    }

    #[test]
    fn popularity_is_skewed() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let draws = (0..100_000).map(|_| zipf(&mut rng, 10_000)).collect::<Vec<_>>();
        let top_percent = draws.iter().filter(|&&d| d < 100).count();
        assert!(top_percent > 15_000, "the top 1 % of 10,000 got {top_percent} of 100,000 draws");
        assert!(draws.iter().all(|&d| d < 10_000));
    }

    #[test]
    fn embeddings_are_unit_vectors_near_their_centre() {
        let plan = plan();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let parse = |text: String| -> Vec<f32> {
            text.trim_matches(['[', ']']).split(',').map(|x| x.parse().expect("a number")).collect()
        };
        let a = parse(plan.embedding(&mut rng, 5, 0.35));
        let b = parse(plan.embedding(&mut rng, 5, 0.35));
        let c = parse(plan.embedding(&mut rng, 6, 0.35));
        let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
        assert_eq!(a.len(), DIMENSION);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-3);
        assert!(dot(&a, &b) > 0.8, "same cluster: {}", dot(&a, &b));
        assert!(dot(&a, &c) < 0.3, "other cluster: {}", dot(&a, &c));
    }
}
