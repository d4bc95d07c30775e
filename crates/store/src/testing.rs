//! What the integration tests of every crate share: how a test that needs
//! an outside service (PostgreSQL, NATS, Chromium) behaves without it. The
//! throw-away PostgreSQL schemas they run on are
//! [`TestSchema`](crate::conformance::TestSchema).

use std::io::Write as _;

/// Skips the calling test because `missing` (what is not there, and how
/// to provide it): says so loudly on stderr, and the caller returns. With
/// `CI=true` it panics instead — CI must run every test.
pub fn skip(missing: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{missing} — CI=true: tests that need it must not be skipped");
    }
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` of passing tests, and this must not go unseen.
    let banner = format!(
        "\n==================================================================\n\
         SKIPPED: {missing}\n\
         ==================================================================\n\n"
    );
    let _ = std::io::stderr().lock().write_all(banner.as_bytes());
}
