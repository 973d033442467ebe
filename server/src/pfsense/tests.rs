//! The configuration model against a corpus (pfSense's factory default, the stub firewall's
//! configuration, simulated firewalls) and property tests: generated and mutated configurations
//! never panic the parser, and parse → serialise → parse gives an equal model. The number of cases
//! is capped for CI (`PROPTEST_CASES` raises it).

use proptest::prelude::*;

use super::model::Config;
use super::xml::{self, Element};

/// pfSense's factory `config.xml` (the pfsense-host fixture's).
const FACTORY: &str = include_str!("../../tests/fixtures/pfsense-host/default-config.xml");
/// The stub firewall's configuration: NAT, aliases, separators, gateways, packages, CDATA, non-ASCII.
const STUB: &str = include_str!("../../tests/fixtures/pfsense-root/cf/conf/config.xml");

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

/// Parse, serialise, parse again: the same model, and the serialised form is stable.
fn round_trips(text: &str) -> Config {
    let config = Config::parse(text).unwrap();
    let written = config.to_xml();
    let again = Config::parse(&written).unwrap();
    assert_eq!(again, config);
    assert_eq!(again.to_xml(), written);
    config
}

#[test]
fn pfsenses_factory_default_reads_and_round_trips() {
    let config = round_trips(FACTORY);
    assert_eq!(config.version(), "19.8");
    let system = config.system();
    assert_eq!(
        (system.hostname.as_str(), system.domain.as_str()),
        ("pfSense", "localdomain")
    );
    assert!(system.dns_servers.is_empty());
    let users = config.users();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].uid.as_str()),
        ("admin", "0")
    );
    assert_eq!(config.groups().len(), 2);
    let interfaces: Vec<String> = config.interfaces().into_iter().map(|i| i.name).collect();
    assert_eq!(interfaces, ["wan", "lan"]);
    let rules = config.rules();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(rules
        .iter()
        .all(|r| r.interface == "lan" && r.kind == "pass"));
}

#[test]
fn the_stub_firewall_reads_every_section() {
    let config = round_trips(STUB);
    let rules = config.rules();
    assert_eq!(rules.len(), 4);
    let ssh = rules.iter().find(|r| r.tracker == "1700000101").unwrap();
    assert_eq!(ssh.source.address, "mudmap_managers");
    assert_eq!(
        (
            ssh.destination.network.as_str(),
            ssh.destination.port.as_str()
        ),
        ("(self)", "22")
    );
    assert!(rules.iter().any(|r| r.kind == "block" && r.log));
    let aliases = config.aliases();
    assert_eq!(aliases[0].name, "mudmap_managers");
    assert_eq!(aliases[0].entries, ["203.0.113.5", "203.0.113.6"]);
    assert_eq!(aliases[0].details, ["primary", "standby"]);
    assert!(aliases[0].descr.contains("Büro & Rechenzentrum"));
    let forwards = config.port_forwards();
    assert_eq!(forwards.len(), 1);
    assert_eq!(
        (forwards[0].target.as_str(), forwards[0].local_port.as_str()),
        ("172.16.10.20", "443")
    );
    assert_eq!(config.outbound_nat().mode, "automatic");
    assert_eq!(config.gateways().len(), 5);
    assert!(!config.packages().is_empty());
    assert_eq!(config.interfaces().len(), 4);
    assert_eq!(config.system().dns_servers.len(), 2);
}

#[test]
fn simulated_firewalls_read_and_round_trip() {
    let mut largest = 0;
    // The first device of the fleet with 1,000+ rules (one in a hundred has), and 150 others.
    let large = (0..5_000)
        .find(|i| crate::sim::layout::Layout::new(1, *i).rules >= 1_000)
        .unwrap();
    for index in (0..150).chain([large]) {
        let model = crate::sim::model::DeviceModel::new(1, index);
        let config = round_trips(&model.config_xml());
        let layout = model.layout;
        // Every generated section reads back as generated (the 3 basic rules come first).
        assert_eq!(
            config.rules().len(),
            3 + layout.rules as usize,
            "device {index}"
        );
        assert_eq!(config.vlans().len(), layout.vlans as usize);
        assert_eq!(config.interfaces().len(), 3 + layout.vlans as usize);
        assert_eq!(config.gateways().len(), 1 + layout.gateways as usize);
        assert_eq!(config.static_routes().len(), layout.routes as usize);
        assert_eq!(config.port_forwards().len(), layout.forwards as usize);
        assert_eq!(config.outbound_nat().rules.len(), layout.outbound as usize);
        assert_eq!(config.one_to_one().len(), layout.one_to_one as usize);
        assert_eq!(config.separators().len(), layout.separators as usize);
        largest = largest.max(config.rules().len());
        assert!(
            super::diff::diff(&config, &config).is_empty(),
            "device {index}"
        );
    }
    assert!(
        largest > 1_000,
        "no simulated firewall with 1,000+ rules among 300"
    );
}

#[test]
fn not_a_pfsense_configuration_is_said_so() {
    let error = Config::parse("<opnsense><version>1</version></opnsense>").unwrap_err();
    assert!(
        error.to_string().contains("not a pfSense configuration"),
        "{error}"
    );
    assert!(Config::parse("<pfsense><system>").is_err());
}

/// What parsing does to a tree: whitespace-only text is empty, containers have no text.
fn normalised(mut element: Element) -> Element {
    if !element.children.is_empty() || (!element.cdata && element.text.trim().is_empty()) {
        element.text.clear();
        element.cdata = false;
    }
    element.children = element.children.into_iter().map(normalised).collect();
    element
}

fn name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_.-]{0,9}"
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        "[a-z &<>\"'\\]\\[\\t\\r\\n]{0,16}",
        "\\PC{0,12}",
        Just("]]>".to_owned()),
    ]
}

fn leaf() -> impl Strategy<Value = Element> {
    (
        name(),
        text(),
        any::<bool>(),
        prop::collection::vec((name(), text()), 0..3),
    )
        .prop_map(|(name, text, cdata, attrs)| {
            let mut attrs = attrs;
            attrs.sort();
            attrs.dedup_by(|a, b| a.0 == b.0);
            Element {
                name,
                attrs,
                text,
                cdata,
                children: Vec::new(),
            }
        })
}

fn tree() -> impl Strategy<Value = Element> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        (leaf(), prop::collection::vec(inner, 0..6)).prop_map(|(mut element, children)| {
            element.children = children;
            element
        })
    })
}

/// A configuration with `rules` firewall rules and `aliases` aliases of random content.
fn generated_config() -> impl Strategy<Value = (Element, Vec<(String, String, String)>, usize)> {
    (
        prop::collection::vec(
            (
                "[a-z]{2,6}[0-9]?",
                prop_oneof![Just("pass"), Just("block"), Just("reject")],
                "[ -~]{0,20}",
            ),
            0..40,
        ),
        0usize..20,
    )
        .prop_map(|(rules, aliases)| {
            let mut root = Element::new("pfsense");
            root.children.push(Element::leaf("version", "23.3"));
            let mut filter = Element::new("filter");
            let mut expected = Vec::new();
            for (i, (interface, kind, descr)) in rules.into_iter().enumerate() {
                let mut rule = Element::new("rule");
                rule.children
                    .push(Element::leaf("tracker", (1_000 + i).to_string()));
                rule.children.push(Element::leaf("type", kind));
                rule.children
                    .push(Element::leaf("interface", interface.clone()));
                let mut source = Element::new("source");
                source.children.push(Element::new("any"));
                rule.children.push(source);
                let mut d = Element::leaf("descr", descr.clone());
                d.cdata = true;
                rule.children.push(d);
                filter.children.push(rule);
                expected.push((interface, kind.to_owned(), descr));
            }
            root.children.push(filter);
            let mut list = Element::new("aliases");
            for i in 0..aliases {
                let mut alias = Element::new("alias");
                alias.children.push(Element::leaf("name", format!("a{i}")));
                alias.children.push(Element::leaf("type", "host"));
                alias
                    .children
                    .push(Element::leaf("address", format!("10.0.0.{i} 10.0.1.{i}")));
                list.children.push(alias);
            }
            root.children.push(list);
            (root, expected, aliases)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_tree_round_trips(tree in tree()) {
        let read = xml::parse(&tree.to_document()).unwrap();
        let expected = normalised(tree);
        prop_assert_eq!(&read, &expected);
        // And from then on the written form is stable.
        let written = read.to_document();
        prop_assert_eq!(xml::parse(&written).unwrap().to_document(), written);
    }

    #[test]
    fn generated_configurations_read_as_built((root, rules, aliases) in generated_config()) {
        let config = Config::parse(&root.to_document()).unwrap();
        let read: Vec<(String, String, String)> = config
            .rules()
            .into_iter()
            .map(|r| (r.interface, r.kind, r.descr))
            .collect();
        prop_assert_eq!(read, rules);
        prop_assert_eq!(config.aliases().len(), aliases);
        prop_assert!(config.rules().iter().all(|r| r.source.any));
    }

    #[test]
    fn mutated_configurations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..8, "\\PC{0,4}"), 1..6),
        pick in 0usize..3,
    ) {
        let sim = crate::sim::model::DeviceModel::new(3, 3).config_xml();
        let base = [FACTORY, STUB, sim.as_str()][pick];
        let mut chars: Vec<char> = base.chars().collect();
        for (at, remove, insert) in edits {
            let start = at.index(chars.len().max(1)).min(chars.len());
            let end = (start + remove).min(chars.len());
            chars.splice(start..end, insert.chars());
        }
        let mutated: String = chars.into_iter().collect();
        if let Ok(config) = Config::parse(&mutated) {
            // A diff against the original never panics either.
            let _ = super::diff::diff(&Config::parse(base).unwrap(), &config);
            // Whatever reads must read again the same way, and every section can be taken.
            prop_assert_eq!(Config::parse(&config.to_xml()).unwrap(), config.clone());
            let _ = (config.rules(), config.aliases(), config.port_forwards(), config.users(),
                     config.interfaces(), config.gateways(), config.separators(), config.system());
        }
    }
}
