//! pfSense's `config.xml` as an order-preserving element tree: the subset of XML pfSense writes
//! and reads (its `xmlparse.inc` runs PHP's expat parser and keeps elements, text and CDATA).
//!
//! - Elements keep their order, attributes and either text or children. Whitespace between child
//!   elements is formatting, and a text that is only whitespace is empty; both are dropped, as
//!   pfSense's own parser does. CDATA is remembered (pfSense writes descriptions as CDATA), so a
//!   serialised tree reads like one pfSense wrote.
//! - Comments, processing instructions and the declaration are skipped (pfSense drops them too).
//! - The parser never panics and never recurses: bad input is a [`XmlError`] with the byte offset.
//!   Input size and depth are bounded ([`MAX_BYTES`], [`MAX_DEPTH`]).

use std::fmt;

/// Largest configuration accepted (pfSense configs with thousands of rules are a few MiB).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Deepest element nesting accepted (pfSense's is under 10).
pub const MAX_DEPTH: usize = 128;

/// One element: its name, attributes, and text (when it has no children) or children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// The text of a leaf element ("" for `<a/>`, `<a></a>` and whitespace only).
    pub text: String,
    /// The text was written as CDATA.
    pub cdata: bool,
    pub children: Vec<Element>,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A leaf element with `text`.
    pub fn leaf(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            ..Self::default()
        }
    }

    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a slash path below this one (`"system/hostname"`).
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(self, |node, part| node.child(part))
    }

    /// The text of the child called `name` ("" when absent).
    pub fn text_of(&self, name: &str) -> &str {
        self.child(name).map_or("", |c| c.text.as_str())
    }

    /// Whether a child called `name` is present (pfSense's flags: `<disabled/>`, `<enable/>`).
    pub fn has(&self, name: &str) -> bool {
        self.child(name).is_some()
    }

    /// Serialise as pfSense's `dump_xml_config()` does: a declaration, tab indentation.
    pub fn to_document(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("<?xml version=\"1.0\"?>\n");
        write_element(&mut out, self, 0);
        out
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// Byte offset in the input.
    pub at: usize,
    pub message: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.at)
    }
}

impl std::error::Error for XmlError {}

/// Parse a whole document into its root element.
pub fn parse(input: &str) -> Result<Element, XmlError> {
    Parser {
        input,
        bytes: input.as_bytes(),
        pos: 0,
    }
    .document()
}

struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// An element being read, and whether non-whitespace text was seen in it.
struct Open {
    element: Element,
    started_at: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, XmlError> {
        Err(XmlError {
            at: self.pos,
            message: message.into(),
        })
    }

    fn rest(&self) -> &str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn starts_with(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    /// Skip to just after `end`, or fail saying what was left open.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), XmlError> {
        match self.rest().find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => self.fail(format!("{what} is not closed")),
        }
    }

    fn skip_whitespace(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    /// Skip what may stand outside and between elements: comments, processing instructions.
    /// Returns whether anything was skipped.
    fn skip_misc(&mut self) -> Result<bool, XmlError> {
        if self.starts_with("<!--") {
            self.skip_past("-->", "a comment")?;
            Ok(true)
        } else if self.starts_with("<?") {
            self.skip_past("?>", "a processing instruction")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn document(mut self) -> Result<Element, XmlError> {
        if self.bytes.len() > MAX_BYTES {
            return self.fail(format!(
                "the document is {} bytes, over the {MAX_BYTES}-byte limit",
                self.bytes.len()
            ));
        }
        if self.starts_with("\u{feff}") {
            self.pos += 3;
        }
        loop {
            self.skip_whitespace();
            if self.skip_misc()? {
                continue;
            }
            if self.starts_with("<!DOCTYPE") {
                let end = self.rest().find('>').unwrap_or(usize::MAX);
                if self.rest().get(..end).is_some_and(|d| d.contains('[')) {
                    return self.fail("a DOCTYPE with an internal subset is not accepted");
                }
                self.skip_past(">", "the DOCTYPE")?;
                continue;
            }
            break;
        }
        if !self.starts_with("<") {
            return self.fail("expected the root element");
        }
        let root = self.elements()?;
        loop {
            self.skip_whitespace();
            if !self.skip_misc()? {
                break;
            }
        }
        if self.pos < self.bytes.len() {
            return self.fail("content after the root element");
        }
        Ok(root)
    }

    /// Read the root element and everything in it, with an explicit stack (no recursion).
    fn elements(&mut self) -> Result<Element, XmlError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            if self.pos >= self.bytes.len() {
                let open = stack.last().map_or("", |o| o.element.name.as_str());
                return self.fail(format!("the document ends inside <{open}>"));
            }
            if self.starts_with("</") {
                let at = self.pos;
                self.pos += 2;
                let name = self.name()?;
                self.skip_whitespace();
                if !self.starts_with(">") {
                    return self.fail(format!("</{name} is not closed with >"));
                }
                self.pos += 1;
                let Some(open) = stack.pop() else {
                    return Err(XmlError {
                        at,
                        message: format!("</{name}> closes nothing"),
                    });
                };
                if open.element.name != name {
                    return Err(XmlError {
                        at,
                        message: format!(
                            "</{name}> closes <{}> (opened at byte {})",
                            open.element.name, open.started_at
                        ),
                    });
                }
                let mut done = open.element;
                if !done.children.is_empty() || (!done.cdata && done.text.trim().is_empty()) {
                    if !done.children.is_empty() && !done.text.trim().is_empty() {
                        return Err(XmlError {
                            at,
                            message: format!(
                                "<{}> holds both text and elements (not a pfSense configuration)",
                                done.name
                            ),
                        });
                    }
                    done.text.clear();
                    done.cdata = false;
                }
                match stack.last_mut() {
                    Some(parent) => parent.element.children.push(done),
                    None => return Ok(done),
                }
            } else if self.starts_with("<!--") || self.starts_with("<?") {
                self.skip_misc()?;
            } else if self.starts_with("<![CDATA[") {
                self.pos += 9;
                let Some(end) = self.rest().find("]]>") else {
                    return self.fail("a CDATA section is not closed");
                };
                let text = self.rest().get(..end).unwrap_or("");
                let Some(open) = stack.last_mut() else {
                    return self.fail("text outside the root element");
                };
                open.element.text.push_str(text);
                open.element.cdata = true;
                self.pos += end + 3;
            } else if self.starts_with("<!") {
                return self.fail("unexpected markup declaration inside an element");
            } else if self.starts_with("<") {
                let started_at = self.pos;
                self.pos += 1;
                let (element, empty) = self.start_tag()?;
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.element.children.push(element),
                        None => return Ok(element),
                    }
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return self.fail(format!("elements nest deeper than {MAX_DEPTH} levels"));
                    }
                    stack.push(Open {
                        element,
                        started_at,
                    });
                }
            } else {
                let end = self.rest().find('<').unwrap_or(self.rest().len());
                let raw = self.rest().get(..end).unwrap_or("");
                let at = self.pos;
                let text = unescape(raw).map_err(|(offset, message)| XmlError {
                    at: at + offset,
                    message,
                })?;
                self.pos += end;
                match stack.last_mut() {
                    Some(open) => open.element.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return self.fail("text outside the root element"),
                }
            }
        }
    }

    /// A name at the cursor.
    fn name(&mut self) -> Result<String, XmlError> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.') || b >= 0x80
        }) {
            self.pos += 1;
        }
        let name = self.input.get(start..self.pos).unwrap_or("");
        let first_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
        if !first_ok {
            return self.fail("expected a name");
        }
        Ok(name.to_owned())
    }

    /// After `<`: the name, attributes and `>` or `/>`; whether the element is empty.
    fn start_tag(&mut self) -> Result<(Element, bool), XmlError> {
        let mut element = Element::new(self.name()?);
        loop {
            let had_space = self
                .bytes
                .get(self.pos)
                .is_some_and(|b| b.is_ascii_whitespace());
            self.skip_whitespace();
            if self.starts_with("/>") {
                self.pos += 2;
                return Ok((element, true));
            }
            if self.starts_with(">") {
                self.pos += 1;
                return Ok((element, false));
            }
            if !had_space {
                return self.fail(format!("<{} is not closed with > or />", element.name));
            }
            let name = self.name()?;
            self.skip_whitespace();
            if !self.starts_with("=") {
                return self.fail(format!("attribute {name} has no value"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let quote = match self.bytes.get(self.pos) {
                Some(b'"') => "\"",
                Some(b'\'') => "'",
                _ => return self.fail(format!("attribute {name}'s value is not quoted")),
            };
            self.pos += 1;
            let Some(end) = self.rest().find(quote) else {
                return self.fail(format!("attribute {name}'s value is not closed"));
            };
            let raw = self.rest().get(..end).unwrap_or("");
            if raw.contains('<') {
                return self.fail(format!("attribute {name}'s value holds <"));
            }
            let at = self.pos;
            let value = unescape(raw).map_err(|(offset, message)| XmlError {
                at: at + offset,
                message,
            })?;
            self.pos += end + 1;
            if element.attrs.iter().any(|(n, _)| *n == name) {
                return self.fail(format!("attribute {name} appears twice"));
            }
            element.attrs.push((name, value));
        }
    }
}

/// Text with XML's five entities and character references resolved; (offset, message) on error.
fn unescape(raw: &str) -> Result<String, (usize, String)> {
    if !raw.contains('&') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp + 1..).unwrap_or("");
        let offset = raw.len() - rest.len() + amp;
        let Some(semi) = after.find(';').filter(|s| *s <= 10) else {
            return Err((
                offset,
                "an & that starts no entity (write &amp;)".to_owned(),
            ));
        };
        let entity = after.get(..semi).unwrap_or("");
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .filter(|c| *c != 0)
                .and_then(char::from_u32),
        };
        let Some(ch) = ch else {
            return Err((offset, format!("unknown entity &{entity};")));
        };
        out.push(ch);
        rest = after.get(semi + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(out)
}

fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            // Characters a parser would normalise away are kept as references.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' if attribute => out.push_str(&format!("&#{};", u32::from(c))),
            c => out.push(c),
        }
    }
}

fn write_element(out: &mut String, element: &Element, depth: usize) {
    for _ in 0..depth {
        out.push('\t');
    }
    out.push('<');
    out.push_str(&element.name);
    for (name, value) in &element.attrs {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape_into(out, value, true);
        out.push('"');
    }
    out.push('>');
    if element.children.is_empty() {
        if element.cdata {
            out.push_str("<![CDATA[");
            out.push_str(&element.text.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        } else {
            escape_into(out, &element.text, false);
        }
    } else {
        out.push('\n');
        for child in &element.children {
            write_element(out, child, depth + 1);
        }
        for _ in 0..depth {
            out.push('\t');
        }
    }
    out.push_str("</");
    out.push_str(&element.name);
    out.push_str(">\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_pfsense_writes() {
        let xml = "<?xml version=\"1.0\"?>\n<!-- note -->\n<pfsense>\n\t<version>23.3</version>\n\
                   \t<system><hostname>fw</hostname><dnsserver>1.1.1.1</dnsserver><dnsserver>9.9.9.9</dnsserver>\
                   <descr><![CDATA[A & <b>]]></descr><empty/><blank>  </blank></system>\n\
                   \t<x a=\"1 &amp; 2\" b='q'>&lt;tag&gt; &#233;&#x41;</x>\n</pfsense>\n";
        let root = parse(xml).unwrap();
        assert_eq!(root.name, "pfsense");
        assert_eq!(root.at("version").unwrap().text, "23.3");
        let system = root.child("system").unwrap();
        assert_eq!(system.text_of("hostname"), "fw");
        assert_eq!(
            system
                .all("dnsserver")
                .map(|d| d.text.as_str())
                .collect::<Vec<_>>(),
            ["1.1.1.1", "9.9.9.9"]
        );
        let descr = system.child("descr").unwrap();
        assert_eq!((descr.text.as_str(), descr.cdata), ("A & <b>", true));
        assert!(system.has("empty") && system.text_of("blank").is_empty());
        let x = root.child("x").unwrap();
        assert_eq!(x.text, "<tag> éA");
        assert_eq!(
            x.attrs,
            [("a".into(), "1 & 2".into()), ("b".into(), "q".into())]
        );
        // Serialised and read again: the same tree.
        assert_eq!(parse(&root.to_document()).unwrap(), root);
    }

    #[test]
    fn bad_documents_are_errors_with_a_place() {
        for (bad, says) in [
            ("", "expected the root element"),
            ("<a><b></a>", "</a> closes <b>"),
            ("<a>", "ends inside <a>"),
            ("<a>x<b/></a>", "both text and elements"),
            ("<a>&bogus;</a>", "unknown entity"),
            ("<a>AT&T</a>", "starts no entity"),
            ("<a></a><b/>", "content after the root"),
            ("<a x=1/>", "not quoted"),
            ("<a x='1' x='2'/>", "appears twice"),
            ("<!DOCTYPE a [<!ENTITY e 'x'>]><a/>", "internal subset"),
            ("<a><![CDATA[x</a>", "CDATA section is not closed"),
            ("<1a/>", "expected a name"),
        ] {
            let error = parse(bad).unwrap_err();
            assert!(error.message.contains(says), "{bad:?}: {error}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn cdata_with_its_own_end_marker_survives() {
        let mut root = Element::new("r");
        let mut d = Element::leaf("d", "a]]>b");
        d.cdata = true;
        root.children.push(d);
        assert_eq!(parse(&root.to_document()).unwrap(), root);
    }
}
