//! What changed between two configurations, in people's words and without noise: "rule on LAN
//! (Allow web): destination port 443 → 8443", "alias WEB: + 10.0.0.7". Records are matched by
//! what identifies them in pfSense (a rule's tracker, an alias's name, a user's name…), not by
//! position, so an insertion does not read as every later rule changing. Revision stamps,
//! `lastchange`, `last_rule_upd_time` and rules' created/updated stamps are noise and ignored;
//! sections the model does not read are compared as trees and reported by name. Secrets are never
//! put in words: a changed password hash reads "password changed".

use std::collections::BTreeMap;

use super::model::{Alias, Config, Endpoint, Interface, PortForward, Rule, User};
use super::xml::Element;

/// One difference, grouped by section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// rules, aliases, nat, interfaces, users, packages, system, or another top-level element.
    pub section: String,
    pub text: String,
}

/// Top-level elements that only record when and by whom something was saved.
const NOISE_TOP: [&str; 2] = ["revision", "lastchange"];
/// Elements inside records that only record when and by whom they were saved.
const NOISE_INNER: [&str; 3] = ["created", "updated", "last_rule_upd_time"];
/// Top-level sections the typed comparison covers (others are compared as trees).
const TYPED: [&str; 6] = [
    "filter",
    "aliases",
    "nat",
    "interfaces",
    "installedpackages",
    "system",
];

/// The differences from `before` to `after`, section by section.
pub fn diff(before: &Config, after: &Config) -> Vec<Change> {
    let mut out = Out::default();
    rules(&mut out, &before.rules(), &after.rules());
    aliases(&mut out, &before.aliases(), &after.aliases());
    forwards(&mut out, &before.port_forwards(), &after.port_forwards());
    interfaces(&mut out, &before.interfaces(), &after.interfaces());
    users(&mut out, before, after);
    packages(&mut out, before, after);
    system(&mut out, before, after);
    others(&mut out, before, after);
    out.0
}

#[derive(Default)]
struct Out(Vec<Change>);

impl Out {
    fn push(&mut self, section: &str, text: String) {
        self.0.push(Change {
            section: section.to_owned(),
            text,
        });
    }
}

fn either(value: &str) -> &str {
    if value.is_empty() {
        "(none)"
    } else {
        value
    }
}

/// A rule's source or destination as pfSense's rule table shows it.
fn endpoint(e: &Endpoint) -> String {
    let mut text = if e.any {
        "any".to_owned()
    } else if !e.network.is_empty() {
        e.network.clone()
    } else if !e.address.is_empty() {
        e.address.clone()
    } else {
        "any".to_owned()
    };
    if e.not {
        text = format!("not {text}");
    }
    if !e.port.is_empty() {
        text.push_str(&format!(" port {}", e.port));
    }
    text
}

pub(crate) fn rule_name(r: &Rule) -> String {
    let place = if r.floating {
        "floating rule".to_owned()
    } else {
        format!("rule on {}", r.interface.to_uppercase())
    };
    if r.descr.is_empty() {
        place
    } else {
        format!("{place} ({})", r.descr)
    }
}

pub(crate) fn rule_summary(r: &Rule) -> String {
    format!(
        "{} {} from {} to {}{}",
        r.kind,
        either(&r.protocol).replace("(none)", "any"),
        endpoint(&r.source),
        endpoint(&r.destination),
        if r.disabled { ", disabled" } else { "" }
    )
}

/// Field-by-field changes of one record: "field a → b".
fn fields(pairs: &[(&str, String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| format!("{name} {} → {}", either(a), either(b)))
        .collect()
}

/// Records matched by a key: (removed, changed pairs, added), in the order of `after`.
fn matched<'a, T>(
    before: &'a [T],
    after: &'a [T],
    key: impl Fn(&T) -> String,
) -> (Vec<&'a T>, Vec<(&'a T, &'a T)>, Vec<&'a T>) {
    let old: BTreeMap<String, &T> = before.iter().map(|r| (key(r), r)).collect();
    let new: BTreeMap<String, &T> = after.iter().map(|r| (key(r), r)).collect();
    let removed = before
        .iter()
        .filter(|r| !new.contains_key(&key(r)))
        .collect();
    let mut pairs = Vec::new();
    let mut added = Vec::new();
    for r in after {
        match old.get(&key(r)) {
            Some(was) => pairs.push((*was, r)),
            None => added.push(r),
        }
    }
    (removed, pairs, added)
}

fn rules(out: &mut Out, before: &[Rule], after: &[Rule]) {
    // Without a tracker (hand-written configs), a rule is identified by its position.
    let key = |r: &Rule| {
        if r.tracker.is_empty() {
            format!("#{}", r.index)
        } else {
            r.tracker.clone()
        }
    };
    let (removed, pairs, added) = matched(before, after, key);
    for r in removed {
        out.push(
            "rules",
            format!("{} removed: {}", rule_name(r), rule_summary(r)),
        );
    }
    for r in added {
        out.push(
            "rules",
            format!("{} added: {}", rule_name(r), rule_summary(r)),
        );
    }
    // Order within an interface is evaluation order: a move is a change.
    let position = |rules: &[Rule], r: &Rule| {
        rules
            .iter()
            .filter(|x| x.interface == r.interface && x.floating == r.floating)
            .position(|x| key(x) == key(r))
    };
    for (a, b) in pairs {
        let changes = fields(&[
            ("action", a.kind.clone(), b.kind.clone()),
            ("interface", a.interface.clone(), b.interface.clone()),
            ("protocol", a.protocol.clone(), b.protocol.clone()),
            ("source", endpoint(&a.source), endpoint(&b.source)),
            (
                "destination",
                endpoint(&a.destination),
                endpoint(&b.destination),
            ),
            ("gateway", a.gateway.clone(), b.gateway.clone()),
            ("description", a.descr.clone(), b.descr.clone()),
            ("disabled", flag(a.disabled), flag(b.disabled)),
            ("logging", flag(a.log), flag(b.log)),
        ]);
        if !changes.is_empty() {
            out.push("rules", format!("{}: {}", rule_name(b), changes.join(", ")));
        }
        if a.interface == b.interface {
            if let (Some(from), Some(to)) = (position(before, a), position(after, b)) {
                let others_moved = before.len() != after.len();
                if from != to && !others_moved {
                    out.push(
                        "rules",
                        format!(
                            "{} moved from position {} to {}",
                            rule_name(b),
                            from + 1,
                            to + 1
                        ),
                    );
                }
            }
        }
    }
}

fn flag(on: bool) -> String {
    if on { "yes" } else { "no" }.to_owned()
}

fn aliases(out: &mut Out, before: &[Alias], after: &[Alias]) {
    let (removed, pairs, added) = matched(before, after, |a: &Alias| a.name.clone());
    for a in removed {
        out.push("aliases", format!("alias {} removed", a.name));
    }
    for a in added {
        out.push(
            "aliases",
            format!(
                "alias {} added ({}): {}",
                a.name,
                a.kind,
                a.entries.join(" ")
            ),
        );
    }
    for (a, b) in pairs {
        let mut parts: Vec<String> = b
            .entries
            .iter()
            .filter(|e| !a.entries.contains(e))
            .map(|e| format!("+ {e}"))
            .collect();
        parts.extend(
            a.entries
                .iter()
                .filter(|e| !b.entries.contains(e))
                .map(|e| format!("− {e}")),
        );
        parts.extend(fields(&[
            ("type", a.kind.clone(), b.kind.clone()),
            ("description", a.descr.clone(), b.descr.clone()),
        ]));
        if !parts.is_empty() {
            out.push("aliases", format!("alias {}: {}", b.name, parts.join(", ")));
        }
    }
}

fn forwards(out: &mut Out, before: &[PortForward], after: &[PortForward]) {
    let key = |f: &PortForward| {
        if f.associated_rule_id.is_empty() {
            format!("{}:{}", f.interface, endpoint(&f.destination))
        } else {
            f.associated_rule_id.clone()
        }
    };
    let name = |f: &PortForward| {
        format!(
            "port forward on {} {}",
            f.interface.to_uppercase(),
            endpoint(&f.destination)
        )
    };
    let (removed, pairs, added) = matched(before, after, key);
    for f in removed {
        out.push("nat", format!("{} removed", name(f)));
    }
    for f in added {
        out.push(
            "nat",
            format!("{} added: to {} port {}", name(f), f.target, f.local_port),
        );
    }
    for (a, b) in pairs {
        let changes = fields(&[
            ("protocol", a.protocol.clone(), b.protocol.clone()),
            ("source", endpoint(&a.source), endpoint(&b.source)),
            (
                "destination",
                endpoint(&a.destination),
                endpoint(&b.destination),
            ),
            ("target", a.target.clone(), b.target.clone()),
            ("local port", a.local_port.clone(), b.local_port.clone()),
            ("description", a.descr.clone(), b.descr.clone()),
            ("disabled", flag(a.disabled), flag(b.disabled)),
        ]);
        if !changes.is_empty() {
            out.push("nat", format!("{}: {}", name(b), changes.join(", ")));
        }
    }
}

fn interfaces(out: &mut Out, before: &[Interface], after: &[Interface]) {
    let (removed, pairs, added) = matched(before, after, |i: &Interface| i.name.clone());
    for i in removed {
        out.push(
            "interfaces",
            format!("interface {} removed", i.name.to_uppercase()),
        );
    }
    for i in added {
        out.push(
            "interfaces",
            format!("interface {} added on {}", i.name.to_uppercase(), i.device),
        );
    }
    for (a, b) in pairs {
        let address = |i: &Interface| {
            if i.subnet.is_empty() {
                i.ipaddr.clone()
            } else {
                format!("{}/{}", i.ipaddr, i.subnet)
            }
        };
        let changes = fields(&[
            ("device", a.device.clone(), b.device.clone()),
            ("description", a.descr.clone(), b.descr.clone()),
            ("enabled", flag(a.enabled), flag(b.enabled)),
            ("IPv4", address(a), address(b)),
            ("IPv6", a.ipaddrv6.clone(), b.ipaddrv6.clone()),
            ("gateway", a.gateway.clone(), b.gateway.clone()),
        ]);
        if !changes.is_empty() {
            out.push(
                "interfaces",
                format!(
                    "interface {}: {}",
                    b.name.to_uppercase(),
                    changes.join(", ")
                ),
            );
        }
    }
}

fn users(out: &mut Out, before: &Config, after: &Config) {
    let (old, new) = (before.users(), after.users());
    let (removed, pairs, added) = matched(&old, &new, |u: &User| u.name.clone());
    for u in removed {
        out.push("users", format!("user {} removed", u.name));
    }
    for u in added {
        out.push("users", format!("user {} added", u.name));
    }
    let secret = |config: &Config, name: &str| -> String {
        config
            .root
            .child("system")
            .and_then(|s| s.all("user").find(|u| u.text_of("name") == name))
            .map(|u| {
                ["bcrypt-hash", "sha512-hash", "password", "md5-hash"]
                    .iter()
                    .map(|f| u.text_of(f))
                    .collect::<String>()
            })
            .unwrap_or_default()
    };
    for (a, b) in pairs {
        let mut changes = fields(&[
            ("description", a.descr.clone(), b.descr.clone()),
            ("disabled", flag(a.disabled), flag(b.disabled)),
            ("groups", a.groups.join(" "), b.groups.join(" ")),
            ("privileges", a.privileges.join(" "), b.privileges.join(" ")),
            ("expires", a.expires.clone(), b.expires.clone()),
            (
                "authorized SSH keys",
                a.authorized_keys.to_string(),
                b.authorized_keys.to_string(),
            ),
        ]);
        if secret(before, &a.name) != secret(after, &b.name) {
            changes.push("password changed".to_owned());
        }
        if !changes.is_empty() {
            out.push("users", format!("user {}: {}", b.name, changes.join(", ")));
        }
    }
}

fn packages(out: &mut Out, before: &Config, after: &Config) {
    let (old, new) = (before.packages(), after.packages());
    let (removed, pairs, added) = matched(&old, &new, |p| p.name.clone());
    for p in removed {
        out.push("packages", format!("package {} removed", p.name));
    }
    for p in added {
        out.push(
            "packages",
            format!("package {} {} installed", p.name, p.version),
        );
    }
    for (a, b) in pairs {
        if a.version != b.version {
            out.push(
                "packages",
                format!("package {}: version {} → {}", b.name, a.version, b.version),
            );
        }
    }
}

fn system(out: &mut Out, before: &Config, after: &Config) {
    let (a, b) = (before.system(), after.system());
    for change in fields(&[
        ("hostname", a.hostname.clone(), b.hostname.clone()),
        ("domain", a.domain.clone(), b.domain.clone()),
        (
            "DNS servers",
            a.dns_servers.join(" "),
            b.dns_servers.join(" "),
        ),
        ("time zone", a.timezone.clone(), b.timezone.clone()),
        ("SSH", flag(a.ssh_enabled), flag(b.ssh_enabled)),
        ("SSH port", a.ssh_port.clone(), b.ssh_port.clone()),
        ("web GUI port", a.webgui_port.clone(), b.webgui_port.clone()),
    ]) {
        out.push("system", change);
    }
}

/// A tree without its noise (for comparing the sections the model does not read).
fn quiet(element: &Element) -> Element {
    Element {
        children: element
            .children
            .iter()
            .filter(|c| !NOISE_INNER.contains(&c.name.as_str()))
            .map(quiet)
            .collect(),
        ..element.clone()
    }
}

fn others(out: &mut Out, before: &Config, after: &Config) {
    let sections = |config: &Config| -> BTreeMap<String, Vec<Element>> {
        let mut map: BTreeMap<String, Vec<Element>> = BTreeMap::new();
        for child in &config.root.children {
            let name = child.name.as_str();
            if !NOISE_TOP.contains(&name) && !TYPED.contains(&name) {
                map.entry(child.name.clone())
                    .or_default()
                    .push(quiet(child));
            }
        }
        map
    };
    let (a, b) = (sections(before), sections(after));
    for name in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        match (a.get(name), b.get(name)) {
            (Some(x), Some(y)) if x != y => out.push(name, format!("{name} changed")),
            (Some(_), None) => out.push(name, format!("{name} removed")),
            (None, Some(_)) => out.push(name, format!("{name} added")),
            _ => {}
        }
    }
    // Inside the typed sections, what the model does not read (e.g. a rule's advanced options,
    // system settings beyond General Setup) still counts.
    for name in TYPED {
        let (x, y) = (
            before.root.child(name).map(quiet),
            after.root.child(name).map(quiet),
        );
        let worded = out
            .0
            .iter()
            .any(|c| worded_under(name).contains(&c.section.as_str()));
        if x != y && !worded {
            out.push(section_of(name), format!("{name}: other settings changed"));
        }
    }
}

/// The change section a top-level element's differences are reported under.
fn section_of(element: &str) -> &str {
    match element {
        "filter" => "rules",
        "installedpackages" => "packages",
        other => other,
    }
}

/// The sections whose worded changes already account for a top-level element's differences
/// (users live inside `<system>`).
fn worded_under(element: &str) -> &'static [&'static str] {
    match element {
        "filter" => &["rules"],
        "installedpackages" => &["packages"],
        "system" => &["system", "users"],
        "aliases" => &["aliases"],
        "nat" => &["nat"],
        "interfaces" => &["interfaces"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUB: &str = include_str!("../../tests/fixtures/pfsense-root/cf/conf/config.xml");

    fn texts(before: &str, after: &str) -> Vec<String> {
        diff(
            &Config::parse(before).unwrap(),
            &Config::parse(after).unwrap(),
        )
        .into_iter()
        .map(|c| format!("{}: {}", c.section, c.text))
        .collect()
    }

    #[test]
    fn the_same_configuration_saved_again_is_no_change() {
        // A new revision stamp and rule-update time only: noise.
        let resaved = STUB
            .replace("<time>1700000000</time>", "<time>1800000000</time>")
            .replace(
                "<lastchange></lastchange>",
                "<lastchange>1800000000</lastchange>",
            );
        assert_eq!(texts(STUB, &resaved), Vec::<String>::new());
    }

    #[test]
    fn changes_read_in_peoples_words() {
        let after = STUB
            .replace(
                "<address>203.0.113.5 203.0.113.6</address>",
                "<address>203.0.113.5 10.0.0.7</address>",
            )
            .replace("<port>22</port>", "<port>2222</port>")
            .replace("<hostname>", "<hostname>new-")
            .replace(
                "<local-port>443</local-port>",
                "<local-port>8443</local-port>",
            );
        let said = texts(STUB, &after);
        assert!(
            said.contains(&"aliases: alias mudmap_managers: + 10.0.0.7, − 203.0.113.6".to_owned()),
            "{said:#?}"
        );
        assert!(
            said.iter().any(|s| s.starts_with("rules: rule on WAN (Mudmap management SSH): destination (self) port 22 → (self) port 2222")),
            "{said:#?}"
        );
        assert!(
            said.iter()
                .any(|s| s
                    .starts_with("nat: port forward on WAN wanip port 443: local port 443 → 8443")),
            "{said:#?}"
        );
        assert!(
            said.iter().any(|s| s.starts_with("system: hostname ")),
            "{said:#?}"
        );
    }

    #[test]
    fn an_inserted_rule_is_one_addition_and_secrets_stay_secret() {
        let config = Config::parse(STUB).unwrap();
        let mut after = config.clone();
        let filter = after
            .root
            .children
            .iter_mut()
            .find(|c| c.name == "filter")
            .unwrap();
        let mut rule = Element::new("rule");
        rule.children.push(Element::leaf("tracker", "42"));
        rule.children.push(Element::leaf("type", "block"));
        rule.children.push(Element::leaf("interface", "lan"));
        filter.children.insert(0, rule);
        let system = after
            .root
            .children
            .iter_mut()
            .find(|c| c.name == "system")
            .unwrap();
        if let Some(user) = system.children.iter_mut().find(|c| c.name == "user") {
            if let Some(hash) = user.children.iter_mut().find(|c| c.name == "bcrypt-hash") {
                hash.text = "$2y$10$secret-new-hash".to_owned();
            }
        }
        let said: Vec<String> = diff(&config, &after)
            .into_iter()
            .map(|c| format!("{}: {}", c.section, c.text))
            .collect();
        assert_eq!(
            said.iter().filter(|s| s.starts_with("rules:")).count(),
            1,
            "{said:#?}"
        );
        assert!(
            said.iter().any(|s| s.ends_with("password changed")),
            "{said:#?}"
        );
        assert!(
            !said.iter().any(|s| s.contains("other settings changed")),
            "{said:#?}"
        );
        assert!(
            !said.iter().any(|s| s.contains("secret-new-hash")),
            "{said:#?}"
        );
    }

    #[test]
    fn sections_the_model_does_not_read_are_named() {
        let after = STUB.replace(
            "<filterdescriptions>1</filterdescriptions>",
            "<filterdescriptions>2</filterdescriptions>",
        );
        assert_eq!(texts(STUB, &after), ["syslog: syslog changed"]);
    }
}
