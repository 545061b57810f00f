//! Making untrusted text safe to show. Network peers (HTTP `Server` headers, certificate names,
//! DNS answers), saved reports and user input can carry terminal escape sequences, bidi
//! overrides, secrets or megabytes; renderers and error messages pass such text through here.

use crate::redact;
use std::borrow::Cow;

/// How many characters of a user-supplied value an error message quotes.
pub const ECHO_LIMIT: usize = 80;
/// How many characters of a value [`echo`] redacts before it cuts to [`ECHO_LIMIT`].
const REDACT_SPAN: usize = 4096;

/// The visible stand-in for `c` when showing it raw could act on a terminal or reorder text:
/// C0 controls, DEL, C1 controls, bidi controls and the Unicode line separators.
pub fn escaped(c: char) -> Option<String> {
    match c {
        '\n' => Some("\\n".into()),
        '\r' => Some("\\r".into()),
        '\t' => Some("\\t".into()),
        '\0'..='\x1f' | '\x7f' => Some(format!("\\x{:02x}", c as u32)),
        '\u{80}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{061c}'
        | '\u{2028}'
        | '\u{2029}' => Some(format!("\\u{{{:04x}}}", c as u32)),
        _ => None,
    }
}

/// `text` with every character [`escaped`] names replaced by its escape; one line, inert.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| escaped(c).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match escaped(c) {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A user-supplied value as an error message quotes it: secrets masked, control characters
/// escaped, and at most [`ECHO_LIMIT`] characters followed by `…(N bytes)`.
pub fn echo(value: &str) -> String {
    // Only the start is ever shown: redacting a 15 MB line whole would cost seconds. What is
    // kept is long enough for every secret pattern that begins within the shown part.
    let start = value
        .char_indices()
        .nth(REDACT_SPAN)
        .map_or(value, |(i, _)| &value[..i]);
    let redacted = redact::text(start);
    let safe = terminal(&redacted);
    if safe.chars().count() <= ECHO_LIMIT {
        return safe.into_owned();
    }
    let kept: String = safe.chars().take(ECHO_LIMIT).collect();
    format!("{kept}…({} bytes)", value.len())
}

/// serde_json's pretty layout, with every character [`escaped`] names written as a `\uXXXX`
/// escape. JSON escapes C0 controls itself but writes C1 controls (U+009B, an 8-bit CSI), bidi
/// overrides and line separators raw, so `cat report.json` or a log viewer would act on them.
/// The escape is lossless: a parser reads back exactly the text the peer sent.
struct InertJson(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for InertJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(&mut self, w: &mut W, fragment: &str) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| escaped(*c).is_some()) {
            w.write_all(&rest.as_bytes()[..at])?;
            // Every such character is in the Basic Multilingual Plane: one \u escape.
            write!(w, "\\u{:04x}", c as u32)?;
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `value` as pretty JSON (serde_json's layout) written to `out`, text from peers inert (see
/// [`InertJson`]).
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut impl std::io::Write, value: &T) -> std::io::Result<()> {
    let mut serializer =
        serde_json::Serializer::with_formatter(out, InertJson(serde_json::ser::PrettyFormatter::new()));
    value.serialize(&mut serializer).map_err(std::io::Error::from)
}

/// [`write_json`] into a string.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(4096);
    write_json(&mut out, value).expect("serializing into memory does not fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// How many items a message lists before it says how many more there are.
pub const LIST_LIMIT: usize = 8;

/// `items` as a message lists them: `a, b, c`, and past [`LIST_LIMIT`] the first ones and
/// `and N more`, so a peer's 4,000-address answer makes a line, not 96 KB.
pub fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(LIST_LIMIT).map(ToString::to_string).collect();
    match items.len().saturating_sub(LIST_LIMIT) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The longest parser message amlprobe shows (a list of the fields a file may have fits).
const MESSAGE_LIMIT: usize = 2048;

/// A parser's error message (TOML, JSON) as an error line shows it. Parsers quote the offending
/// value whole (serde: `invalid type: string "…", expected u16`, ``unknown variant `…` ``): each
/// quoted value goes through [`echo`], so it is redacted, escaped and at most [`ECHO_LIMIT`]
/// characters, and so does what lies between them; the whole stays one bounded line.
pub fn parser_message(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&terminal(&redact::text(&rest[..open])));
        let inner = &rest[open + 1..];
        // serde quotes strings as Rust's Debug does: a backslash escapes the next character.
        let mut escaped = false;
        let close = inner.char_indices().find_map(|(i, c)| {
            let end = !escaped && c as u32 == u32::from(quote);
            escaped = !escaped && c == '\\' && quote == b'"';
            end.then_some(i)
        });
        let (value, after) = match close {
            Some(i) => (&inner[..i], &inner[i + 1..]),
            None => (inner, ""),
        };
        let q = quote as char;
        out.push(q);
        out.push_str(&echo(value));
        if close.is_some() {
            out.push(q);
        }
        rest = after;
    }
    out.push_str(&terminal(&redact::text(rest)));
    if out.chars().count() > MESSAGE_LIMIT {
        out = out.chars().take(MESSAGE_LIMIT).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(terminal("plain é ≠"), "plain é ≠");
        assert_eq!(
            terminal("a\x1b]0;pwned\x07b\x1b[2J\u{202e}c\n\u{9b}\x7f"),
            "a\\x1b]0;pwned\\x07b\\x1b[2J\\u{202e}c\\n\\u{009b}\\x7f"
        );
        for c in ['\u{200e}', '\u{200f}', '\u{061c}', '\u{2066}', '\u{2069}', '\u{202a}'] {
            assert!(!terminal(&format!("x{c}y")).contains(c), "{:04x}", c as u32);
        }
    }

    /// Escape sequences a peer might send: retitle the terminal, clear the screen, reverse text.
    const HOSTILE: [&str; 3] = ["\x1b]0;pwned\x07", "\x1b[2J", "\u{202e}"];

    fn is_inert(name: &str, text: &str) {
        for c in ['\x1b', '\x07', '\u{202e}', '\u{9b}'] {
            assert!(!text.contains(c), "{name} shows raw U+{:04X}:\n{text}", c as u32);
        }
        assert!(text.contains("\\x1b[2J"), "{name} shows the sequence escaped:\n{text}");
    }

    #[test]
    fn every_human_renderer_shows_network_text_inert() {
        use crate::analyze::saved::SavedReport;
        use crate::analyze::{diff, matrix};
        use crate::report::render::{junit, prometheus, table};
        use crate::report::test_support::sample_report;
        let bad = HOSTILE.concat();
        let mut report = sample_report();
        report.host.hostname = format!("node{bad}");
        report.host.nameservers.push(format!("10.0.0.9{bad}"));
        for flow in &mut report.flows {
            flow.message = format!("server {bad} issuer CN={bad}");
            flow.hint = Some(format!("ask {bad}"));
            flow.title.push_str(&bad);
            for probe in &mut flow.probes {
                probe.host = format!("dns{bad}.example");
                probe.message = format!("Server: {bad}");
            }
        }
        let flows = report.flows.len();
        is_inert("table", &table::render(&report, false));
        let colored = table::render(&report, true);
        assert!(!colored.contains("\x1b]") && !colored.contains("\x1b[2J") && !colored.contains('\u{202e}'));
        is_inert("junit", &junit::render(&report));
        junit::tests::assert_well_formed(&junit::render(&report), report.flows.len());
        let metrics = prometheus::render(&report);
        assert!(!metrics.contains('\x1b') && !metrics.contains('\u{202e}'), "{metrics}");
        assert!(metrics.contains("host=\"dns\\\\x1b]0;pwned\\\\x07"), "{metrics}");
        let saved: SavedReport = serde_json::from_str(&report.to_json()).unwrap();
        let mut changed = saved.clone();
        changed.flows[0].reason = Some(format!("odd{bad}"));
        changed.flows[0].status = crate::model::outcome::FlowStatus::Blocked;
        let d = diff::compare(&saved, &changed);
        is_inert("diff", &diff::to_text(&d, true));
        let m = matrix::merge(&[saved, changed]);
        is_inert("merge table", &matrix::to_text(&m, false));
        // Markdown also backslash-escapes the punctuation of the escapes themselves.
        let md = matrix::to_markdown(&m, false);
        is_inert("markdown", &md.replace("\\\\", "\\").replace("\\[", "["));
        assert_eq!(report.flows.len(), flows);
        assert!(
            report.flows[0].message.contains('\x1b'),
            "the report itself keeps what was seen"
        );
    }

    #[test]
    fn the_suite_listing_shows_suite_text_inert() {
        use crate::model::suite::Catalog;
        use crate::report::render::listing;
        let mut catalog = Catalog::builtin().unwrap();
        let suite = "[suite]\nname = \"t\"\ntitle = \"T\\u001b[2J\"\n\n[[flow]]\nid = \"t.x\"\n\
            title = \"x\\u001b]0;pwned\\u0007\\u202e\"\ndirection = \"outbound\"\nservice_tag = \"Tag\"\n\
            required = true\nscenario = \"s\"\nsource = \"s\"\nhosts = [\"x.example\"]\n";
        catalog.add_suite("t.toml", "t.toml", suite).unwrap();
        let chosen = catalog.select(&["t".into()]).unwrap();
        let context = crate::model::context::WorkspaceContext::default();
        let flows = crate::plan::expand(&catalog, &chosen, &context, &crate::plan::Routing::default());
        is_inert("listing", &listing::to_text(&listing::build(&chosen, &flows)));
    }

    /// JSON kept C1 controls and bidi overrides raw; now they are \u escapes, read back exactly.
    #[test]
    fn json_writes_c1_and_bidi_characters_as_escapes() {
        let seen = "CN=a\u{9b}2J\u{202e}b\u{2028}c\u{85}\u{7f}\x1b[2J é ≠ \u{fffe}";
        let value = serde_json::json!({"subject": seen, "list": [seen], "n": 1});
        let text = json(&value);
        for raw in ['\u{9b}', '\u{202e}', '\u{2028}', '\u{85}', '\u{7f}', '\x1b'] {
            assert!(!text.contains(raw), "U+{:04X} raw in {text}", raw as u32);
        }
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value, "lossless");
        // serde_json's own layout and escapes, with only those characters written as escapes.
        let mut plain = serde_json::to_string_pretty(&value).unwrap();
        for (raw, escape) in [
            ('\u{9b}', "\\u009b"),
            ('\u{202e}', "\\u202e"),
            ('\u{2028}', "\\u2028"),
            ('\u{85}', "\\u0085"),
            ('\u{7f}', "\\u007f"),
        ] {
            plain = plain.replace(raw, escape);
        }
        assert_eq!(text, plain);
        assert!(text.contains("é ≠ \u{fffe}"), "other text stays as it is: {text}");
    }

    #[test]
    fn lists_are_capped_with_a_count() {
        assert_eq!(list(&[1, 2, 3]), "1, 2, 3");
        assert_eq!(list::<u8>(&[]), "");
        let many: Vec<u32> = (0..4000).collect();
        assert_eq!(list(&many), "0, 1, 2, 3, 4, 5, 6, 7 and 3992 more");
    }

    #[test]
    fn parser_messages_quote_values_short_and_secret_free() {
        let key = "c2VjcmV0S2V5VmFsdWUxMjM0NTY3ODkwQUJDREVGR0hJSktMTU5PUFFSU1RVVldY==";
        let m = parser_message(&format!("invalid type: string \"AccountKey={key}\", expected f64"));
        assert_eq!(m, "invalid type: string \"AccountKey=***\", expected f64");
        let m = parser_message("invalid type: string \"http://alice:Pa55w0rd@proxy:3128\", expected a boolean");
        assert_eq!(m, "invalid type: string \"http://***@proxy:3128\", expected a boolean");
        let m = parser_message("invalid type: string \"sig=Zm9vYmFyYmF6cXV4c2VjcmV0\", expected u16");
        assert!(!m.contains("Zm9vYmFy") && m.ends_with(", expected u16"), "{m}");
        let long = "x".repeat(1 << 20);
        let m = parser_message(&format!("unknown variant `{long}`, expected `outbound` or `inbound`"));
        assert!(m.len() < 200, "{} bytes", m.len());
        assert!(
            m.starts_with("unknown variant `xxx") && m.ends_with("…(1048576 bytes)`, expected `outbound` or `inbound`"),
            "{m}"
        );
        // Escaped quotes inside a value, a value never closed, escapes and a giant message.
        let m = parser_message("invalid type: string \"a\\\"b\u{1b}[2J\", expected x");
        assert_eq!(m, "invalid type: string \"a\\\"b\\x1b[2J\", expected x");
        assert_eq!(parser_message("bad `open"), "bad `open");
        assert!(parser_message(&"`a` ".repeat(10_000)).chars().count() <= MESSAGE_LIMIT + 1);
    }

    #[test]
    fn echoed_values_are_short_inert_and_secret_free() {
        let long = "a".repeat(70_000);
        let e = echo(&long);
        assert!(e.chars().count() < ECHO_LIMIT + 20, "{e}");
        assert!(e.ends_with("…(70000 bytes)"), "{e}");
        assert_eq!(echo("x\n\x1b[2J"), "x\\n\\x1b[2J");
        let conn = "DefaultEndpointsProtocol=https;AccountName=sa;AccountKey=c2VjcmV0S2V5VmFsdWUxMjM0NTY3ODkw==;EndpointSuffix=core.windows.net";
        assert!(!echo(conn).contains("c2VjcmV0"), "{}", echo(conn));
        assert!(!echo("http://u:Pa55word@proxy:3128").contains("Pa55word"));
        let jwt = format!("{}eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "x".repeat(70));
        assert!(!echo(&jwt).contains("eyJhbGci"));
    }
}
