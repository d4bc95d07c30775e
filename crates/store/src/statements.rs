//! Counting the SQL statements the store runs, for tests and the load
//! generator: what a request costs in database work, on either backend.
//!
//! Both backends report every statement they run as a `tracing` event at
//! DEBUG, and only when that level is enabled for its target:
//!
//! - **PostgreSQL**: sqlx reports each statement it sends (target
//!   [`SQLX_TARGET`]; the store keeps sqlx's level, DEBUG, and slow
//!   statements come at WARN instead). A multi-statement simple query (the
//!   writer's `RELEASE SAVEPOINT request; SAVEPOINT request`) is one event:
//!   one round trip. sqlx sends BEGIN and the SAVEPOINT of a nested
//!   transaction without an event, so the store reports those itself
//!   (target [`STATEMENT_TARGET`]). Not reported, because they are no
//!   statements: the ping sqlx sends when it takes a connection from the
//!   read pool, and connection set-up.
//! - **SQLite**: a trace callback on each connection reports every
//!   statement execution, transaction control and savepoints included
//!   (target [`STATEMENT_TARGET`]). The callback is registered only if the
//!   target is enabled when the store opens, so a store opened without it
//!   pays nothing per statement. Trigger programs are part of the statement
//!   that fired them and are not reported.
//!
//! [`Statements`] tallies statements by text and [`Kind`] sorts them;
//! `StatementCounter` (feature `statements`) is the `tracing` layer that
//! feeds a tally from the events.

use std::collections::BTreeMap;

/// The target of the store's own per-statement events (SQLite statements;
/// PostgreSQL BEGIN and SAVEPOINT), each with the SQL in field `statement`.
pub const STATEMENT_TARGET: &str = "ordertrack_store::sql";

/// The target of sqlx's per-statement events (PostgreSQL): the SQL is in
/// field `db.statement`, or, when that is empty (short statements), in
/// `summary`.
pub const SQLX_TARGET: &str = "sqlx::query";

/// What a statement does, from its leading keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `SELECT` (locking reads such as `SELECT … FOR UPDATE` included),
    /// `VALUES`, or a `WITH` query that changes nothing.
    Read,
    /// `INSERT`, `UPDATE`, `DELETE`, or a `WITH` query that does one of them.
    Write,
    /// `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE` (and `ROLLBACK TO`).
    Transaction,
    /// Anything else (`PRAGMA`, `SET`, schema changes).
    Other,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 4] = [Kind::Read, Kind::Write, Kind::Transaction, Kind::Other];

    /// Sorts a statement by its first keyword (comments skipped).
    pub fn of(sql: &str) -> Kind {
        let mut words = keywords(sql);
        match words.next().as_deref() {
            Some("SELECT" | "VALUES" | "TABLE") => Kind::Read,
            Some("INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "MERGE") => Kind::Write,
            Some("BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE") => {
                Kind::Transaction
            }
            Some("WITH") => {
                // A data-changing CTE or a final INSERT/UPDATE/DELETE makes
                // it a write; `FOR UPDATE` is a lock, not a change.
                let mut previous = String::new();
                for word in words {
                    if matches!(word.as_str(), "INSERT" | "UPDATE" | "DELETE" | "MERGE")
                        && previous != "FOR"
                    {
                        return Kind::Write;
                    }
                    previous = word;
                }
                Kind::Read
            }
            _ => Kind::Other,
        }
    }

    /// A short lower-case name: `read`, `write`, `transaction`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Transaction => "transaction",
            Kind::Other => "other",
        }
    }
}

/// The upper-cased words of `sql` outside comments and string literals.
fn keywords(sql: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = sql;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("--") {
                rest = after.split_once('\n').map_or("", |(_, next)| next);
            } else if let Some(after) = rest.strip_prefix("/*") {
                rest = after.split_once("*/").map_or("", |(_, next)| next);
            } else if let Some(after) = rest.strip_prefix('\'') {
                // '' inside a literal splits it in two, which skips it all the same.
                rest = after.split_once('\'').map_or("", |(_, next)| next);
            } else {
                break;
            }
        }
        let first = rest.chars().next()?;
        if first.is_ascii_alphanumeric() || first == '_' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = rest[..end].to_ascii_uppercase();
            rest = &rest[end..];
            Some(word)
        } else {
            rest = &rest[first.len_utf8()..];
            Some(String::new())
        }
    })
    .filter(|word| !word.is_empty())
}

/// A tally of statements by their text (whitespace collapsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statements {
    by_text: BTreeMap<String, u64>,
}

impl Statements {
    /// An empty tally.
    pub fn new() -> Self {
        Statements::default()
    }

    /// Counts one execution of `sql`.
    pub fn record(&mut self, sql: &str) {
        let text = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        *self.by_text.entry(text).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn add(&mut self, other: &Statements) {
        for (text, count) in &other.by_text {
            *self.by_text.entry(text.clone()).or_default() += count;
        }
    }

    /// What was counted after `earlier`, a snapshot of the same tally.
    pub fn since(&self, earlier: &Statements) -> Statements {
        let by_text = self
            .by_text
            .iter()
            .filter_map(|(text, &count)| {
                let before = earlier.by_text.get(text).copied().unwrap_or(0);
                (count > before).then(|| (text.clone(), count - before))
            })
            .collect();
        Statements { by_text }
    }

    /// Statements counted.
    pub fn total(&self) -> u64 {
        self.by_text.values().sum()
    }

    /// Statements of one kind counted.
    pub fn of_kind(&self, kind: Kind) -> u64 {
        self.by_text
            .iter()
            .filter(|(text, _)| Kind::of(text) == kind)
            .map(|(_, count)| count)
            .sum()
    }

    /// How often `text` (whitespace collapsed) ran.
    pub fn count(&self, text: &str) -> u64 {
        self.by_text.get(text).copied().unwrap_or(0)
    }

    /// Statements counted whose text starts with `prefix`.
    pub fn starting_with(&self, prefix: &str) -> u64 {
        self.by_text
            .iter()
            .filter(|(text, _)| text.starts_with(prefix))
            .map(|(_, count)| count)
            .sum()
    }

    /// Each statement text and its count, by text.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.by_text
            .iter()
            .map(|(text, &count)| (text.as_str(), count))
    }
}

#[cfg(feature = "statements")]
pub use counter::StatementCounter;

#[cfg(feature = "statements")]
mod counter {
    use std::sync::{Arc, Mutex, PoisonError};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::{Context, Layer};

    use super::{SQLX_TARGET, STATEMENT_TARGET, Statements};

    /// A `tracing` layer that counts the statement events of both backends
    /// into a shared [`Statements`] tally.
    ///
    /// Install it (with [`filter`](Self::filter), which turns the statement
    /// events on and nothing else) before opening a store, so the SQLite
    /// store registers its callback; then compare
    /// [`snapshot`](Self::snapshot)s taken around the work to measure:
    ///
    /// ```no_run
    /// use ordertrack_store::statements::StatementCounter;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let counter = StatementCounter::new();
    /// tracing_subscriber::registry()
    ///     .with(counter.clone().with_filter(StatementCounter::filter()))
    ///     .init();
    /// let before = counter.snapshot();
    /// // ... open a store, run requests ...
    /// let ran = counter.snapshot().since(&before);
    /// println!("{} statements", ran.total());
    /// ```
    #[derive(Clone, Default)]
    pub struct StatementCounter {
        seen: Arc<Mutex<Statements>>,
    }

    impl StatementCounter {
        /// A counter that has seen nothing.
        pub fn new() -> Self {
            StatementCounter::default()
        }

        /// Enables exactly the statement events, at DEBUG (and sqlx's slow
        /// statements, which it reports at WARN instead).
        pub fn filter() -> Targets {
            Targets::new()
                .with_target(SQLX_TARGET, Level::DEBUG)
                .with_target(STATEMENT_TARGET, Level::DEBUG)
        }

        /// Everything counted so far.
        pub fn snapshot(&self) -> Statements {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    impl<S: Subscriber> Layer<S> for StatementCounter {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let target = event.metadata().target();
            if target != SQLX_TARGET && target != STATEMENT_TARGET {
                return;
            }
            let mut fields = SqlFields::default();
            event.record(&mut fields);
            if let Some(sql) = fields.sql() {
                self.seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(sql);
            }
        }
    }

    /// The fields of a statement event that may hold its SQL.
    #[derive(Default)]
    struct SqlFields {
        statement: Option<String>,
        db_statement: Option<String>,
        summary: Option<String>,
    }

    impl SqlFields {
        /// The store's `statement`; else sqlx's full `db.statement`, which
        /// it leaves empty when its `summary` is the whole statement.
        fn sql(&self) -> Option<&str> {
            self.statement
                .as_deref()
                .or_else(|| {
                    self.db_statement
                        .as_deref()
                        .filter(|s| !s.trim().is_empty())
                })
                .or(self.summary.as_deref())
        }
    }

    impl Visit for SqlFields {
        fn record_str(&mut self, field: &Field, value: &str) {
            let slot = match field.name() {
                "statement" => &mut self.statement,
                "db.statement" => &mut self.db_statement,
                "summary" => &mut self.summary,
                _ => return,
            };
            *slot = Some(value.to_owned());
        }

        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_sorted_by_their_leading_keyword() {
        for (sql, kind) in [
            ("SELECT id FROM orders WHERE id = ?1", Kind::Read),
            ("  select 1", Kind::Read),
            (
                "SELECT id FROM stores WHERE id = ANY($1) FOR UPDATE",
                Kind::Read,
            ),
            ("INSERT INTO orders (id) VALUES (?1)", Kind::Write),
            ("UPDATE orders SET version = version + 1", Kind::Write),
            ("DELETE FROM sessions WHERE id = $1", Kind::Write),
            ("WITH x AS (SELECT 1) SELECT * FROM x", Kind::Read),
            (
                "WITH x AS (SELECT id FROM t FOR UPDATE) SELECT * FROM x",
                Kind::Read,
            ),
            (
                "WITH moved AS (UPDATE orders SET v = 1 RETURNING id) SELECT id FROM moved",
                Kind::Write,
            ),
            (
                "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
                Kind::Write,
            ),
            ("BEGIN IMMEDIATE", Kind::Transaction),
            ("COMMIT", Kind::Transaction),
            ("ROLLBACK TO request", Kind::Transaction),
            ("SAVEPOINT request", Kind::Transaction),
            (
                "RELEASE SAVEPOINT request; SAVEPOINT request",
                Kind::Transaction,
            ),
            ("-- why\nSELECT 1", Kind::Read),
            ("/* sqlx */ UPDATE t SET a = 1", Kind::Write),
            ("PRAGMA journal_mode = WAL", Kind::Other),
            ("SET client_min_messages = warning", Kind::Other),
            ("", Kind::Other),
        ] {
            assert_eq!(Kind::of(sql), kind, "{sql}");
        }
    }

    #[test]
    fn words_in_string_literals_do_not_make_a_read_a_write() {
        assert_eq!(
            Kind::of("WITH x AS (SELECT 'UPDATE' AS s) SELECT s FROM x"),
            Kind::Read
        );
        assert_eq!(Kind::of("SELECT updated_at FROM orders"), Kind::Read);
    }

    #[test]
    fn a_tally_counts_by_text_and_kind_and_subtracts_a_snapshot() {
        let mut tally = Statements::new();
        tally.record("BEGIN IMMEDIATE");
        tally.record("SELECT id\n   FROM orders");
        let before = tally.clone();
        tally.record("SELECT id FROM orders");
        tally.record("INSERT INTO orders (id) VALUES (1)");
        tally.record("COMMIT");

        let ran = tally.since(&before);
        assert_eq!(ran.total(), 3);
        assert_eq!(ran.count("SELECT id FROM orders"), 1);
        assert_eq!(
            tally.count("SELECT id FROM orders"),
            2,
            "whitespace collapsed"
        );
        assert_eq!(ran.of_kind(Kind::Read), 1);
        assert_eq!(ran.of_kind(Kind::Write), 1);
        assert_eq!(ran.of_kind(Kind::Transaction), 1);
        assert_eq!(ran.of_kind(Kind::Other), 0);
        assert_eq!(ran.starting_with("INSERT INTO orders"), 1);

        let mut sum = before.clone();
        sum.add(&ran);
        assert_eq!(sum, tally);
    }
}
