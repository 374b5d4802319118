//! What the page says: its title, and the top of it as a text browser (lynx,
//! w3m) would show it.
//!
//! Not an HTML parser: enough of a tokenizer to drop markup, comments,
//! scripts and styles, to break lines where block elements start and end,
//! and to decode the common character references.

/// The text rendering stops after this many lines…
const MAX_LINES: usize = 15;
/// …or this many characters, whichever comes first.
const MAX_CHARS: usize = 800;

/// Elements whose content is not page text (the title is shown apart).
const HIDDEN: &[&str] = &["script", "style", "title", "template", "noscript"];

/// Elements that start on a line of their own.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tr",
    "ul",
];

/// The content of the first `<title>`, decoded, on one line.
pub fn title(html: &str) -> Option<String> {
    let mut tokens = Tokens::new(html);
    while let Some(token) = tokens.next() {
        if let Token::Tag {
            name,
            closing: false,
        } = token
            && name == "title"
        {
            let text = match tokens.next() {
                Some(Token::Text(text)) => collapse(&decode(text)),
                _ => String::new(),
            };
            return (!text.is_empty()).then_some(text);
        }
    }
    None
}

/// The first lines of the page's text: no markup, whitespace collapsed, at
/// most [`MAX_LINES`] lines and about [`MAX_CHARS`] characters, with `…`
/// where it was cut.
pub(super) fn text(html: &str) -> String {
    let mut flow = String::new();
    let mut hidden = false;
    for token in Tokens::new(html) {
        match token {
            Token::Tag { name, closing } => {
                if HIDDEN.contains(&name.as_str()) {
                    hidden = !closing;
                } else if BLOCKS.contains(&name.as_str()) {
                    flow.push('\n');
                    if name == "li" && !closing {
                        flow.push_str("- ");
                    }
                } else if name == "td" || name == "th" {
                    flow.push(' ');
                }
            }
            // Line breaks in the source are spaces on the page.
            Token::Text(text) if !hidden => flow.push_str(&decode(text).replace(['\n', '\r'], " ")),
            Token::Text(_) => {}
        }
    }

    let lines = flow.lines().map(collapse).filter(|line| !line.is_empty());
    let mut out = String::new();
    let mut budget = MAX_CHARS;
    for (n, line) in lines.enumerate() {
        if n == MAX_LINES || budget == 0 {
            out.push('…');
            break;
        }
        if n > 0 {
            out.push('\n');
        }
        let length = line.chars().count();
        if length > budget {
            out.extend(line.chars().take(budget));
            out.push('…');
            break;
        }
        out.push_str(&line);
        budget -= length;
    }
    out
}

/// Runs of whitespace become one space; none at either end.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Text(&'a str),
    /// A start or end tag, its name in lower case; attributes are dropped.
    Tag {
        name: String,
        closing: bool,
    },
}

/// Splits HTML into text and tags. Comments, doctypes and processing
/// instructions vanish; the content of `<script>`, `<style>` and `<title>`
/// comes back as one text token, whatever it contains.
struct Tokens<'a> {
    rest: &'a str,
    /// Inside a raw-text element: everything up to its end tag is text.
    raw: Option<String>,
}

impl<'a> Tokens<'a> {
    fn new(html: &'a str) -> Tokens<'a> {
        Tokens {
            rest: html,
            raw: None,
        }
    }

    /// Consume `rest` up to and including `end`, or all of it.
    fn skip_past(&mut self, end: &str) {
        self.rest = match self.rest.find(end) {
            Some(at) => &self.rest[at + end.len()..],
            None => "",
        };
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            if let Some(element) = self.raw.take() {
                let end =
                    find_ignore_case(self.rest, &format!("</{element}")).unwrap_or(self.rest.len());
                let (text, rest) = self.rest.split_at(end);
                self.rest = rest;
                if !text.is_empty() {
                    return Some(Token::Text(text));
                }
                continue;
            }
            if self.rest.starts_with("<!--") {
                self.skip_past("-->");
                continue;
            }
            let mut chars = self.rest.chars();
            chars.next();
            let after_lt = chars.next();
            if !self.rest.starts_with('<') || !after_lt.is_some_and(starts_markup) {
                // Text runs to the next '<' (a '<' that starts nothing is text).
                let first = self.rest.chars().next().map_or(0, char::len_utf8);
                let end = self.rest[first..]
                    .find('<')
                    .map_or(self.rest.len(), |at| at + first);
                let (text, rest) = self.rest.split_at(end);
                self.rest = rest;
                return Some(Token::Text(text));
            }
            if matches!(after_lt, Some('!' | '?')) {
                self.skip_past(">");
                continue;
            }
            let closing = after_lt == Some('/');
            let name_start = if closing { 2 } else { 1 };
            let name: String = self.rest[name_start..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            self.rest = &self.rest[name_start + name.len()..];
            self.skip_tag_rest();
            if !closing && HIDDEN.contains(&name.as_str()) {
                self.raw = Some(name.clone());
            }
            return Some(Token::Tag { name, closing });
        }
    }
}

impl Tokens<'_> {
    /// Skip attributes up to the tag's `>`; a `>` inside quotes is not the end.
    fn skip_tag_rest(&mut self) {
        let mut quote = None;
        for (at, c) in self.rest.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '>') => {
                    self.rest = &self.rest[at + 1..];
                    return;
                }
                _ => {}
            }
        }
        self.rest = "";
    }
}

/// What may follow `<` for it to start a tag, comment or declaration.
fn starts_markup(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?')
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Decode character references: the common named ones and all numeric ones.
/// Anything else is left as written.
fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&end| end <= 10)
            .and_then(|end| Some((reference(&rest[1..=end])?, end + 2)));
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference such as `amp` or `#x2014` stands for.
fn reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "middot" => '·',
        "bull" => '•',
        "laquo" => '«',
        "raquo" => '»',
        "larr" => '←',
        "rarr" => '→',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <TITLE>
    Example   Domain &amp; friends
  </TITLE>
  <style>body { font: 1em sans-serif } p > a { color: red }</style>
  <script>if (a < b && c > d) { document.write("<p>not text</p>"); }</script>
</head>
<body>
  <!-- a comment with <p>markup</p> -->
  <h1>Example
      Domain</h1>
  <p>This domain is for use in <a href="/docs" title="a > b">illustrative</a>
     examples&nbsp;in documents. 1 &lt; 2 &#x2014; and 3 < 4.</p>
  <ul><li>one</li><li>two</li></ul>
  <table><tr><td>a</td><td>b</td></tr></table>
</body>
</html>"#;

    #[test]
    fn title_is_decoded_and_on_one_line() {
        assert_eq!(title(PAGE).as_deref(), Some("Example Domain & friends"));
        assert_eq!(title("<html><body>no title</body></html>"), None);
        assert_eq!(title("<title>  </title>"), None);
    }

    #[test]
    fn text_has_no_markup_scripts_or_styles() {
        assert_eq!(
            text(PAGE),
            "Example Domain\n\
             This domain is for use in illustrative examples in documents. 1 < 2 — and 3 < 4.\n\
             - one\n\
             - two\n\
             a b"
        );
    }

    #[test]
    fn text_stops_after_fifteen_lines() {
        let html: String = (1..=20).map(|n| format!("<p>line {n}</p>")).collect();
        let rendered = text(&html);
        let lines: Vec<_> = rendered.lines().collect();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0], "line 1");
        assert_eq!(lines[MAX_LINES - 1], "line 15…");
    }

    #[test]
    fn text_stops_after_about_eight_hundred_characters() {
        let html = format!("<p>{}</p><p>more</p>", "é".repeat(2000));
        let rendered = text(&html);
        assert_eq!(rendered.chars().count(), MAX_CHARS + 1);
        assert!(rendered.ends_with('…'));
        assert!(!rendered.contains("more"));
    }

    #[test]
    fn plain_text_and_broken_markup_survive() {
        assert_eq!(text("plain text: a < b & é<"), "plain text: a < b & é<");
        assert_eq!(text("<p>unterminated <b"), "unterminated");
        assert_eq!(text("<script>never closed"), "");
        assert_eq!(decode("&bogus; &#xZZ; &amp"), "&bogus; &#xZZ; &amp");
    }
}
