//! The few ESC/POS commands a kitchen ticket or receipt needs, written by
//! hand: initialise (`ESC @`), pick a code page (`ESC t`), emphasis
//! (`ESC E`), double size (`GS !`), text lines ending in LF, feed (`ESC d`)
//! and cut (`GS V`). Every receipt printer that speaks ESC/POS on port 9100
//! understands them.
//!
//! Why not a crate: the ESC/POS crates drive the printer themselves over
//! blocking sockets; here the bytes are sent by the print worker (async,
//! with timeouts, only to allowed addresses after name resolution), so only
//! the bytes are needed, and these are few enough to own — and to parse
//! back in tests.
//!
//! Text is encoded in code page 858 (Western European with €), selected
//! at the start of every document; a character it lacks prints as `?`, and
//! control characters are dropped so no text can smuggle a command in.

/// ESC.
pub const ESC: u8 = 0x1b;
/// GS.
pub const GS: u8 = 0x1d;
/// Line feed: prints the line.
pub const LF: u8 = 0x0a;
/// `ESC t 19`: code page 858 on Epson-compatible printers.
pub const CODE_PAGE_858: u8 = 19;

/// Characters per line of an 80 mm roll in the printer's standard font.
pub const WIDTH: usize = 42;

/// Code page 858's characters for bytes 0x80–0xFF, in order.
const UPPER_HALF: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐\
                          └┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈ€ÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u{ad}±‗¾¶§÷¸°¨·¹³²■\u{a0}";

/// The byte code page 858 has for `c` — typographic dashes and quotes as
/// their ASCII kin — and `?` for a character it lacks.
fn encode_char(c: char) -> Option<u8> {
    if c.is_control() {
        return None;
    }
    let c = match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        '\u{2018}' | '\u{2019}' => '\'',
        '\u{201c}' | '\u{201d}' => '"',
        other => other,
    };
    if c.is_ascii() {
        return u8::try_from(c).ok();
    }
    let byte = UPPER_HALF
        .chars()
        .position(|upper| upper == c)
        .and_then(|index| u8::try_from(index + 0x80).ok());
    Some(byte.unwrap_or(b'?'))
}

/// The character byte `byte` prints in code page 858 (for reading
/// documents back).
pub fn decode_byte(byte: u8) -> char {
    match byte {
        0x00..=0x7f => char::from(byte),
        _ => UPPER_HALF
            .chars()
            .nth(usize::from(byte - 0x80))
            .unwrap_or('?'),
    }
}

/// A document for an ESC/POS printer, built line by line.
#[derive(Debug, Clone)]
pub struct Document {
    bytes: Vec<u8>,
}

impl Default for Document {
    fn default() -> Self {
        Document::new()
    }
}

impl Document {
    /// A document that resets the printer and selects code page 858.
    pub fn new() -> Self {
        Document {
            bytes: vec![ESC, b'@', ESC, b't', CODE_PAGE_858],
        }
    }

    /// Emphasised (bold) text on or off.
    pub fn bold(&mut self, on: bool) -> &mut Self {
        self.bytes.extend([ESC, b'E', u8::from(on)]);
        self
    }

    /// Double width and height on or off.
    pub fn large(&mut self, on: bool) -> &mut Self {
        self.bytes.extend([GS, b'!', if on { 0x11 } else { 0x00 }]);
        self
    }

    /// One printed line per line of `text` (notes and addresses may hold
    /// line breaks).
    pub fn line(&mut self, text: &str) -> &mut Self {
        for line in text.lines() {
            self.bytes.extend(line.chars().filter_map(encode_char));
            self.bytes.push(LF);
        }
        if text.is_empty() {
            self.bytes.push(LF);
        }
        self
    }

    /// `left` and `right` on one line, `right` flush with the edge (on a
    /// line of its own if they do not fit together).
    pub fn columns(&mut self, left: &str, right: &str) -> &mut Self {
        let used = left.chars().count() + right.chars().count();
        if used < WIDTH {
            self.line(&format!("{left}{}{right}", " ".repeat(WIDTH - used)))
        } else {
            self.line(left);
            self.line(&format!("{right:>WIDTH$}"))
        }
    }

    /// A rule across the paper.
    pub fn rule(&mut self) -> &mut Self {
        self.line(&"-".repeat(WIDTH))
    }

    /// Feeds the paper past the cutter and cuts (`ESC d 4`, `GS V 66 0`):
    /// the finished document's bytes.
    pub fn cut(mut self) -> Vec<u8> {
        self.bytes.extend([ESC, b'd', 4, GS, b'V', 66, 0]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_starts_with_reset_and_code_page_and_ends_with_a_cut() {
        let mut doc = Document::new();
        doc.line("R-000001").columns("2x Burger", "24.00 EUR");
        let bytes = doc.cut();
        assert_eq!(&bytes[..5], &[ESC, b'@', ESC, b't', 19]);
        assert_eq!(&bytes[bytes.len() - 4..], &[GS, b'V', 66, 0]);
        let text: String = bytes[5..bytes.len() - 7]
            .iter()
            .map(|b| decode_byte(*b))
            .collect();
        assert_eq!(
            text,
            format!("R-000001\n2x Burger{}24.00 EUR\n", " ".repeat(WIDTH - 18))
        );
    }

    #[test]
    fn text_is_code_page_858_and_control_characters_are_dropped() {
        let mut doc = Document::new();
        doc.line("Café 5 € — “crème brûlée”\u{1b}@ 漢");
        let bytes = doc.cut();
        let body = &bytes[5..bytes.len() - 7];
        assert!(!body.contains(&ESC), "no command hides in text");
        let text: String = body.iter().map(|b| decode_byte(*b)).collect();
        assert_eq!(text, "Café 5 € - \"crème brûlée\"@ ?\n");
        assert_eq!(encode_char('€'), Some(0xd5));
        for byte in 0x80..=0xff_u8 {
            assert_eq!(encode_char(decode_byte(byte)), Some(byte), "{byte:#x}");
        }
    }

    #[test]
    fn columns_that_do_not_fit_take_two_lines() {
        let long = "x".repeat(WIDTH);
        let mut doc = Document::new();
        doc.columns(&long, "1.00 EUR");
        let bytes = doc.cut();
        let text: String = bytes[5..bytes.len() - 7]
            .iter()
            .map(|b| decode_byte(*b))
            .collect();
        assert_eq!(text, format!("{long}\n{:>WIDTH$}\n", "1.00 EUR"));
    }
}
