//! Firewall rules, as pfSense's Firewall > Rules edits them: a rule is found by its `tracker`
//! (pfSense's stable id), never by position, so a rule moved meanwhile is still the same rule; a
//! new rule gets a tracker no other rule has; order is evaluation order per interface, and the
//! interface's separators keep their place above the rules they stood above (pfSense stores them
//! as "before the interface's n-th rule"); fields are checked as pfSense checks them; created and
//! updated stamps name who made the change. Floating rules can be moved, enabled, disabled and
//! deleted; adding and editing them comes with the floating editor.

use super::{is_ip, is_network, port_span, EditError};
use crate::pfsense::model::Config;
use crate::pfsense::xml::Element;

/// Where a rule goes among its interface's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Top,
    Bottom,
    /// Directly above the rule with this tracker (on the same interface).
    Before(String),
}

/// Who makes the change and when (seconds since the epoch), for pfSense's created/updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub by: String,
    pub at_secs: i64,
}

/// A rule's source or destination as an editor sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointFields {
    /// "any"; an interface's network ("lan") or address ("lanip"), or "(self)"; an address, a
    /// network or an alias name.
    pub what: String,
    /// Everything but `what`.
    pub not: bool,
    /// A port, a range ("8000-8080") or a port alias; '' for any (TCP/UDP only).
    pub port: String,
}

/// A rule's fields as an editor sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFields {
    /// pass, block or reject.
    pub action: String,
    pub interface: String,
    /// inet, inet6 or inet46.
    pub ipprotocol: String,
    /// any, tcp, udp, tcp/udp, icmp.
    pub protocol: String,
    pub source: EndpointFields,
    pub destination: EndpointFields,
    pub log: bool,
    pub disabled: bool,
    pub descr: String,
}

const ACTIONS: [&str; 3] = ["pass", "block", "reject"];
const IP_PROTOCOLS: [&str; 3] = ["inet", "inet6", "inet46"];
const PROTOCOLS: [&str; 5] = ["any", "tcp", "udp", "tcp/udp", "icmp"];

/// The key separators of a rule's interface are kept under.
fn separator_key(rule: &Element) -> String {
    if rule.text_of("floating") == "yes" {
        "floatingrules".to_owned()
    } else {
        rule.text_of("interface").to_owned()
    }
}

impl Config {
    fn filter_mut(&mut self) -> &mut Element {
        let at = match self.root.children.iter().position(|c| c.name == "filter") {
            Some(at) => at,
            None => {
                self.root.children.push(Element::new("filter"));
                self.root.children.len() - 1
            }
        };
        &mut self.root.children[at]
    }

    /// The position among `<filter>`'s children of the rule with `tracker`.
    fn rule_child(&self, tracker: &str) -> Result<usize, EditError> {
        self.root
            .child("filter")
            .and_then(|f| {
                f.children
                    .iter()
                    .position(|c| c.name == "rule" && c.text_of("tracker") == tracker)
            })
            .ok_or_else(|| EditError::NoSuchRule(tracker.to_owned()))
    }

    /// Remove `<filter>`'s child at `at` (a rule of `key`), moving up the separators below it.
    fn take_rule(&mut self, at: usize, key: &str) {
        let row = self
            .rules_of(key)
            .iter()
            .position(|n| *n == at)
            .unwrap_or(0);
        self.filter_mut().children.remove(at);
        self.shift_separators(key, row, false);
    }

    /// A copy of `<filter>`'s child at `at` (found by [`Config::rule_child`]).
    fn rule_copy(&self, at: usize) -> Element {
        self.root
            .child("filter")
            .and_then(|f| f.children.get(at))
            .cloned()
            .unwrap_or_default()
    }

    /// Positions (among `<filter>`'s children) of the rules sharing `key`'s separators, in order.
    fn rules_of(&self, key: &str) -> Vec<usize> {
        self.root
            .child("filter")
            .map(|f| {
                f.children
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.name == "rule" && separator_key(c) == key)
                    .map(|(n, _)| n)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Shift the separators of `key` standing below row `row`: by +1 when a rule comes in at
    /// `row`, by -1 when the rule at `row` leaves. A separator right at `row` stays where it is.
    fn shift_separators(&mut self, key: &str, row: usize, inserted: bool) {
        let filter = self.filter_mut();
        let Some(groups) = filter.children.iter_mut().find(|c| c.name == "separator") else {
            return;
        };
        let Some(group) = groups.children.iter_mut().find(|c| c.name == key) else {
            return;
        };
        for separator in &mut group.children {
            let Some(leaf) = separator.children.iter_mut().find(|c| c.name == "row") else {
                continue;
            };
            let Some(n) = leaf
                .text
                .strip_prefix("fr")
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if n > row {
                leaf.text = format!("fr{}", if inserted { n + 1 } else { n - 1 });
            }
        }
    }

    /// A tracker no rule has: past every existing one and not before `at_secs`.
    fn new_tracker(&self, at_secs: i64) -> String {
        let highest = self
            .rules()
            .iter()
            .filter_map(|r| r.tracker.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        (highest + 1).max(at_secs).to_string()
    }

    fn check_endpoint(
        &self,
        side: &str,
        e: &EndpointFields,
        ported: bool,
    ) -> Result<(), EditError> {
        let interfaces: Vec<String> = self.interfaces().into_iter().map(|i| i.name).collect();
        let aliases = self.aliases();
        let what = e.what.trim();
        let network = interfaces
            .iter()
            .any(|i| what == i || what == format!("{i}ip"))
            || what == "(self)";
        let alias = aliases.iter().any(|a| {
            a.name == what && matches!(a.kind.as_str(), "host" | "network" | "url" | "urltable")
        });
        if !(what == "any" || network || alias || is_ip(what) || is_network(what)) {
            return Err(EditError::Invalid(format!(
                "{side}: \"{what}\" is not any, an interface's network or address, an address, a network or a host/network alias."
            )));
        }
        let port = e.port.trim();
        if !port.is_empty() {
            if !ported {
                return Err(EditError::Invalid(format!(
                    "{side} port: only TCP and UDP rules have ports."
                )));
            }
            let port_alias = aliases.iter().any(|a| a.name == port && a.kind == "port");
            if !(port_alias || port_span(port, '-').is_some() || port_span(port, ':').is_some()) {
                return Err(EditError::Invalid(format!(
                    "{side} port: \"{port}\" is not a port, a range such as 8000-8080, or a port alias."
                )));
            }
        }
        Ok(())
    }

    fn check_rule(&self, f: &RuleFields) -> Result<(), EditError> {
        let invalid = |text: String| Err(EditError::Invalid(text));
        if !ACTIONS.contains(&f.action.as_str()) {
            return invalid(format!(
                "Action \"{}\": choose pass, block or reject.",
                f.action
            ));
        }
        if !self.interfaces().iter().any(|i| i.name == f.interface) {
            return invalid(format!(
                "Interface \"{}\": this firewall has no such interface.",
                f.interface
            ));
        }
        if !IP_PROTOCOLS.contains(&f.ipprotocol.as_str()) {
            return invalid(format!(
                "Address family \"{}\": choose inet (IPv4), inet6 (IPv6) or inet46 (both).",
                f.ipprotocol
            ));
        }
        if !PROTOCOLS.contains(&f.protocol.as_str()) {
            return invalid(format!(
                "Protocol \"{}\": choose one of {}.",
                f.protocol,
                PROTOCOLS.join(", ")
            ));
        }
        if f.descr.chars().count() > 255 {
            return invalid("Description: at most 255 characters.".to_owned());
        }
        let ported = matches!(f.protocol.as_str(), "tcp" | "udp" | "tcp/udp");
        self.check_endpoint("Source", &f.source, ported)?;
        self.check_endpoint("Destination", &f.destination, ported)
    }

    /// Write `f` into `rule`, keeping every child the editor does not manage (schedule, gateway,
    /// state options…) where it is.
    fn write_rule(&self, rule: &mut Element, f: &RuleFields, stamp: &Stamp, created: bool) {
        fn set(rule: &mut Element, name: &str, value: Option<Element>) {
            let at = rule.children.iter().position(|c| c.name == name);
            match (at, value) {
                (Some(at), Some(value)) => rule.children[at] = value,
                (Some(at), None) => {
                    rule.children.remove(at);
                }
                (None, Some(value)) => rule.children.push(value),
                (None, None) => {}
            }
        }
        let aliases: Vec<String> = self.aliases().into_iter().map(|a| a.name).collect();
        let endpoint = |name: &str, e: &EndpointFields| {
            let mut out = Element::new(name);
            let what = e.what.trim();
            let is_interface = self
                .interfaces()
                .iter()
                .any(|i| what == i.name || what == format!("{}ip", i.name))
                || what == "(self)";
            if what == "any" {
                out.children.push(Element::new("any"));
            } else if is_interface {
                out.children.push(Element::leaf("network", what));
            } else {
                out.children.push(Element::leaf("address", what));
            }
            let port = e.port.trim();
            if !port.is_empty() {
                let port = if aliases.iter().any(|a| a == port) {
                    port.to_owned()
                } else {
                    port.replace(':', "-")
                };
                out.children.push(Element::leaf("port", port));
            }
            if e.not {
                out.children.push(Element::new("not"));
            }
            out
        };
        let leaf = |name: &str, text: &str| Some(Element::leaf(name, text));
        let flag = |name: &str, on: bool| on.then(|| Element::new(name));
        let mut descr = Element::leaf("descr", f.descr.as_str());
        descr.cdata = true;
        let when = |name: &str| {
            let mut e = Element::new(name);
            e.children
                .push(Element::leaf("time", stamp.at_secs.to_string()));
            let mut by = Element::leaf("username", stamp.by.as_str());
            by.cdata = true;
            e.children.push(by);
            Some(e)
        };
        set(rule, "type", leaf("type", &f.action));
        set(rule, "interface", leaf("interface", &f.interface));
        set(rule, "ipprotocol", leaf("ipprotocol", &f.ipprotocol));
        set(
            rule,
            "protocol",
            (f.protocol != "any").then(|| Element::leaf("protocol", f.protocol.as_str())),
        );
        set(rule, "source", Some(endpoint("source", &f.source)));
        set(
            rule,
            "destination",
            Some(endpoint("destination", &f.destination)),
        );
        set(rule, "disabled", flag("disabled", f.disabled));
        set(rule, "log", flag("log", f.log));
        set(rule, "descr", Some(descr));
        if created {
            set(rule, "created", when("created"));
        }
        set(rule, "updated", when("updated"));
    }

    /// Add a rule on its interface at `place`; returns its new tracker.
    pub fn add_rule(
        &mut self,
        f: &RuleFields,
        place: &Place,
        stamp: &Stamp,
    ) -> Result<String, EditError> {
        self.check_rule(f)?;
        let tracker = self.new_tracker(stamp.at_secs);
        let mut rule = Element::new("rule");
        rule.children
            .push(Element::leaf("tracker", tracker.as_str()));
        self.write_rule(&mut rule, f, stamp, true);
        self.insert_rule(rule, &f.interface, place)?;
        Ok(tracker)
    }

    /// Put `rule` among `key`'s rules at `place`, shifting the separators below it.
    fn insert_rule(&mut self, rule: Element, key: &str, place: &Place) -> Result<(), EditError> {
        let ours = self.rules_of(key);
        let (row, child) = match place {
            Place::Top => (0, ours.first().copied()),
            Place::Bottom => (ours.len(), None),
            Place::Before(tracker) => {
                let at = self.rule_child(tracker)?;
                let row = ours.iter().position(|n| *n == at).ok_or_else(|| {
                    EditError::Invalid(format!(
                        "Position: the rule with tracker {tracker} is on another interface."
                    ))
                })?;
                (row, Some(at))
            }
        };
        let filter = self.filter_mut();
        // No rule to stand before: after the interface's last rule, else after the last rule of
        // all.
        let after_all = filter
            .children
            .iter()
            .rposition(|c| c.name == "rule")
            .map_or(0, |n| n + 1);
        let child = child.unwrap_or_else(|| ours.last().map_or(after_all, |n| n + 1));
        filter.children.insert(child, rule);
        self.shift_separators(key, row, true);
        Ok(())
    }

    /// Change a rule's fields (it stays where it is; its interface must stay the same — moving
    /// a rule to another interface is a delete and an add).
    pub fn update_rule(
        &mut self,
        tracker: &str,
        f: &RuleFields,
        stamp: &Stamp,
    ) -> Result<(), EditError> {
        let at = self.rule_child(tracker)?;
        self.check_rule(f)?;
        let mut rule = self.rule_copy(at);
        if rule.text_of("floating") == "yes" {
            return Err(EditError::Invalid(
                "Floating rules are edited in the floating editor.".to_owned(),
            ));
        }
        if rule.text_of("interface") != f.interface {
            return Err(EditError::Invalid(format!(
                "Interface: the rule is on {}; to put it on {}, add it there and delete this one.",
                rule.text_of("interface"),
                f.interface
            )));
        }
        self.write_rule(&mut rule, f, stamp, false);
        self.filter_mut().children[at] = rule;
        Ok(())
    }

    /// Turn a rule on or off.
    pub fn set_rule_disabled(&mut self, tracker: &str, disabled: bool) -> Result<(), EditError> {
        let at = self.rule_child(tracker)?;
        let rule = &mut self.filter_mut().children[at];
        let present = rule.children.iter().position(|c| c.name == "disabled");
        match (present, disabled) {
            (None, true) => {
                let before = rule
                    .children
                    .iter()
                    .position(|c| c.name == "descr")
                    .unwrap_or(rule.children.len());
                rule.children.insert(before, Element::new("disabled"));
            }
            (Some(n), false) => {
                rule.children.remove(n);
            }
            _ => {}
        }
        Ok(())
    }

    /// Delete a rule. A rule a NAT port forward made is deleted with its port forward instead.
    pub fn delete_rule(&mut self, tracker: &str) -> Result<(), EditError> {
        let at = self.rule_child(tracker)?;
        let rule = self.rule_copy(at);
        if !rule.text_of("associated-rule-id").is_empty() {
            return Err(EditError::Invalid(format!(
                "The rule with tracker {tracker} belongs to a NAT port forward: delete the port forward, or unlink the rule there first."
            )));
        }
        let key = separator_key(&rule);
        self.take_rule(at, &key);
        Ok(())
    }

    /// Move a rule to `place` among its interface's rules.
    pub fn move_rule(&mut self, tracker: &str, place: &Place) -> Result<(), EditError> {
        if *place == Place::Before(tracker.to_owned()) {
            return Ok(());
        }
        let at = self.rule_child(tracker)?;
        let rule = self.rule_copy(at);
        let key = separator_key(&rule);
        if let Place::Before(other) = place {
            let other_at = self.rule_child(other)?;
            if !self.rules_of(&key).contains(&other_at) {
                return Err(EditError::Invalid(format!(
                    "Position: the rule with tracker {other} is on another interface."
                )));
            }
        }
        let before = self.clone();
        self.take_rule(at, &key);
        if let Err(e) = self.insert_rule(rule, &key, place) {
            *self = before;
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONFIG: &str = r#"<?xml version="1.0"?>
<pfsense>
	<version>23.3</version>
	<interfaces>
		<wan><if>vtnet0</if></wan>
		<lan><if>vtnet1</if></lan>
	</interfaces>
	<aliases>
		<alias><name>WEB</name><type>host</type><address>10.0.0.7</address></alias>
		<alias><name>PORTS</name><type>port</type><address>80 443</address></alias>
	</aliases>
	<filter>
		<rule>
			<tracker>100</tracker>
			<type>pass</type>
			<interface>lan</interface>
			<ipprotocol>inet</ipprotocol>
			<source><network>lan</network></source>
			<destination><any></any></destination>
			<sched>workhours</sched>
			<descr><![CDATA[LAN out]]></descr>
		</rule>
		<rule>
			<tracker>101</tracker>
			<type>pass</type>
			<interface>wan</interface>
			<ipprotocol>inet</ipprotocol>
			<protocol>tcp</protocol>
			<source><any></any></source>
			<destination><address>WEB</address><port>PORTS</port></destination>
			<associated-rule-id>nat_1</associated-rule-id>
			<descr><![CDATA[NAT web]]></descr>
		</rule>
		<rule>
			<tracker>102</tracker>
			<type>block</type>
			<interface>lan</interface>
			<ipprotocol>inet</ipprotocol>
			<source><any></any></source>
			<destination><address>192.0.2.0/24</address></destination>
			<descr><![CDATA[no docs net]]></descr>
		</rule>
		<rule>
			<tracker>103</tracker>
			<type>block</type>
			<interface>wan,lan</interface>
			<floating>yes</floating>
			<ipprotocol>inet46</ipprotocol>
			<source><any></any></source>
			<destination><any></any></destination>
			<descr><![CDATA[float]]></descr>
		</rule>
		<separator>
			<lan>
				<sep0><row>fr0</row><text>Outbound</text><color>bg-info</color><if>lan</if></sep0>
				<sep1><row>fr1</row><text>Blocks</text><color>bg-danger</color><if>lan</if></sep1>
			</lan>
		</separator>
	</filter>
</pfsense>
"#;

    fn config() -> Config {
        Config::parse(CONFIG).unwrap()
    }

    fn stamp() -> Stamp {
        Stamp {
            by: "Mudmap: alice@example.com".to_owned(),
            at_secs: 50,
        }
    }

    fn ssh_in() -> RuleFields {
        RuleFields {
            action: "pass".to_owned(),
            interface: "lan".to_owned(),
            ipprotocol: "inet".to_owned(),
            protocol: "tcp".to_owned(),
            source: EndpointFields {
                what: "10.0.0.0/8".to_owned(),
                not: false,
                port: String::new(),
            },
            destination: EndpointFields {
                what: "lanip".to_owned(),
                not: false,
                port: "22".to_owned(),
            },
            log: true,
            disabled: false,
            descr: "SSH from inside".to_owned(),
        }
    }

    /// The lan rules' trackers in order, and the lan separators' rows.
    fn lan(c: &Config) -> (Vec<String>, Vec<String>) {
        let rules = c
            .rules()
            .into_iter()
            .filter(|r| r.interface == "lan" && !r.floating)
            .map(|r| r.tracker)
            .collect();
        let rows = c
            .separators()
            .into_iter()
            .filter(|s| s.interface == "lan")
            .map(|s| s.row)
            .collect();
        (rules, rows)
    }

    #[test]
    fn a_rule_is_added_where_asked_and_separators_keep_their_rules() {
        let mut c = config();
        let tracker = c
            .add_rule(&ssh_in(), &Place::Before("102".to_owned()), &stamp())
            .unwrap();
        assert_eq!(tracker, "104", "past every tracker");
        let again = Config::parse(&c.to_xml()).unwrap();
        assert_eq!(lan(&again), (vec!["100".into(), "104".into(), "102".into()], vec!["fr0".into(), "fr1".into()]),
            "the new rule stands right above 102, below the 'Blocks' separator that stood above 102");
        let rule = again
            .rules()
            .into_iter()
            .find(|r| r.tracker == "104")
            .unwrap();
        assert_eq!(rule.protocol, "tcp");
        assert_eq!(rule.destination.network, "lanip");
        assert_eq!(rule.destination.port, "22");
        assert_eq!(rule.source.address, "10.0.0.0/8");
        assert!(rule.log && !rule.disabled);
        assert!(c
            .to_xml()
            .contains("<username><![CDATA[Mudmap: alice@example.com]]></username>"));

        let mut c = config();
        c.add_rule(&ssh_in(), &Place::Top, &stamp()).unwrap();
        assert_eq!(
            lan(&c),
            (
                vec!["104".into(), "100".into(), "102".into()],
                vec!["fr0".into(), "fr2".into()]
            )
        );
        let mut c = config();
        c.add_rule(&ssh_in(), &Place::Bottom, &stamp()).unwrap();
        assert_eq!(
            lan(&c),
            (
                vec!["100".into(), "102".into(), "104".into()],
                vec!["fr0".into(), "fr1".into()]
            )
        );
    }

    #[test]
    fn bad_rules_are_refused_with_the_field_named_and_nothing_changes() {
        let mut c = config();
        type Case = (fn(&mut RuleFields), &'static str);
        let cases: [Case; 7] = [
            (|f| f.action = "allow".into(), "Action \"allow\""),
            (|f| f.interface = "opt9".into(), "no such interface"),
            (|f| f.protocol = "gre".into(), "Protocol \"gre\""),
            (
                |f| f.source.what = "10.0.0.300".into(),
                "Source: \"10.0.0.300\"",
            ),
            (
                |f| f.destination.port = "70000".into(),
                "Destination port: \"70000\"",
            ),
            (|f| f.destination.port = "WEB".into(), "is not a port"),
            (
                |f| f.protocol = "icmp".into(),
                "only TCP and UDP rules have ports",
            ),
        ];
        for (change, expected) in cases {
            let mut f = ssh_in();
            change(&mut f);
            let e = c
                .add_rule(&f, &Place::Top, &stamp())
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{e}");
        }
        let e = c
            .add_rule(&ssh_in(), &Place::Before("101".into()), &stamp())
            .unwrap_err();
        assert!(e.to_string().contains("on another interface"), "{e}");
        assert_eq!(c, config());
    }

    #[test]
    fn an_update_keeps_what_the_editor_does_not_manage() {
        let mut c = config();
        let mut f = ssh_in();
        f.destination.port = "PORTS".into();
        f.disabled = true;
        c.update_rule("100", &f, &stamp()).unwrap();
        let rule = c.rules().into_iter().find(|r| r.tracker == "100").unwrap();
        assert_eq!(rule.destination.port, "PORTS");
        assert!(rule.disabled);
        assert!(
            c.to_xml().contains("<sched>workhours</sched>"),
            "the schedule stays"
        );
        assert!(
            !c.to_xml().contains("<created>"),
            "an update does not claim to have created it"
        );
        let mut other = ssh_in();
        other.interface = "wan".into();
        assert!(c
            .update_rule("100", &other, &stamp())
            .unwrap_err()
            .to_string()
            .contains("add it there"));
        assert!(matches!(
            c.update_rule("999", &ssh_in(), &stamp()),
            Err(EditError::NoSuchRule(_))
        ));
    }

    #[test]
    fn rules_move_are_disabled_and_deleted_by_tracker() {
        let mut c = config();
        // Separators stay where they stand and the rule moves: [Outbound] 102 100 [Blocks].
        c.move_rule("102", &Place::Top).unwrap();
        assert_eq!(
            lan(&c),
            (
                vec!["102".into(), "100".into()],
                vec!["fr0".into(), "fr2".into()]
            )
        );
        c.set_rule_disabled("100", true).unwrap();
        assert!(c.rules().iter().any(|r| r.tracker == "100" && r.disabled));
        c.set_rule_disabled("100", false).unwrap();
        assert!(c.rules().iter().all(|r| !r.disabled));
        let e = c.delete_rule("101").unwrap_err().to_string();
        assert!(e.contains("belongs to a NAT port forward"), "{e}");
        c.delete_rule("102").unwrap();
        assert_eq!(
            lan(&c),
            (vec!["100".into()], vec!["fr0".into(), "fr1".into()])
        );
        c.move_rule("103", &Place::Bottom).unwrap();
        assert!(c.rules().iter().any(|r| r.tracker == "103" && r.floating));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any sequence of moves keeps every rule (once) and every separator, and the result
        /// reads back the same.
        #[test]
        fn moves_keep_every_rule_and_separator(moves in proptest::collection::vec((0usize..4, 0usize..4), 0..8)) {
            let trackers = ["100", "101", "102", "103"];
            let mut c = config();
            for (which, to) in moves {
                let place = match to {
                    0 => Place::Top,
                    1 => Place::Bottom,
                    n => Place::Before(trackers[n].to_owned()),
                };
                let before = c.clone();
                if c.move_rule(trackers[which], &place).is_err() {
                    prop_assert_eq!(&c, &before, "a refused move changes nothing");
                }
            }
            let mut ours: Vec<String> = c.rules().into_iter().map(|r| r.tracker).collect();
            ours.sort();
            prop_assert_eq!(ours, trackers.map(str::to_owned).to_vec());
            prop_assert_eq!(c.separators().len(), 2);
            prop_assert_eq!(Config::parse(&c.to_xml()).unwrap(), c);
        }
    }
}
