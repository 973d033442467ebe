//! Secrets in a `config.xml`, masked for showing: password hashes, pre-shared keys, private keys,
//! shared secrets. The raw XML a person sees is the stored text with the content of every secret
//! element replaced by a placeholder, so the lines around it stay as pfSense wrote them. Only an
//! owner or admin may see them unmasked, and that is audited (see the backups service).
//!
//! Masking works on the text, not on a re-serialised tree: a raw diff must show pfSense's bytes.

use std::collections::HashMap;

/// Elements whose content is a secret wherever they appear in pfSense's configuration.
pub const SECRET_ELEMENTS: &[&str] = &[
    // System > User Manager.
    "bcrypt-hash",
    "sha512-hash",
    "md5-hash",
    "nt-hash",
    "password",
    "passwordenc",
    // Certificates and keys (System > Cert. Manager, OpenVPN, IPsec).
    "prv",
    "key",
    "tls",
    "shared_key",
    "static_key",
    // Pre-shared keys and shared secrets (IPsec, WireGuard, RADIUS, LDAP, DynDNS, SNMP, CARP).
    "pre-shared-key",
    "psk",
    "privatekey",
    "presharedkey",
    "secret",
    "radius_secret",
    "radius_secret2",
    "ldap_bindpw",
    "apikey",
    "api_key",
    "passphrase",
    "auth_pass",
    "rocommunity",
    "rwcommunity",
    // Per-user IPsec keys, DHCP/RFC 2136 dynamic DNS keys, captive portal RADIUS, NTP, and
    // AutoConfigBackup's encryption password.
    "ipsecpsk",
    "ddnsdomainkey",
    "keydata",
    "radiuskey",
    "radiuskey2",
    "serverauthkey",
    "encryption_password",
];

/// What a masked secret reads as.
pub const HIDDEN: &str = "[hidden secret]";
/// What a masked secret that differs from the other side's reads as.
pub const HIDDEN_CHANGED: &str = "[hidden secret, changed]";

/// One secret's place in a text: the byte range of its content, and which element (name, and
/// the how-manieth of that name) it is.
struct Secret<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    nth: usize,
}

/// Every secret element's content in `xml`, in order. Elements with attributes or empty content
/// are found too; a self-closing element has no content and is skipped.
fn secrets(xml: &str) -> Vec<Secret<'_>> {
    let mut found = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let bytes = xml.as_bytes();
    let mut at = 0;
    while let Some(offset) = xml[at..].find('<') {
        let open = at + offset;
        // Text that only looks like markup (a description mentioning "<psk>") is skipped whole.
        let skipped = [("<![CDATA[", "]]>"), ("<!--", "-->")]
            .iter()
            .find(|(start, _)| xml[open..].starts_with(start))
            .map(|(_, end)| {
                xml[open..]
                    .find(end)
                    .map_or(xml.len(), |n| open + n + end.len())
            });
        if let Some(next) = skipped {
            at = next;
            continue;
        }
        at = open + 1;
        let name_end = xml[at..]
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .map_or(xml.len(), |n| at + n);
        let name = &xml[at..name_end];
        let Some(known) = SECRET_ELEMENTS.iter().find(|s| **s == name) else {
            continue;
        };
        // An unterminated tag or element is not a secret; scanning goes on after it.
        let Some(tag_end) = xml[name_end..].find('>').map(|n| name_end + n) else {
            continue;
        };
        if bytes.get(tag_end.wrapping_sub(1)) == Some(&b'/') {
            at = tag_end + 1;
            continue;
        }
        let close = format!("</{known}>");
        let Some(end) = xml[tag_end + 1..].find(&close).map(|n| tag_end + 1 + n) else {
            at = tag_end + 1;
            continue;
        };
        let nth = seen.entry(known).or_default();
        found.push(Secret {
            start: tag_end + 1,
            end,
            name: known,
            nth: *nth,
        });
        *nth += 1;
        at = end + close.len();
    }
    found
}

/// `xml` with every secret's content replaced by [`HIDDEN`] — or by [`HIDDEN_CHANGED`] where the
/// same element (by name and position among its namesakes) of `other` holds something else, or
/// does not exist there. Empty secrets stay empty (an unset password is not a secret).
pub fn mask(xml: &str, other: Option<&str>) -> String {
    let theirs: HashMap<(&str, usize), &str> = other
        .map(|o| {
            secrets(o)
                .into_iter()
                .map(|s| ((s.name, s.nth), &o[s.start..s.end]))
                .collect()
        })
        .unwrap_or_default();
    let mut out = String::with_capacity(xml.len());
    let mut copied = 0;
    for secret in secrets(xml) {
        let value = &xml[secret.start..secret.end];
        if value.trim().is_empty() {
            continue;
        }
        out.push_str(&xml[copied..secret.start]);
        let changed =
            other.is_some() && theirs.get(&(secret.name, secret.nth)).copied() != Some(value);
        out.push_str(if changed { HIDDEN_CHANGED } else { HIDDEN });
        copied = secret.end;
    }
    out.push_str(&xml[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_the_rest_is_kept_byte_for_byte() {
        let xml = "<pfsense>\n\t<user>\n\t\t<name>admin</name>\n\t\t<bcrypt-hash>$2y$10$abc</bcrypt-hash>\n\t</user>\n\t<cert><prv>LS0tLS1CRUdJTi\nBQUklWQVRF</prv><crt>PUBLIC</crt></cert>\n\t<ipsec><phase1><pre-shared-key><![CDATA[s3cret]]></pre-shared-key></phase1></ipsec>\n\t<password/>\n\t<key></key>\n</pfsense>";
        let masked = mask(xml, None);
        for secret in ["$2y$10$abc", "LS0tLS1", "BQUklWQVRF", "s3cret"] {
            assert!(!masked.contains(secret), "{secret} leaked: {masked}");
        }
        assert_eq!(masked.matches(HIDDEN).count(), 3);
        assert!(masked.contains("<name>admin</name>"));
        assert!(masked.contains("<crt>PUBLIC</crt>"));
        assert!(masked.contains("<password/>"));
        assert!(masked.contains("<key></key>"));
        assert_eq!(
            masked.lines().count(),
            xml.lines().count() - 1,
            "a multi-line key becomes one line"
        );
    }

    #[test]
    fn a_changed_secret_says_so_without_saying_what() {
        let before = "<u><password>old</password></u><u><password>same</password></u>";
        let after = "<u><password>new</password></u><u><password>same</password></u>";
        let masked = mask(after, Some(before));
        assert_eq!(
            masked,
            format!(
                "<u><password>{HIDDEN_CHANGED}</password></u><u><password>{HIDDEN}</password></u>"
            )
        );
        assert_eq!(
            mask(before, Some(before)).matches(HIDDEN_CHANGED).count(),
            0
        );
    }

    #[test]
    fn markup_inside_descriptions_does_not_stop_the_scan() {
        let xml = "<filter><rule><descr><![CDATA[rotate <psk> monthly]]></descr></rule><!-- <key> --></filter>\n<cert><prv>PRIVATE</prv></cert><x><psk>open<psk></x><ca><key>ALSO</key></ca>";
        let masked = mask(xml, None);
        assert!(masked.contains("rotate <psk> monthly"), "{masked}");
        assert!(
            !masked.contains("PRIVATE") && !masked.contains("ALSO"),
            "{masked}"
        );
    }

    #[test]
    fn masking_never_panics_on_broken_text() {
        for text in [
            "<password>",
            "<password",
            "<",
            "<key>abc</ke",
            "<psk/>",
            "é<prv>ü</prv>",
            "",
        ] {
            let _ = mask(text, Some(text));
        }
    }
}
