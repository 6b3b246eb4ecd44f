//! Reads in one round trip. A read confined to an organization used to take three: `BEGIN` with the organization,
//! the statement, `COMMIT`. Here the statement confines itself: it is wrapped so that PostgreSQL first sets
//! `app.org_id` for the statement's own (implicit) transaction and only then runs the read, under the same
//! row-level-security policies as ever:
//!
//! ```sql
//! SELECT q.* FROM (SELECT set_config('app.org_id', $org, true) AS org OFFSET 0) s
//! CROSS JOIN LATERAL (SELECT * FROM (<the read>) q0 WHERE s.org IS NOT NULL OFFSET 0) q
//! ```
//!
//! Why the setting comes first: neither side can be flattened into the other (`OFFSET 0`), and the read side
//! refers to `s.org` laterally, so the only plan is a nested loop with `s` outside, parameterized by `s.org`; inside
//! the read side the reference does not depend on the read's rows, so it becomes a one-time filter of a gating node
//! above the read, which the executor evaluates before it starts the read at all (`EXPLAIN` shows
//! `One-Time Filter: (set_config(...) IS NOT NULL)` above the scans). Should that ever change, the read fails closed:
//! without the setting `current_org_id()` is NULL and the policies admit no row (a pooled connection never keeps an
//! organization: the setting is transaction-local).
//!
//! Why the plan is the right one although the organization is set after planning: the policies read it through an
//! InitPlan, `(SELECT current_org_id())` (migration 0010), which the planner never folds, so it estimates "one
//! organization" rather than "no organization". `tests/integration/row_level_security.rs` checks the rows a read
//! admits, that nothing outlives it, and the plan's shape.
//!
//! The read keeps the order it sorts in: a nested loop over one outer row returns the inner rows as they come.
//!
//! Other transaction-local settings can be set the same way ([`open_with`]) when what reads them reads them while
//! the read runs: pgvector's HNSW scan reads `hnsw.ef_search` and `hnsw.iterative_scan` when it fetches its first
//! row, which is after the outer side has set them (`tests/integration/search.rs` shows a setting taking effect).
//! Settings read earlier cannot: the planner's (they are read before the statement runs) and `statement_timeout`
//! (armed when the statement starts); reads that need those run in a transaction (`App::reader`, `App::begin_with`).
//! A confined read is never parallel: `set_config` is parallel-unsafe, so the whole statement is planned serial.

use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::sql::{Fill, Sql};

const HEAD: &str = "SELECT q.* FROM (SELECT set_config('app.org_id', ";
const ORG_END: &str = ", true) AS org";
const READ_START: &str = " OFFSET 0) s CROSS JOIN LATERAL (SELECT * FROM (";
const TAIL: &str = ") q0 WHERE s.org IS NOT NULL OFFSET 0) q";

/// The text of [`wrap`] for literals, as `concat!` makes it: `$org_param` is the organization's parameter
/// (`"$9"`), `$read` the read. For [`crate::confined_query_as!`] (a unit test holds it equal to `wrap`).
#[macro_export]
macro_rules! confined_sql {
    ($org_param:tt, $read:tt) => {
        concat!(
            "SELECT q.* FROM (SELECT set_config('app.org_id', ",
            $org_param,
            "::text, true) AS org OFFSET 0) s CROSS JOIN LATERAL (SELECT * FROM (",
            $read,
            ") q0 WHERE s.org IS NOT NULL OFFSET 0) q"
        )
    };
}

/// [`crate::static_query_as!`] for a static read confined to an organization: the statement [`wrap`] makes of
/// `$read`, checked when the crate compiles as a whole. `$org_param` names the organization's parameter (`"$9"`,
/// the one after the read's own); bind [`org_text`] there, as the last argument. The text appears twice: sqlx's
/// checker takes literals joined by `+`, and `concat!` (`confined_sql!`) gives the runtime the same string.
#[macro_export]
macro_rules! confined_query_as {
    ($row:path, $org_param:tt, $read:tt $(, $arg:expr)* $(,)?) => {{
        if false {
            let _ = ::sqlx::query_as!(
                $row,
                "SELECT q.* FROM (SELECT set_config('app.org_id', "
                    + $org_param
                    + "::text, true) AS org OFFSET 0) s CROSS JOIN LATERAL (SELECT * FROM ("
                    + $read
                    + ") q0 WHERE s.org IS NOT NULL OFFSET 0) q"
                $(, $arg)*
            );
        }
        ::sqlx::query_as::<_, $row>($crate::confined_sql!($org_param, $read))
            $(.bind($arg))*
            .persistent($crate::db::named_statements())
    }};
}

/// `read` (a SELECT whose parameters are `$1`..`$n`) confined to the organization bound as parameter `org_param`
/// (which must be `$n+1`; bind [`org_text`]).
pub fn wrap(read: Sql, org_param: usize) -> Sql {
    let mut sql = Sql::text(HEAD);
    sql.push(Fill::Param(org_param)).push("::text").push(ORG_END).push(READ_START).push(read).push(TAIL);
    sql
}

/// The organization as [`wrap`]'s parameter.
pub fn org_text(org: Uuid) -> String {
    org.to_string()
}

/// Starts a confined read in a query builder (after `prefix`, such as `EXPLAIN `): push the read, then [`close`].
pub fn open(prefix: &'static str, org: Uuid) -> QueryBuilder<Postgres> {
    open_with(prefix, org, &[])
}

/// Like [`open`], with more transaction-local settings (`name`, `value`), applied with the organization before the
/// read starts. Only for settings the read looks up while it runs (see the module's documentation).
pub fn open_with(prefix: &'static str, org: Uuid, settings: &[(&'static str, String)]) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::<Postgres>::new(prefix);
    q.push(HEAD).push_bind(org_text(org)).push("::text").push(ORG_END);
    // Volatile outputs of a subquery are kept (and computed with its row) even when nothing above reads them.
    for (i, (name, value)) in settings.iter().enumerate() {
        q.push(Sql::template(", set_config('{name}', ", &[("name", (*name).into())]))
            .push_bind(value.clone())
            .push(Sql::template("::text, true) AS setting_{i}", &[("i", Fill::Number(i as i64))]));
    }
    q.push(READ_START);
    q
}

/// Ends a read started with [`open`] or [`open_with`].
pub fn close(q: &mut QueryBuilder<Postgres>) {
    q.push(TAIL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_the_outer_side_and_the_read_refers_to_it() {
        let sql = wrap(Sql::text("SELECT t.id FROM events t WHERE t.id = ANY($1)"), 2);
        assert_eq!(
            sql.as_str(),
            "SELECT q.* FROM (SELECT set_config('app.org_id', $2::text, true) AS org OFFSET 0) s \
             CROSS JOIN LATERAL (SELECT * FROM (SELECT t.id FROM events t WHERE t.id = ANY($1)) q0 \
             WHERE s.org IS NOT NULL OFFSET 0) q"
        );
        let mut q = open("EXPLAIN ", Uuid::nil());
        q.push("SELECT 1");
        close(&mut q);
        assert!(q.sql().as_str().starts_with("EXPLAIN SELECT q.* FROM (SELECT set_config('app.org_id', $1::text"));
    }

    #[test]
    fn the_literal_form_is_the_same_statement() {
        let read = "SELECT t.id FROM events t WHERE t.id = ANY($1)";
        assert_eq!(
            crate::confined_sql!("$2", "SELECT t.id FROM events t WHERE t.id = ANY($1)"),
            wrap(Sql::text(read), 2).as_str()
        );
    }

    #[test]
    fn more_settings_are_set_beside_the_organization() {
        let mut q = open_with("", Uuid::nil(), &[("hnsw.ef_search", "100".into())]);
        q.push("SELECT 1");
        close(&mut q);
        assert_eq!(
            q.sql().as_str(),
            "SELECT q.* FROM (SELECT set_config('app.org_id', $1::text, true) AS org, \
             set_config('hnsw.ef_search', $2::text, true) AS setting_0 OFFSET 0) s \
             CROSS JOIN LATERAL (SELECT * FROM (SELECT 1) q0 WHERE s.org IS NOT NULL OFFSET 0) q"
        );
    }
}
