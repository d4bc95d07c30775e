//! A store's mail templates: plain text with `{placeholder}`s (`{{` and
//! `}}` for literal braces), filled in when a mail is sent. The HTML part
//! is made from the filled-in text (escaped, paragraphs kept, the links
//! made clickable), so a store writes one template, not two.

use std::fmt::Write;

/// The subject a store gets unless it writes its own.
pub const DEFAULT_SUBJECT: &str = "{store_name}: order {order_number} is {status}";

/// The body a store gets unless it writes its own.
pub const DEFAULT_BODY: &str = "Hello {customer_name},\n\n\
Your order {order_number} at {store_name} is now: {status}.\n\
{eta}\n\n\
Follow it live: {tracking_url}\n";

/// Every placeholder a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "order_number",
    "status",
    "eta",
    "tracking_url",
    "store_name",
    "customer_name",
];

/// What fills a mail's placeholders.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    pub order_number: &'a str,
    /// The status's display name (the workflow's label).
    pub status: &'a str,
    /// A sentence on when the order should be done; empty once it is done.
    pub eta: &'a str,
    pub tracking_url: &'a str,
    pub store_name: &'a str,
    pub customer_name: &'a str,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "order_number" => self.order_number,
            "status" => self.status,
            "eta" => self.eta,
            "tracking_url" => self.tracking_url,
            "store_name" => self.store_name,
            "customer_name" => self.customer_name,
            _ => return None,
        })
    }
}

/// What is wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{0}}}` is not a placeholder (use one of {list})", list = list())]
    Unknown(String),
    #[error("a `{{` is not closed (write `{{{{` for a brace)")]
    Unclosed,
    #[error("a `}}` closes nothing (write `}}}}` for a brace)")]
    Stray,
}

fn list() -> String {
    PLACEHOLDERS
        .iter()
        .map(|p| format!("{{{p}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pieces of a template: literal text and placeholder names.
enum Piece<'a> {
    Text(&'a str),
    Slot(&'a str),
}

fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push(Piece::Text(&rest[..at]));
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err(TemplateError::Stray);
        } else {
            let end = tail.find('}').ok_or(TemplateError::Unclosed)?;
            let name = tail[1..end].trim();
            if !PLACEHOLDERS.contains(&name) {
                return Err(TemplateError::Unknown(name.to_owned()));
            }
            out.push(Piece::Slot(name));
            rest = &tail[end + 1..];
        }
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Checks that a template uses known placeholders only, braces balanced.
pub fn check(template: &str) -> Result<(), TemplateError> {
    pieces(template).map(|_| ())
}

/// The template filled in. A template that does not parse (stored before
/// a placeholder was dropped, say) is used as it is written.
pub fn render(template: &str, values: &Values<'_>) -> String {
    let Ok(pieces) = pieces(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len() + 64);
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Slot(name) => out.push_str(values.get(name).unwrap_or_default()),
        }
    }
    out
}

/// `text` escaped for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part of a mail whose text is `text`: each paragraph (blank
/// lines apart) a `<p>`, line breaks kept, and `links` (the tracking and
/// unsubscribe addresses) clickable wherever the text shows them.
pub fn html(text: &str, links: &[&str]) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family: sans-serif; line-height: 1.4\">\n",
    );
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let mut escaped = escape(paragraph).replace('\n', "<br>\n");
        for link in links {
            let shown = escape(link);
            escaped = escaped.replace(&shown, &format!("<a href=\"{shown}\">{shown}</a>"));
        }
        let _ = writeln!(out, "<p>{escaped}</p>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            order_number: "R-000042",
            status: "Ready",
            eta: "",
            tracking_url: "https://orders.example/track/abc",
            store_name: "Rosie's <Pizza>",
            customer_name: "Ann",
        }
    }

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let text = render("{{{order_number}}} is {status} at {store_name}", &values());
        assert_eq!(text, "{R-000042} is Ready at Rosie's <Pizza>");
        assert_eq!(
            render(DEFAULT_SUBJECT, &values()),
            "Rosie's <Pizza>: order R-000042 is Ready"
        );
    }

    #[test]
    fn bad_templates_are_named() {
        assert_eq!(check("{nope}"), Err(TemplateError::Unknown("nope".into())));
        assert_eq!(check("{status"), Err(TemplateError::Unclosed));
        assert_eq!(check("status}"), Err(TemplateError::Stray));
        assert_eq!(check(DEFAULT_BODY), Ok(()));
    }

    #[test]
    fn the_html_part_escapes_and_links() {
        let text = render(DEFAULT_BODY, &values());
        let html = html(&text, &["https://orders.example/track/abc"]);
        assert!(html.contains("Rosie&#39;s &lt;Pizza&gt;"), "{html}");
        assert!(html.contains(
            "<a href=\"https://orders.example/track/abc\">https://orders.example/track/abc</a>"
        ));
    }
}
