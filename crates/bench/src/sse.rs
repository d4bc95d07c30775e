//! A minimal incremental Server-Sent Events parser, and the fields the
//! benchmark reads from an ordertrack event (`order_id`, `order_version`,
//! `at`).

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One dispatched SSE frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Feeds bytes in, gets complete frames out. Comments (`: heartbeat`) and
/// frames with neither `event:` nor `data:` (e.g. `retry:`) are dropped.
#[derive(Debug, Default)]
pub struct FrameParser {
    buf: Vec<u8>,
}

impl FrameParser {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = find_frame_end(&self.buf[start..]) {
            let (raw, sep) = (&self.buf[start..start + end.0], end.1);
            if let Some(frame) = parse_frame(raw) {
                out.push(frame);
            }
            start += end.0 + sep;
        }
        self.buf.drain(..start);
    }
}

/// Position of the first blank line (`\n\n` or `\r\n\r\n`) and its length.
fn find_frame_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

fn parse_frame(raw: &[u8]) -> Option<Frame> {
    let text = String::from_utf8_lossy(raw);
    let mut frame = Frame::default();
    let mut has_data = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "id" => frame.id = Some(value.to_owned()),
            "event" => frame.event = Some(value.to_owned()),
            "data" => {
                if has_data {
                    frame.data.push('\n');
                }
                frame.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    (has_data || frame.event.is_some()).then_some(frame)
}

/// The parts of an order event the benchmark needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventStamp {
    pub order_id: i64,
    pub order_version: i64,
    /// Commit time, microseconds since the Unix epoch.
    pub at_us: i64,
}

#[derive(Deserialize)]
struct RawStamp<'a> {
    order_id: i64,
    order_version: i64,
    #[serde(borrow)]
    at: &'a str,
}

/// Reads `order_id`, `order_version` and `at` (RFC 3339) from event JSON.
pub fn event_stamp(data: &str) -> Option<EventStamp> {
    let raw: RawStamp<'_> = serde_json::from_str(data).ok()?;
    Some(EventStamp {
        order_id: raw.order_id,
        order_version: raw.order_version,
        at_us: rfc3339_micros(raw.at)?,
    })
}

/// An RFC 3339 timestamp as microseconds since the Unix epoch.
pub fn rfc3339_micros(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000).ok()
}

/// Now, in microseconds since the Unix epoch (the clock the server stamps
/// `at` with: same machine).
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_micros() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_split_across_chunks() {
        let mut parser = FrameParser::default();
        let mut out = Vec::new();
        parser.push(
            b"retry: 2000\n\nid: 7\nevent: ready\ndata: {\"posi",
            &mut out,
        );
        assert!(out.is_empty());
        parser.push(
            b"tion\":7}\n\n: heartbeat\n\nid: 8\nevent: status_changed\n",
            &mut out,
        );
        assert_eq!(
            out,
            vec![Frame {
                id: Some("7".into()),
                event: Some("ready".into()),
                data: "{\"position\":7}".into(),
            }]
        );
        out.clear();
        parser.push(b"data: {}\n\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.as_deref(), Some("8"));
        assert_eq!(out[0].event.as_deref(), Some("status_changed"));
        assert_eq!(out[0].data, "{}");
    }

    #[test]
    fn parses_crlf_and_multiline_data() {
        let mut parser = FrameParser::default();
        let mut out = Vec::new();
        parser.push(b"data: a\r\ndata: b\r\n\r\nevent: reconnect\n\n", &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data, "a\nb");
        assert_eq!(out[1].event.as_deref(), Some("reconnect"));
    }

    #[test]
    fn reads_the_event_stamp() {
        let data = r#"{"id":42,"type":"status_changed","store_id":1,"order_id":9,
            "customer_id":3,"order_version":2,"from":"pending","to":"confirmed",
            "item":null,"stations":["grill"],"at":"2025-01-02T03:04:05.123456Z",
            "summary":{"order_id":99,"at":"1999-01-01T00:00:00Z"}}"#;
        let stamp = event_stamp(data).expect("stamp");
        assert_eq!(stamp.order_id, 9);
        assert_eq!(stamp.order_version, 2);
        assert_eq!(stamp.at_us, 1_735_787_045_123_456);
        assert_eq!(event_stamp("{\"position\":7}"), None);
    }

    #[test]
    fn parses_offsets_and_whole_seconds() {
        assert_eq!(rfc3339_micros("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(rfc3339_micros("1970-01-01T01:00:01+01:00"), Some(1_000_000));
        assert_eq!(rfc3339_micros("not a time"), None);
        assert!(now_micros() > 1_700_000_000_000_000);
    }
}
