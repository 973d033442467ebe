//! Aliases, as pfSense's Firewall > Aliases validates them: names of letters, digits and `_` (at
//! most 31, not only digits, not a name pfSense reserves), entries checked by the alias's type,
//! renames that follow every reference (rules, NAT, other aliases), and no deletion of an alias in
//! use — the refusal lists who uses it.

use super::{is_hostname, is_ip, is_network, EditError};
use crate::pfsense::model::Config;
use crate::pfsense::xml::Element;

/// The kinds of alias pfSense has.
pub const ALIAS_TYPES: [&str; 5] = ["host", "network", "port", "url", "urltable"];

/// Names pfSense keeps for itself (its built-in tables and keywords).
const RESERVED: [&str; 12] = [
    "any",
    "self",
    "lan",
    "wan",
    "pass",
    "block",
    "reject",
    "in",
    "out",
    "all",
    "virusprot",
    "sshguard",
];

/// An alias as an editor sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasFields {
    pub name: String,
    pub kind: String,
    /// Entries in order, each with its description ('' for none).
    pub entries: Vec<(String, String)>,
    pub descr: String,
}

/// Leaves of rules and NAT entries that may name an alias.
const REFERENCE_LEAVES: [&str; 8] = [
    "address",
    "network",
    "port",
    "target",
    "local-port",
    "sourceport",
    "dstport",
    "external",
];

fn check_name(name: &str) -> Result<(), EditError> {
    let fail = |why: &str| Err(EditError::Invalid(format!("Alias name \"{name}\": {why}")));
    if name.is_empty() {
        return fail("enter a name");
    }
    if name.chars().count() > 31 {
        return fail("at most 31 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return fail("use only letters, digits and _");
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return fail("a name cannot be only digits (it would read as a port)");
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) || name.starts_with("pkg_") {
        return fail("pfSense reserves that name");
    }
    Ok(())
}

fn is_port(text: &str) -> bool {
    super::port_span(text, ':').is_some()
}

impl Config {
    /// The `<aliases>` element, made if absent (after `<filter>`'s neighbours, at the end).
    fn aliases_element(&mut self) -> &mut Element {
        let at = match self.root.children.iter().position(|c| c.name == "aliases") {
            Some(at) => at,
            None => {
                self.root.children.push(Element::new("aliases"));
                self.root.children.len() - 1
            }
        };
        &mut self.root.children[at]
    }

    fn alias_position(&self, name: &str) -> Option<usize> {
        self.root
            .child("aliases")?
            .children
            .iter()
            .position(|a| a.name == "alias" && a.text_of("name") == name)
    }

    fn check_alias(&self, fields: &AliasFields, replacing: Option<&str>) -> Result<(), EditError> {
        check_name(&fields.name)?;
        if !ALIAS_TYPES.contains(&fields.kind.as_str()) {
            return Err(EditError::Invalid(format!(
                "Alias type \"{}\": choose one of {}.",
                fields.kind,
                ALIAS_TYPES.join(", ")
            )));
        }
        let taken = self.aliases().into_iter().any(|a| {
            a.name.eq_ignore_ascii_case(&fields.name) && Some(a.name.as_str()) != replacing
        });
        if taken {
            return Err(EditError::AliasExists(fields.name.clone()));
        }
        if fields.entries.is_empty() && !matches!(fields.kind.as_str(), "url" | "urltable") {
            return Err(EditError::Invalid(format!(
                "Alias \"{}\": add at least one entry.",
                fields.name
            )));
        }
        let names: Vec<String> = self.aliases().into_iter().map(|a| a.name).collect();
        for (n, (entry, detail)) in fields.entries.iter().enumerate() {
            let nested = names.iter().any(|a| a == entry) && Some(entry.as_str()) != replacing;
            let ok = nested
                || match fields.kind.as_str() {
                    "host" => is_ip(entry) || is_hostname(entry),
                    "network" => is_network(entry) || is_hostname(entry),
                    "port" => is_port(entry),
                    _ => entry.starts_with("https://") || entry.starts_with("http://"),
                };
            if !ok || entry.contains(char::is_whitespace) {
                let expected = match fields.kind.as_str() {
                    "host" => "an IP address, a host name or another alias",
                    "network" => "a network such as 10.0.0.0/24, a host or another alias",
                    "port" => "a port or a range such as 8000:8080, or another port alias",
                    _ => "an http:// or https:// address",
                };
                return Err(EditError::Invalid(format!(
                    "Alias \"{}\", entry {}: \"{entry}\" is not {expected}.",
                    fields.name,
                    n + 1
                )));
            }
            if detail.contains("||") {
                return Err(EditError::Invalid(format!(
                    "Alias \"{}\", entry {}: a description cannot contain \"||\".",
                    fields.name,
                    n + 1
                )));
            }
        }
        Ok(())
    }

    fn write_alias(element: &mut Element, fields: &AliasFields) {
        let set = |element: &mut Element, name: &str, text: String, cdata: bool| match element
            .children
            .iter_mut()
            .find(|c| c.name == name)
        {
            Some(child) => {
                child.text = text;
                child.children.clear();
                child.cdata = cdata;
            }
            None => {
                let mut leaf = Element::leaf(name, text);
                leaf.cdata = cdata;
                element.children.push(leaf);
            }
        };
        set(element, "name", fields.name.clone(), false);
        set(element, "type", fields.kind.clone(), false);
        let addresses: Vec<&str> = fields.entries.iter().map(|(e, _)| e.as_str()).collect();
        set(element, "address", addresses.join(" "), false);
        set(element, "descr", fields.descr.clone(), true);
        let details: Vec<&str> = fields.entries.iter().map(|(_, d)| d.as_str()).collect();
        set(element, "detail", details.join("||"), true);
    }

    /// Add an alias.
    pub fn add_alias(&mut self, fields: &AliasFields) -> Result<(), EditError> {
        self.check_alias(fields, None)?;
        let mut alias = Element::new("alias");
        Self::write_alias(&mut alias, fields);
        self.aliases_element().children.push(alias);
        Ok(())
    }

    /// Change an alias's type, entries and description; a new name is a rename (references
    /// follow).
    pub fn update_alias(&mut self, name: &str, fields: &AliasFields) -> Result<(), EditError> {
        let at = self
            .alias_position(name)
            .ok_or_else(|| EditError::NoSuchAlias(name.to_owned()))?;
        self.check_alias(fields, Some(name))?;
        if fields.name != name {
            self.rename_references(name, &fields.name);
        }
        let aliases = self.aliases_element();
        Self::write_alias(&mut aliases.children[at], fields);
        Ok(())
    }

    /// Rename an alias and every reference to it; the references renamed are counted.
    pub fn rename_alias(&mut self, name: &str, new_name: &str) -> Result<usize, EditError> {
        let at = self
            .alias_position(name)
            .ok_or_else(|| EditError::NoSuchAlias(name.to_owned()))?;
        check_name(new_name)?;
        if self
            .aliases()
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case(new_name) && a.name != name)
        {
            return Err(EditError::AliasExists(new_name.to_owned()));
        }
        let count = self.alias_users(name).len();
        self.rename_references(name, new_name);
        let aliases = self.aliases_element();
        if let Some(leaf) = aliases.children[at]
            .children
            .iter_mut()
            .find(|c| c.name == "name")
        {
            leaf.text = new_name.to_owned();
        }
        Ok(count)
    }

    /// Delete an alias nothing uses.
    pub fn delete_alias(&mut self, name: &str) -> Result<(), EditError> {
        let at = self
            .alias_position(name)
            .ok_or_else(|| EditError::NoSuchAlias(name.to_owned()))?;
        let users = self.alias_users(name);
        if !users.is_empty() {
            return Err(EditError::AliasInUse {
                name: name.to_owned(),
                users,
            });
        }
        self.aliases_element().children.remove(at);
        Ok(())
    }

    /// Who uses the alias `name`, in people's words: rules, NAT entries, other aliases.
    pub fn alias_users(&self, name: &str) -> Vec<String> {
        let mut users = Vec::new();
        for (what, path, item) in Self::referring() {
            for (n, element) in self
                .root
                .at(path)
                .into_iter()
                .flat_map(|s| s.all(item))
                .enumerate()
            {
                if refers(element, name) {
                    let descr = element.text_of("descr");
                    users.push(if descr.is_empty() {
                        format!("{what} {}", n + 1)
                    } else {
                        format!("{what} {} ({descr})", n + 1)
                    });
                }
            }
        }
        for alias in self.aliases() {
            if alias.name != name && alias.entries.iter().any(|e| e == name) {
                users.push(format!("alias {}", alias.name));
            }
        }
        users
    }

    /// Where references live: (words, section path, item name).
    fn referring() -> [(&'static str, &'static str, &'static str); 4] {
        [
            ("firewall rule", "filter", "rule"),
            ("port forward", "nat", "rule"),
            ("outbound NAT rule", "nat/outbound", "rule"),
            ("1:1 NAT entry", "nat", "onetoone"),
        ]
    }

    fn rename_references(&mut self, from: &str, to: &str) {
        for (_, path, item) in Self::referring() {
            let mut node = Some(&mut self.root);
            for part in path.split('/') {
                node = node.and_then(|n| n.children.iter_mut().find(|c| c.name == part));
            }
            if let Some(section) = node {
                for element in section.children.iter_mut().filter(|c| c.name == item) {
                    rename_in(element, from, to);
                }
            }
        }
        if let Some(aliases) = self.root.children.iter_mut().find(|c| c.name == "aliases") {
            for alias in aliases.children.iter_mut().filter(|c| c.name == "alias") {
                if let Some(address) = alias.children.iter_mut().find(|c| c.name == "address") {
                    let renamed: Vec<&str> = address
                        .text
                        .split_whitespace()
                        .map(|e| if e == from { to } else { e })
                        .collect();
                    let renamed = renamed.join(" ");
                    if renamed
                        .split_whitespace()
                        .ne(address.text.split_whitespace())
                    {
                        address.text = renamed;
                    }
                }
            }
        }
    }
}

/// Whether a leaf below `element` that may name an alias names `name`.
fn refers(element: &Element, name: &str) -> bool {
    element.children.iter().any(|c| {
        (c.children.is_empty() && REFERENCE_LEAVES.contains(&c.name.as_str()) && c.text == name)
            || refers(c, name)
    })
}

fn rename_in(element: &mut Element, from: &str, to: &str) {
    for child in &mut element.children {
        if child.children.is_empty() {
            if REFERENCE_LEAVES.contains(&child.name.as_str()) && child.text == from {
                child.text = to.to_owned();
            }
        } else {
            rename_in(child, from, to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONFIG: &str = r#"<?xml version="1.0"?>
<pfsense>
	<version>23.3</version>
	<aliases>
		<alias>
			<name>WEB</name>
			<type>host</type>
			<address>10.0.0.7 INNER</address>
			<descr><![CDATA[Web servers]]></descr>
			<detail><![CDATA[front||inner ones]]></detail>
		</alias>
		<alias>
			<name>INNER</name>
			<type>host</type>
			<address>10.0.0.9</address>
			<descr></descr>
			<detail></detail>
		</alias>
		<alias>
			<name>PORTS</name>
			<type>port</type>
			<address>80 443</address>
			<descr></descr>
			<detail></detail>
		</alias>
		<alias>
			<name>SPARE</name>
			<type>network</type>
			<address>192.0.2.0/24</address>
			<descr></descr>
			<detail></detail>
		</alias>
	</aliases>
	<filter>
		<rule>
			<type>pass</type>
			<interface>wan</interface>
			<source><any></any></source>
			<destination><address>WEB</address><port>PORTS</port></destination>
			<descr><![CDATA[web in]]></descr>
		</rule>
	</filter>
	<nat>
		<rule>
			<interface>wan</interface>
			<target>WEB</target>
			<local-port>443</local-port>
			<destination><any></any><port>443</port></destination>
		</rule>
	</nat>
</pfsense>
"#;

    fn config() -> Config {
        Config::parse(CONFIG).unwrap()
    }

    fn fields(name: &str, kind: &str, entries: &[&str]) -> AliasFields {
        AliasFields {
            name: name.to_owned(),
            kind: kind.to_owned(),
            entries: entries
                .iter()
                .map(|e| ((*e).to_owned(), String::new()))
                .collect(),
            descr: String::new(),
        }
    }

    #[test]
    fn an_added_alias_reads_back_and_nothing_else_moves() {
        let mut c = config();
        let mut new = fields("MAIL", "host", &["10.0.0.25", "mail.example.com", "INNER"]);
        new.entries[0].1 = "primary".to_owned();
        new.descr = "Mail & relays".to_owned();
        c.add_alias(&new).unwrap();
        let again = Config::parse(&c.to_xml()).unwrap();
        let mail = again
            .aliases()
            .into_iter()
            .find(|a| a.name == "MAIL")
            .unwrap();
        assert_eq!(mail.entries, ["10.0.0.25", "mail.example.com", "INNER"]);
        assert_eq!(mail.details, ["primary", "", ""]);
        assert_eq!(mail.descr, "Mail & relays");
        // Everything before it is as it was, byte for byte.
        let before = CONFIG.split("\t</aliases>").next().unwrap();
        assert!(c.to_xml().starts_with(before), "{}", c.to_xml());
        assert_eq!(again.rules(), config().rules());
    }

    #[test]
    fn bad_aliases_are_refused_with_the_field_named() {
        let mut c = config();
        let cases = [
            (fields("web", "host", &["10.0.0.1"]), "already exists"),
            (
                fields("bad name", "host", &["10.0.0.1"]),
                "use only letters",
            ),
            (fields("1234", "port", &["22"]), "only digits"),
            (fields("lan", "host", &["10.0.0.1"]), "reserves"),
            (fields("X", "hosts", &["10.0.0.1"]), "choose one of"),
            (fields("X", "host", &[]), "at least one entry"),
            (fields("X", "network", &["10.0.0.0/33"]), "entry 1"),
            (
                fields("X", "port", &["22", "70000"]),
                "entry 2: \"70000\" is not a port",
            ),
            (fields("X", "url", &["ftp://x"]), "http:// or https://"),
        ];
        for (f, expected) in cases {
            let e = c.add_alias(&f).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}");
        }
        assert_eq!(c, config(), "a refused edit changes nothing");
    }

    #[test]
    fn a_rename_follows_every_reference() {
        let mut c = config();
        assert_eq!(c.rename_alias("WEB", "WEBSERVERS").unwrap(), 2);
        assert_eq!(c.rename_alias("INNER", "BACKEND").unwrap(), 1);
        let again = Config::parse(&c.to_xml()).unwrap();
        assert_eq!(again.rules()[0].destination.address, "WEBSERVERS");
        assert_eq!(again.port_forwards()[0].target, "WEBSERVERS");
        let web = again
            .aliases()
            .into_iter()
            .find(|a| a.name == "WEBSERVERS")
            .unwrap();
        assert_eq!(web.entries, ["10.0.0.7", "BACKEND"]);
        assert_eq!(
            web.details,
            ["front", "inner ones"],
            "descriptions stay with their entries"
        );
        assert!(matches!(
            c.rename_alias("PORTS", "backend"),
            Err(EditError::AliasExists(_))
        ));
        assert!(matches!(
            c.rename_alias("NOPE", "X"),
            Err(EditError::NoSuchAlias(_))
        ));
    }

    #[test]
    fn an_alias_in_use_is_not_deleted_and_the_users_are_named() {
        let mut c = config();
        let e = c.delete_alias("WEB").unwrap_err();
        assert_eq!(
            e.to_string(),
            "The alias \"WEB\" is in use: firewall rule 1 (web in); port forward 1. Change those first."
        );
        let e = c.delete_alias("INNER").unwrap_err().to_string();
        assert!(e.contains("alias WEB"), "{e}");
        c.delete_alias("SPARE").unwrap();
        assert!(c.aliases().iter().all(|a| a.name != "SPARE"));
        assert_eq!(c.aliases().len(), 3);
    }

    #[test]
    fn an_update_changes_entries_and_may_rename() {
        let mut c = config();
        let mut f = fields("PORTS_WEB", "port", &["80", "443", "8000:8080"]);
        f.descr = "web ports".to_owned();
        c.update_alias("PORTS", &f).unwrap();
        let again = Config::parse(&c.to_xml()).unwrap();
        assert_eq!(again.rules()[0].destination.port, "PORTS_WEB");
        let ports = again
            .aliases()
            .into_iter()
            .find(|a| a.name == "PORTS_WEB")
            .unwrap();
        assert_eq!(ports.entries, ["80", "443", "8000:8080"]);
        assert!(matches!(
            c.update_alias("PORTS", &f),
            Err(EditError::NoSuchAlias(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Renaming there and back, or adding then deleting, gives the configuration back exactly.
        #[test]
        fn edits_undo_exactly(name in "[A-Z][A-Z0-9_]{0,20}", which in 0usize..4) {
            let original = config();
            let existing = ["WEB", "INNER", "PORTS", "SPARE"][which];
            prop_assume!(original.aliases().iter().all(|a| !a.name.eq_ignore_ascii_case(&name)));
            prop_assume!(check_name(&name).is_ok());
            let mut c = original.clone();
            c.rename_alias(existing, &name).unwrap();
            prop_assert!(c.alias_users(existing).is_empty());
            c.rename_alias(&name, existing).unwrap();
            prop_assert_eq!(c.to_xml(), original.to_xml());
            let mut c = original.clone();
            c.add_alias(&fields(&name, "host", &["10.1.2.3"])).unwrap();
            c.delete_alias(&name).unwrap();
            prop_assert_eq!(Config::parse(&c.to_xml()).unwrap().aliases(), original.aliases());
        }
    }
}
