//! Copies of the embedded database: taken while the order desk serves,
//! and put back in place.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::{configure, create_private, migrate};
use crate::{Result, StoreError};

/// Writes a copy of the database at `path` to `to` while other processes
/// read and write it. The copy is made in one read transaction
/// (`VACUUM INTO`), so it holds exactly what was committed when it began,
/// and no writer waits for it (WAL). It is written beside `to` first and
/// moved into place once checked, so `to` is never a half-written file.
pub fn backup(path: &Path, to: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(StoreError::Database(format!(
            "no database at {}",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let partial = partial_path(to);
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("removing", &partial, error)),
    }
    let target = partial
        .to_str()
        .ok_or_else(|| StoreError::Database(format!("{} is not UTF-8", partial.display())))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    check(&partial)?;
    std::fs::rename(&partial, to).map_err(|error| io_error("moving the copy to", to, error))
}

/// Replaces the database at `path` (created if missing) with the copy at
/// `from`, once the copy has passed SQLite's integrity check and is an
/// order desk database; then applies the migrations the copy predates.
/// Page by page through SQLite's backup API, which takes the database's
/// locks: stop the server first, or its open streams will miss the jump.
pub fn restore(from: &Path, path: &Path) -> Result<()> {
    check(from)?;
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    conn.restore(MAIN_DB, from, None::<fn(rusqlite::backup::Progress)>)?;
    configure(&conn)?;
    migrate::run(&mut conn)?;
    Ok(())
}

/// The copy at `path` passes `PRAGMA integrity_check` and carries the
/// order desk's migration table.
pub fn check(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(StoreError::Database(format!(
            "no file at {}",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        return Err(StoreError::Database(format!(
            "{} fails SQLite's integrity check: {verdict}",
            path.display()
        )));
    }
    let ours: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
        [],
        |row| row.get(0),
    )?;
    if !ours {
        return Err(StoreError::Database(format!(
            "{} is not an ordertrack database",
            path.display()
        )));
    }
    Ok(())
}

/// Where a copy is written before it is moved to `to`.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn io_error(doing: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Database(format!("{doing} {}: {error}", path.display()))
}
