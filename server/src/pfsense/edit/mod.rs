//! Edits of a configuration as change sets make them (decision 0013): the server applies typed
//! operations to a device's newest configuration and sends the result. An edit changes only the
//! elements it is about — every other element stays as it was, in order — and an edit that cannot
//! apply says why in people's words and changes nothing. [`aliases`] and [`rules`] so far.

pub mod aliases;
pub mod rules;

pub use aliases::AliasFields;
pub use rules::{EndpointFields, Place, RuleFields, Stamp};

/// Why an edit cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("There is no rule with tracker {0} on this firewall.")]
    NoSuchRule(String),
    #[error("{0}")]
    Invalid(String),
    #[error("There is no alias \"{0}\" on this firewall.")]
    NoSuchAlias(String),
    #[error("An alias called \"{0}\" already exists on this firewall.")]
    AliasExists(String),
    #[error("The alias \"{name}\" is in use: {}. Change those first.", users.join("; "))]
    AliasInUse { name: String, users: Vec<String> },
}

pub(crate) fn is_ip(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok()
}

pub(crate) fn is_hostname(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub(crate) fn is_network(text: &str) -> bool {
    match text.split_once('/') {
        Some((ip, bits)) => match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
            (Ok(std::net::IpAddr::V4(_)), Ok(bits)) => bits <= 32,
            (Ok(std::net::IpAddr::V6(_)), Ok(bits)) => bits <= 128,
            _ => false,
        },
        None => is_ip(text),
    }
}

/// A port or a range written with `separator` ("8000:8080" in aliases, "8000-8080" in rules).
pub(crate) fn port_span(text: &str, separator: char) -> Option<(u32, u32)> {
    let (lo, hi) = text.split_once(separator).unwrap_or((text, text));
    let (lo, hi) = (lo.parse::<u32>().ok()?, hi.parse::<u32>().ok()?);
    (lo <= hi && hi <= 65_535).then_some((lo, hi))
}
