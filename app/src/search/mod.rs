//! Fleet-wide search over the newest configuration of every device of the organisation: "which
//! firewalls have alias X", "rules that pass port 22 from any", "pfSense older than 2.7", "user
//! bob", "package pfBlockerNG". A query is a list of filters — field, operator, value — one per
//! line in its text form (`rule.port is 22`), which is also what the page's URL carries. Filters
//! on the same kind of thing (rule.*, alias.*…) must hold for the same thing (one rule); filters
//! on different kinds hold on the same device. The parser lives here so the page and the server
//! say the same thing about a bad query.

pub mod page;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text, matched case-insensitively: `is` or `contains`.
    Text,
    /// A port or a range ("22", "8000-8080"); `is` means the thing covers it (port aliases and
    /// ranges resolved; a rule with no port covers every port).
    Port,
    /// A version compared as a version ("2.7" < "2.7.2" < "2.10").
    Version,
}

/// A field a filter may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub example: &'static str,
}

const fn field(
    name: &'static str,
    label: &'static str,
    kind: FieldKind,
    example: &'static str,
) -> Field {
    Field {
        name,
        label,
        kind,
        example,
    }
}

/// Every field, in the order the page offers them.
pub const FIELDS: &[Field] = &[
    field("rule.action", "Rule: action", FieldKind::Text, "pass"),
    field("rule.port", "Rule: destination port", FieldKind::Port, "22"),
    field("rule.source", "Rule: source", FieldKind::Text, "any"),
    field(
        "rule.destination",
        "Rule: destination",
        FieldKind::Text,
        "10.0.0.7",
    ),
    field("rule.interface", "Rule: interface", FieldKind::Text, "wan"),
    field("rule.protocol", "Rule: protocol", FieldKind::Text, "tcp"),
    field(
        "rule.description",
        "Rule: description",
        FieldKind::Text,
        "ssh",
    ),
    field("alias.name", "Alias: name", FieldKind::Text, "WEB"),
    field("alias.entry", "Alias: entry", FieldKind::Text, "10.0.0.7"),
    field("alias.type", "Alias: type", FieldKind::Text, "host"),
    field("nat.port", "Port forward: port", FieldKind::Port, "443"),
    field(
        "nat.target",
        "Port forward: target",
        FieldKind::Text,
        "10.0.0.5",
    ),
    field(
        "nat.interface",
        "Port forward: interface",
        FieldKind::Text,
        "wan",
    ),
    field(
        "nat.description",
        "Port forward: description",
        FieldKind::Text,
        "web",
    ),
    field("user.name", "User: name", FieldKind::Text, "bob"),
    field("user.group", "User: group", FieldKind::Text, "admins"),
    field(
        "package.name",
        "Package: name",
        FieldKind::Text,
        "pfBlockerNG",
    ),
    field(
        "package.version",
        "Package: version",
        FieldKind::Text,
        "3.2.0",
    ),
    field("interface.name", "Interface: name", FieldKind::Text, "opt1"),
    field(
        "interface.description",
        "Interface: description",
        FieldKind::Text,
        "guest",
    ),
    field(
        "interface.address",
        "Interface: address",
        FieldKind::Text,
        "192.168.1.1",
    ),
    field(
        "pfsense.version",
        "pfSense version",
        FieldKind::Version,
        "2.7",
    ),
    field("system.hostname", "Hostname", FieldKind::Text, "fw1"),
];

/// A filter's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Is,
    Contains,
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Is,
        Op::Contains,
        Op::Below,
        Op::AtMost,
        Op::Above,
        Op::AtLeast,
    ];

    /// As a query's text writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Is => "is",
            Op::Contains => "contains",
            Op::Below => "<",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::AtLeast => ">=",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Op::Is => "is",
            Op::Contains => "contains",
            Op::Below => "older than",
            Op::AtMost => "at most",
            Op::Above => "newer than",
            Op::AtLeast => "at least",
        }
    }

    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// The operators a kind of field takes.
    pub fn for_kind(kind: FieldKind) -> &'static [Op] {
        match kind {
            FieldKind::Text => &[Op::Is, Op::Contains],
            FieldKind::Port => &[Op::Is],
            FieldKind::Version => &[Op::Is, Op::Below, Op::AtMost, Op::Above, Op::AtLeast],
        }
    }
}

/// Filters a query may have, and the longest value.
pub const MAX_FILTERS: usize = 8;
pub const MAX_VALUE: usize = 200;

/// One parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub op: Op,
    /// Lowercased, trimmed.
    pub value: String,
}

impl Filter {
    /// The kind of thing it is about: rule, alias, nat, user, package, interface, or system.
    pub fn thing(&self) -> &'static str {
        match self.field.name.split('.').next().unwrap_or("") {
            "pfsense" | "system" => "system",
            "rule" => "rule",
            "alias" => "alias",
            "nat" => "nat",
            "user" => "user",
            "package" => "package",
            _ => "interface",
        }
    }
}

pub fn find_field(name: &str) -> Option<Field> {
    FIELDS.iter().copied().find(|f| f.name == name)
}

/// Parse a query's text: one `field operator value` per line; blank lines are ignored. A bad
/// line is an error that names the line and the field and says what would be right.
pub fn parse_query(text: &str) -> Result<Vec<Filter>, String> {
    let mut filters = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = n + 1;
        let mut parts = line.trim().splitn(3, char::is_whitespace);
        let name = parts.next().unwrap_or_default();
        let Some(field) = find_field(name) else {
            return Err(format!(
                "Line {line_no}: there is no field \"{name}\". Fields: {}.",
                FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
            ));
        };
        let allowed = Op::for_kind(field.kind);
        let op_text = parts.next().unwrap_or_default().trim();
        let Some(op) = Op::parse(op_text).filter(|op| allowed.contains(op)) else {
            return Err(format!(
                "Line {line_no}: {} takes {}, not \"{op_text}\".",
                field.name,
                allowed
                    .iter()
                    .map(|o| format!("\"{}\"", o.as_str()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        };
        let value = parts.next().unwrap_or_default().trim().to_lowercase();
        if value.is_empty() {
            return Err(format!(
                "Line {line_no}: {} needs a value, such as \"{}\".",
                field.name, field.example
            ));
        }
        if value.chars().count() > MAX_VALUE {
            return Err(format!(
                "Line {line_no}: the value for {} is longer than {MAX_VALUE} characters.",
                field.name
            ));
        }
        match field.kind {
            FieldKind::Port if port_range(&value).is_none() => {
                return Err(format!(
                    "Line {line_no}: {} takes a port (0–65535) or a range such as 8000-8080, not \"{value}\".",
                    field.name
                ));
            }
            FieldKind::Version if version_parts(&value).is_none() => {
                return Err(format!(
                    "Line {line_no}: {} takes a version such as 2.7 or 2.7.2, not \"{value}\".",
                    field.name
                ));
            }
            _ => {}
        }
        filters.push(Filter { field, op, value });
    }
    if filters.is_empty() {
        return Err("Add a filter: a field, how it compares, and a value.".to_owned());
    }
    if filters.len() > MAX_FILTERS {
        return Err(format!("A search takes at most {MAX_FILTERS} filters."));
    }
    Ok(filters)
}

/// "22" → (22, 22); "8000-8080" or "8000:8080" → (8000, 8080).
pub fn port_range(text: &str) -> Option<(i64, i64)> {
    let text = text.trim();
    let (lo, hi) = match text.split_once(['-', ':']) {
        Some((lo, hi)) => (lo.trim(), hi.trim()),
        None => (text, text),
    };
    let (lo, hi) = (lo.parse::<i64>().ok()?, hi.parse::<i64>().ok()?);
    ((0..=65_535).contains(&lo) && (lo..=65_535).contains(&hi)).then_some((lo, hi))
}

/// A version as one comparable number and how many parts were given: "2.7.2" → (2_007_002, 3),
/// "23.09.1" → (23_009_001, 3), "2.7" → (2_007_000, 2). Suffixes ("-RELEASE", "_1") are ignored.
pub fn version_parts(text: &str) -> Option<(i64, u32)> {
    let core = text
        .trim()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = core.split('.');
    let mut key = 0i64;
    let mut count = 0u32;
    for scale in [1_000_000, 1_000, 1] {
        match parts.next().filter(|p| !p.is_empty()) {
            Some(part) => {
                let n = part.parse::<i64>().ok()?;
                if n >= 1_000 {
                    return None;
                }
                key += n * scale;
                count += 1;
            }
            None => break,
        }
    }
    (count > 0).then_some((key, count))
}

/// One thing that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub device_id: String,
    pub device_name: String,
    /// rules, aliases, nat, users, packages, interfaces, system.
    pub section: String,
    /// The thing in people's words.
    pub label: String,
}

/// Results shown at most.
pub const MAX_HITS: usize = 200;

/// A search's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchAnswer {
    pub hits: Vec<SearchHit>,
    /// Devices with at least one match.
    pub devices: u64,
    /// More than [`MAX_HITS`] things matched.
    pub more: bool,
    /// Devices whose configuration has been read for search (the rest have no backup yet).
    pub searched: u64,
    pub took_ms: u64,
}

/// Search the organisation's fleet (any member).
#[server(prefix = "/api", endpoint = "search/run")]
pub async fn search_fleet(query: String) -> Result<SearchAnswer, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.search.search(&caller, query).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_bad_ones_say_what_is_wrong() {
        let filters =
            parse_query("rule.action is pass\n\nrule.port is 22\npfsense.version < 2.7").unwrap();
        assert_eq!(filters.len(), 3);
        assert_eq!(
            (filters[1].field.name, filters[1].op),
            ("rule.port", Op::Is)
        );
        assert_eq!(filters[2].thing(), "system");
        let error = |q: &str| parse_query(q).unwrap_err();
        assert!(error("rule.prt is 22").contains("no field \"rule.prt\""));
        assert!(error("rule.port contains 22").contains("rule.port takes \"is\""));
        assert!(error("rule.port is http").contains("takes a port"));
        assert!(error("pfsense.version < two").contains("takes a version"));
        assert!(error("alias.name is").contains("needs a value"));
        assert!(error("").contains("Add a filter"));
        assert!(error(&"user.name is x\n".repeat(9)).contains("at most 8"));
    }

    #[test]
    fn versions_compare_as_versions() {
        assert!(version_parts("2.7").unwrap().0 < version_parts("2.7.2").unwrap().0);
        assert!(version_parts("2.7.2").unwrap().0 < version_parts("2.10").unwrap().0);
        assert_eq!(version_parts("23.09.1-RELEASE"), Some((23_009_001, 3)));
        assert_eq!(version_parts("x"), None);
    }
}
