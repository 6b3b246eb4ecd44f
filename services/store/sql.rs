//! The one way the store builds a statement's text at run time. Statements that depend on the kind (its table, its
//! projection), on a field mask (the columns an update sets) or on a filter are made from templates with named
//! holes, filled only with static text: SQL written in this crate, table and column names from the static table and
//! field specs, parameter numbers and integers. A value a caller sends never becomes text; it is bound as a
//! parameter. That is why [`Sql`] may tell sqlx the text is safe (`SqlSafeStr`) without an `AssertSqlSafe` at
//! every call, and why the store and the outbox have no other way to do so (a unit test below checks).

use std::fmt;
use std::sync::OnceLock;

use sqlx::{SqlSafeStr, SqlStr};

/// A statement, or a part of one, made only of static text (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sql(String);

/// What fills a hole of a template.
#[derive(Debug, Clone)]
pub enum Fill {
    /// Static text: a name from the specs, a projection, a fixed piece of SQL.
    Text(&'static str),
    /// A part built before.
    Sql(Sql),
    /// A parameter by number (`$n`).
    Param(usize),
    /// An integer written into the statement (a LIMIT).
    Number(i64),
    /// A finite number written into the statement, as a `float8`.
    Float(f64),
}

impl From<&'static str> for Fill {
    fn from(text: &'static str) -> Fill {
        Fill::Text(text)
    }
}

impl From<Sql> for Fill {
    fn from(sql: Sql) -> Fill {
        Fill::Sql(sql)
    }
}

impl Sql {
    /// Static text as it is.
    pub fn text(text: &'static str) -> Sql {
        Sql(text.to_owned())
    }

    /// `template` with each `{name}` replaced by the fill named so in `fills`, in one pass: a fill's text is never
    /// scanned for holes. A `{` that does not open a name of lower-case letters, digits and `_` closed by `}` is
    /// text (`'{}'::jsonb`). A hole without a fill, or a fill without a hole, is a mistake in the code, not in a
    /// request: it panics, and the tests build and prepare every statement of every kind.
    pub fn template(template: &'static str, fills: &[(&'static str, Fill)]) -> Sql {
        let mut out = String::with_capacity(template.len() * 2);
        let mut used = vec![false; fills.len()];
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let name_len = after.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            match name_len {
                Some(n) if n > 0 && after[n..].starts_with('}') => {
                    let name = &after[..n];
                    let Some(i) = fills.iter().position(|(hole, _)| *hole == name) else {
                        panic!("no fill for {{{name}}} in a statement template");
                    };
                    used[i] = true;
                    fills[i].1.write_to(&mut out);
                    rest = &after[n + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        if let Some(i) = used.iter().position(|used| !used) {
            panic!("the fill {} has no hole in its statement template", fills[i].0);
        }
        Sql(out)
    }

    /// `item` (a template whose one hole is `{c}`) for each of `names`, joined by `separator`: a column list
    /// (`"{c}"`, `"p.{c}"`) or assignments (`"{c} = p.{c}"`).
    pub fn each(names: &[&'static str], item: &'static str, separator: &'static str) -> Sql {
        let parts: Vec<String> = names.iter().map(|name| Sql::template(item, &[("c", Fill::Text(name))]).0).collect();
        Sql(parts.join(separator))
    }

    /// Appends `part`.
    pub fn push(&mut self, part: impl Into<Fill>) -> &mut Sql {
        part.into().write_to(&mut self.0);
        self
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Fill {
    fn write_to(&self, out: &mut String) {
        use fmt::Write;
        match self {
            Fill::Text(text) => out.push_str(text),
            Fill::Sql(sql) => out.push_str(&sql.0),
            Fill::Param(n) => write!(out, "${n}").expect("writing to a String"),
            Fill::Number(n) => write!(out, "{n}").expect("writing to a String"),
            Fill::Float(x) => {
                assert!(x.is_finite(), "a statement's number is finite");
                write!(out, "{x:?}::float8").expect("writing to a String")
            }
        }
    }
}

impl fmt::Display for Sql {
    /// For `QueryBuilder::push`, whose statements bind their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SqlSafeStr for Sql {
    fn into_sql_str(self) -> SqlStr {
        // Safe by construction: only static text and numbers went in.
        sqlx::AssertSqlSafe(self.0).into_sql_str()
    }
}

/// Statements built once per process, for those that depend only on a few static choices (the kind, one id or
/// many): slot `i` holds the text `build` made the first time it was asked for. A hot read then neither builds its
/// text nor copies it (a `SqlStr` clone shares it), about 4 % of the service's CPU a Get before.
pub struct Built<const N: usize>([OnceLock<SqlStr>; N]);

impl<const N: usize> Built<N> {
    /// No statement built yet.
    pub const fn new() -> Self {
        Self([const { OnceLock::new() }; N])
    }

    /// The statement of slot `slot`, built by `build` if it is the first call for that slot.
    pub fn get(&self, slot: usize, build: impl FnOnce() -> Sql) -> SqlStr {
        self.0[slot].get_or_init(|| build().into_sql_str()).clone()
    }
}

impl<const N: usize> Default for Built<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_statement_is_built_once_per_slot() {
        static BUILT: Built<2> = Built::new();
        let mut builds = 0;
        let mut get = |slot: usize| {
            BUILT.get(slot, || {
                builds += 1;
                Sql::template("SELECT {n}", &[("n", Fill::Number(slot as i64))])
            })
        };
        assert_eq!(get(0).as_str(), "SELECT 0");
        assert_eq!(get(1).as_str(), "SELECT 1");
        assert_eq!(get(0).as_str(), "SELECT 0");
        assert_eq!(builds, 2);
    }

    #[test]
    fn holes_are_filled_in_one_pass() {
        let inner = Sql::text("{b}");
        let sql = Sql::template(
            "SELECT {a} FROM {t} WHERE x = {p} LIMIT {n} -- {b}, {f}",
            &[
                ("a", Fill::Sql(inner)),
                ("t", "events".into()),
                ("p", Fill::Param(3)),
                ("n", Fill::Number(21)),
                ("b", "B".into()),
                ("f", Fill::Float(1000.0)),
            ],
        );
        // The `{b}` that came in with a fill stays as it is.
        assert_eq!(sql.as_str(), "SELECT {b} FROM events WHERE x = $3 LIMIT 21 -- B, 1000.0::float8");
    }

    #[test]
    fn braces_that_are_not_holes_are_text() {
        let sql = Sql::template("SELECT '{}'::jsonb, '{\"k\": 1}'::jsonb, {x}", &[("x", "1".into())]);
        assert_eq!(sql.as_str(), "SELECT '{}'::jsonb, '{\"k\": 1}'::jsonb, 1");
    }

    #[test]
    #[should_panic(expected = "no fill for {missing}")]
    fn a_hole_without_a_fill_is_a_mistake() {
        Sql::template("SELECT {missing}", &[]);
    }

    #[test]
    #[should_panic(expected = "the fill extra has no hole")]
    fn a_fill_without_a_hole_is_a_mistake() {
        Sql::template("SELECT 1", &[("extra", "x".into())]);
    }

    #[test]
    fn lists_are_made_of_names() {
        assert_eq!(Sql::each(&["name", "slug"], "{c} = p.{c}", ", ").as_str(), "name = p.name, slug = p.slug");
        assert_eq!(Sql::each(&[], "p.{c}", ", ").as_str(), "");
        let mut sql = Sql::text("SELECT ");
        sql.push("1").push(Fill::Param(2));
        assert_eq!(sql.as_str(), "SELECT 1$2");
    }

    #[test]
    fn no_other_module_of_the_store_or_the_outbox_vouches_for_a_text() {
        let mut found = Vec::new();
        for layer in ["store", "outbox"] {
            let dir = format!("{}/services/{layer}", env!("CARGO_MANIFEST_DIR"));
            for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
                let path = file.expect("entry").path();
                if path.ends_with("store/sql.rs") {
                    continue;
                }
                let source = std::fs::read_to_string(&path).expect("source");
                for (n, line) in source.lines().enumerate().filter(|(_, line)| line.contains("AssertSqlSafe")) {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "statements built outside store::sql:\n{}", found.join("\n"));
    }
}
