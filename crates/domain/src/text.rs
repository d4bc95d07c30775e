//! Text people type (names, notes, addresses, e-mails): which characters it
//! may hold. Control characters (NUL, ESC, …) corrupt terminals, logs and
//! printers; bidirectional formatting characters make text read differently
//! from what it is (`evil\u{202e}txt.exe`). Both are refused, never silently
//! stripped, so what is stored is exactly what was sent — and the refusal
//! names the field, so a client can show it where it belongs.

use unicode_normalization::UnicodeNormalization;

/// The text of `field` holds a character it may not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} may not contain control or bidirectional formatting characters")]
pub struct UnsafeText {
    /// The field, as the API names it.
    pub field: &'static str,
}

/// Whether `c` is a bidirectional formatting character (embeddings,
/// overrides, isolates and marks), which reorders the text around it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Checks one line of text (a name, an e-mail): no control and no bidi
/// formatting character at all.
pub fn check_line(field: &'static str, text: &str) -> Result<(), UnsafeText> {
    check(field, text, |_| false)
}

/// Checks text that may span lines (a note, an address): line breaks and
/// tabs are allowed, no other control and no bidi formatting character.
pub fn check_lines(field: &'static str, text: &str) -> Result<(), UnsafeText> {
    check(field, text, |c| matches!(c, '\n' | '\r' | '\t'))
}

fn check(
    field: &'static str, text: &str, allowed: impl Fn(char) -> bool,
) -> Result<(), UnsafeText> {
    let unsafe_char = text
        .chars()
        .any(|c| (c.is_control() && !allowed(c)) || is_bidi_control(c));
    if unsafe_char {
        Err(UnsafeText { field })
    } else {
        Ok(())
    }
}

/// An e-mail address as accounts are keyed by it: NFKC-normalised (so a
/// full-width `ａ` is `a`), trimmed, lower-case.
pub fn normalise_email(email: &str) -> String {
    email.nfkc().collect::<String>().trim().to_lowercase()
}

/// What an e-mail address looks like: the UTS #39 skeleton of its
/// normalised form. Two addresses with one skeleton are confusable
/// (`аlice@…` with a Cyrillic `а` and `alice@…`), so no two accounts share
/// one.
pub fn email_skeleton(email: &str) -> String {
    unicode_security::confusable_detection::skeleton(&normalise_email(email)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_refused_and_name_their_field() {
        for bad in [
            "a\u{0}b",
            "\u{1b}[31mred",
            "x\u{7f}",
            "\u{85}",
            "abc\u{202e}fdp.exe",
            "\u{2066}x",
            "\u{200f}",
        ] {
            assert_eq!(
                check_line("name", bad),
                Err(UnsafeText { field: "name" }),
                "{bad:?}"
            );
            assert_eq!(
                check_lines("notes", bad),
                Err(UnsafeText { field: "notes" }),
                "{bad:?}"
            );
        }
        assert!(check_line("name", "Zoë Ünal-李").is_ok());
        assert!(check_line("name", "two\nlines").is_err());
        assert!(check_lines("notes", "ring twice\r\n\tthen wait").is_ok());
    }

    #[test]
    fn emails_are_normalised_and_confusables_share_a_skeleton() {
        assert_eq!(normalise_email(" Ａlice@Example.COM "), "alice@example.com");
        let alice = email_skeleton("alice@demo.test");
        for confusable in [
            "\u{430}lice@demo.test",
            "ALICE@demo.test",
            "alice@dem\u{3bf}.test",
        ] {
            assert_eq!(email_skeleton(confusable), alice, "{confusable}");
        }
        assert_ne!(email_skeleton("alicia@demo.test"), alice);
    }
}
