//! Facts for fleet-wide search, read from a configuration when its backup is stored: one row per
//! (thing, field, value) — a rule's action, each address its source stands for (aliases
//! resolved), each port range its destination covers (port aliases resolved), an alias's name and
//! entries, users, packages, the pfSense version as a comparable number. A device's facts are
//! replaced whenever a backup brings a configuration they were not read from — stored as one
//! [`super::record`] per device, numbered by the organisation's sequence so every server's
//! [`super::index`] sees what changed — so search always answers from each device's newest
//! configuration.

use std::collections::{BTreeSet, HashMap};

use sqlx::{Any, Transaction};

use app::search::{port_range, version_parts};

use crate::pfsense::diff::{rule_name, rule_summary};
use crate::pfsense::model::{Alias, Endpoint};
use crate::pfsense::Config;
use crate::store::{now_ms, StoreError};

/// How deep nested aliases are followed, and how many entries one reference may resolve to.
const ALIAS_DEPTH: usize = 4;
const ALIAS_ENTRIES: usize = 512;
/// Longest text fact kept (bytes).
const MAX_VALUE_BYTES: usize = 256;

/// One searchable fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub entity: String,
    pub field: &'static str,
    /// Lowercased text ('' for numeric facts).
    pub value: String,
    /// A numeric range: ports, or a version as one number.
    pub range: Option<(i64, i64)>,
}

/// A thing results name: "rule:4" in section rules, with its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub entity: String,
    pub section: &'static str,
    pub label: String,
}

/// Everything searchable in one configuration; `version` is the device's pfSense version.
pub fn extract(config: &Config, version: Option<&str>) -> (Vec<Fact>, Vec<Entity>) {
    let mut out = Facts::default();
    let system = config.system();
    out.entity(
        "system",
        "system",
        format!("pfSense {}", version.unwrap_or("(unknown)")),
    );
    if let Some((key, _)) = version.and_then(version_parts) {
        out.number("system", "pfsense.version", key, key);
    }
    out.text("system", "system.hostname", &system.hostname);

    let aliases: HashMap<String, Alias> = config
        .aliases()
        .into_iter()
        .map(|a| (a.name.clone(), a))
        .collect();
    for alias in aliases.values() {
        let entity = format!("alias:{}", alias.name);
        let shown: Vec<&str> = alias.entries.iter().take(8).map(String::as_str).collect();
        let more = if alias.entries.len() > 8 { " …" } else { "" };
        out.entity(
            &entity,
            "aliases",
            format!(
                "alias {} ({}): {}{more}",
                alias.name,
                alias.kind,
                shown.join(" ")
            ),
        );
        out.text(&entity, "alias.name", &alias.name);
        out.text(&entity, "alias.type", &alias.kind);
        for entry in resolve(&aliases, &alias.name) {
            out.text(&entity, "alias.entry", &entry);
        }
    }

    for rule in config.rules() {
        let entity = format!("rule:{}", rule.index);
        out.entity(
            &entity,
            "rules",
            format!("{}: {}", rule_name(&rule), rule_summary(&rule)),
        );
        out.text(
            &entity,
            "rule.action",
            if rule.kind.is_empty() {
                "pass"
            } else {
                &rule.kind
            },
        );
        for interface in rule.interface.split(',').filter(|i| !i.is_empty()) {
            out.text(&entity, "rule.interface", interface);
        }
        if rule.floating {
            out.text(&entity, "rule.interface", "floating");
        }
        let protocol = if rule.protocol.is_empty() {
            "any"
        } else {
            &rule.protocol
        };
        out.text(&entity, "rule.protocol", protocol);
        endpoint_facts(&mut out, &aliases, &entity, "rule.source", &rule.source);
        endpoint_facts(
            &mut out,
            &aliases,
            &entity,
            "rule.destination",
            &rule.destination,
        );
        let ported = matches!(protocol, "tcp" | "udp" | "tcp/udp" | "any");
        if ported {
            for (lo, hi) in port_ranges(&aliases, &rule.destination.port) {
                out.number(&entity, "rule.port", lo, hi);
            }
        }
        out.text(&entity, "rule.description", &rule.descr);
        out.text(
            &entity,
            "rule.disabled",
            if rule.disabled { "yes" } else { "no" },
        );
    }

    for forward in config.port_forwards() {
        let entity = format!("nat:{}", forward.index);
        let label = format!(
            "port forward on {}: {} port {} → {} port {}{}",
            forward.interface.to_uppercase(),
            if forward.protocol.is_empty() {
                "any"
            } else {
                &forward.protocol
            },
            if forward.destination.port.is_empty() {
                "any"
            } else {
                &forward.destination.port
            },
            forward.target,
            if forward.local_port.is_empty() {
                "(same)"
            } else {
                &forward.local_port
            },
            if forward.descr.is_empty() {
                String::new()
            } else {
                format!(" ({})", forward.descr)
            }
        );
        out.entity(&entity, "nat", label);
        out.text(&entity, "nat.interface", &forward.interface);
        out.text(&entity, "nat.target", &forward.target);
        for target in resolve(&aliases, &forward.target) {
            out.text(&entity, "nat.target", &target);
        }
        for (lo, hi) in port_ranges(&aliases, &forward.destination.port) {
            out.number(&entity, "nat.port", lo, hi);
        }
        out.text(&entity, "nat.description", &forward.descr);
    }

    for user in config.users() {
        let entity = format!("user:{}", user.name);
        out.entity(
            &entity,
            "users",
            format!(
                "user {}{}{}",
                user.name,
                if user.descr.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", user.descr)
                },
                if user.disabled { ", disabled" } else { "" }
            ),
        );
        out.text(&entity, "user.name", &user.name);
        for group in &user.groups {
            out.text(&entity, "user.group", group);
        }
    }

    for package in config.packages() {
        let entity = format!("package:{}", package.name);
        out.entity(
            &entity,
            "packages",
            format!("package {} {}", package.name, package.version),
        );
        out.text(&entity, "package.name", &package.name);
        out.text(&entity, "package.version", &package.version);
    }

    for interface in config.interfaces() {
        let entity = format!("interface:{}", interface.name);
        out.entity(
            &entity,
            "interfaces",
            format!(
                "interface {} ({}) {}{}",
                interface.name.to_uppercase(),
                interface.descr,
                interface.ipaddr,
                if interface.subnet.is_empty() {
                    String::new()
                } else {
                    format!("/{}", interface.subnet)
                }
            ),
        );
        out.text(&entity, "interface.name", &interface.name);
        out.text(&entity, "interface.description", &interface.descr);
        out.text(&entity, "interface.address", &interface.ipaddr);
    }
    (out.facts, out.entities)
}

#[derive(Default)]
struct Facts {
    facts: Vec<Fact>,
    entities: Vec<Entity>,
    seen: BTreeSet<(String, &'static str, String)>,
}

impl Facts {
    fn entity(&mut self, entity: &str, section: &'static str, label: String) {
        self.entities.push(Entity {
            entity: entity.to_owned(),
            section,
            label,
        });
    }

    fn text(&mut self, entity: &str, field: &'static str, value: &str) {
        let mut value = value.trim().to_lowercase();
        // Records stay small, and a search value is at most 200 characters anyway.
        if value.len() > MAX_VALUE_BYTES {
            let mut cut = MAX_VALUE_BYTES;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
        }
        if value.is_empty() || !self.seen.insert((entity.to_owned(), field, value.clone())) {
            return;
        }
        self.facts.push(Fact {
            entity: entity.to_owned(),
            field,
            value,
            range: None,
        });
    }

    fn number(&mut self, entity: &str, field: &'static str, lo: i64, hi: i64) {
        if !self
            .seen
            .insert((entity.to_owned(), field, format!("{lo}-{hi}")))
        {
            return;
        }
        self.facts.push(Fact {
            entity: entity.to_owned(),
            field,
            value: String::new(),
            range: Some((lo, hi)),
        });
    }
}

/// A rule's source or destination as facts: "any", the interface network, the address or alias
/// name, and every address an alias stands for.
fn endpoint_facts(
    out: &mut Facts,
    aliases: &HashMap<String, Alias>,
    entity: &str,
    field: &'static str,
    endpoint: &Endpoint,
) {
    if endpoint.any || (endpoint.network.is_empty() && endpoint.address.is_empty()) {
        out.text(entity, field, "any");
        return;
    }
    out.text(entity, field, &endpoint.network);
    out.text(entity, field, &endpoint.address);
    for entry in resolve(aliases, &endpoint.address) {
        out.text(entity, field, &entry);
    }
}

/// The entries `name` stands for when it is an alias (nested aliases followed), else nothing.
fn resolve(aliases: &HashMap<String, Alias>, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(name.to_owned(), 0usize)];
    let mut visited = BTreeSet::new();
    while let Some((name, depth)) = stack.pop() {
        let Some(alias) = aliases.get(&name) else {
            continue;
        };
        if depth >= ALIAS_DEPTH || !visited.insert(name) {
            continue;
        }
        for entry in &alias.entries {
            if found.len() >= ALIAS_ENTRIES {
                return found;
            }
            if aliases.contains_key(entry) {
                stack.push((entry.clone(), depth + 1));
            } else {
                found.push(entry.clone());
            }
        }
    }
    found
}

/// The port ranges a port field covers: empty is every port; "443", "1000-2000", "1000:2000";
/// a port alias stands for its entries.
fn port_ranges(aliases: &HashMap<String, Alias>, port: &str) -> Vec<(i64, i64)> {
    let port = port.trim();
    if port.is_empty() {
        return vec![(0, 65_535)];
    }
    let entries = if aliases.contains_key(port) {
        resolve(aliases, port)
    } else {
        vec![port.to_owned()]
    };
    entries.iter().filter_map(|e| port_range(e)).collect()
}

/// Replace a device's facts in `tx` with those of `config` (read from `revision_id`), unless they
/// were already read from a configuration with `config_hash`. A configuration that could not be
/// parsed (`None`) has no facts, but is recorded as read. Returns the facts written (0 when they
/// were current).
pub async fn refresh(
    tx: &mut Transaction<'static, Any>,
    org_id: &str,
    device_id: &str,
    revision_id: &str,
    config_hash: &str,
    config: Option<&Config>,
) -> Result<usize, StoreError> {
    let current: Option<(String,)> =
        sqlx::query_as("SELECT config_hash FROM config_fact_sources WHERE device_id = $1")
            .bind(device_id)
            .fetch_optional(&mut **tx)
            .await?;
    if current.is_some_and(|(hash,)| hash == config_hash) {
        return Ok(0);
    }
    let version: Option<(Option<String>,)> =
        sqlx::query_as("SELECT pfsense_version FROM devices WHERE id = $1")
            .bind(device_id)
            .fetch_optional(&mut **tx)
            .await?;
    let version = version.and_then(|(v,)| v);
    let (facts, entities) = config
        .map(|config| extract(config, version.as_deref()))
        .unwrap_or_default();
    sqlx::query("DELETE FROM config_entities WHERE device_id = $1")
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    for chunk in entities.chunks(400) {
        let mut sql =
            String::from("INSERT INTO config_entities (device_id, entity, section, label) VALUES ");
        for n in 0..chunk.len() {
            let b = n * 3;
            if n > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("($1, ${}, ${}, ${})", b + 2, b + 3, b + 4));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(device_id);
        for entity in chunk {
            query = query
                .bind(&entity.entity)
                .bind(entity.section)
                .bind(&entity.label);
        }
        query.execute(&mut **tx).await?;
    }
    // The organisation's next sequence number: the row lock orders concurrent writers, so a
    // reader that has seen number n has seen every record numbered below it.
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO search_generations (org_id, seq) VALUES ($1, 1) ON CONFLICT (org_id) \
         DO UPDATE SET seq = search_generations.seq + 1 RETURNING seq",
    )
    .bind(org_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO config_fact_sources (device_id, org_id, revision_id, config_hash, read_at, seq, facts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id) DO UPDATE SET \
         revision_id = excluded.revision_id, config_hash = excluded.config_hash, \
         read_at = excluded.read_at, seq = excluded.seq, facts = excluded.facts",
    )
    .bind(device_id)
    .bind(org_id)
    .bind(revision_id)
    .bind(config_hash)
    .bind(now_ms())
    .bind(seq)
    .bind(super::record::encode(&facts))
    .execute(&mut **tx)
    .await?;
    Ok(facts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"<pfsense><version>23.3</version>
<system><hostname>fw1</hostname><user><name>bob</name><groupname>admins</groupname></user></system>
<aliases>
  <alias><name>WEB</name><type>host</type><address>10.0.0.7 10.0.0.8 INNER</address></alias>
  <alias><name>INNER</name><type>host</type><address>10.0.0.9</address></alias>
  <alias><name>PORTS</name><type>port</type><address>80 8000:8080</address></alias>
  <alias><name>LOOP</name><type>host</type><address>LOOP</address></alias>
</aliases>
<filter>
  <rule><type>pass</type><interface>wan</interface><protocol>tcp</protocol><source><any/></source><destination><address>WEB</address><port>PORTS</port></destination><descr>web</descr></rule>
  <rule><type>block</type><interface>lan,opt1</interface><floating>yes</floating><protocol>icmp</protocol><source><network>lan</network></source><destination><any/></destination></rule>
  <rule><type>pass</type><interface>lan</interface><source><network>lan</network></source><destination><any/></destination></rule>
</filter>
<installedpackages><package><name>pfBlockerNG</name><version>3.2.0</version></package></installedpackages>
</pfsense>"#;

    fn facts_of(facts: &[Fact], entity: &str, field: &str) -> Vec<String> {
        facts
            .iter()
            .filter(|f| f.entity == entity && f.field == field)
            .map(|f| match f.range {
                Some((lo, hi)) => format!("{lo}-{hi}"),
                None => f.value.clone(),
            })
            .collect()
    }

    #[test]
    fn aliases_and_port_ranges_are_resolved_into_facts() {
        let config = Config::parse(CONFIG).unwrap();
        let (facts, entities) = extract(&config, Some("2.7.2-RELEASE"));
        assert_eq!(
            facts_of(&facts, "system", "pfsense.version"),
            ["2007002-2007002"]
        );
        assert_eq!(
            facts_of(&facts, "rule:0", "rule.destination"),
            ["web", "10.0.0.7", "10.0.0.8", "10.0.0.9"],
            "nested aliases are followed"
        );
        assert_eq!(facts_of(&facts, "rule:0", "rule.source"), ["any"]);
        assert_eq!(
            facts_of(&facts, "rule:0", "rule.port"),
            ["80-80", "8000-8080"]
        );
        assert!(
            facts_of(&facts, "rule:1", "rule.port").is_empty(),
            "icmp has no ports"
        );
        assert_eq!(
            facts_of(&facts, "rule:1", "rule.interface"),
            ["lan", "opt1", "floating"]
        );
        assert_eq!(
            facts_of(&facts, "rule:2", "rule.port"),
            ["0-65535"],
            "no port is every port"
        );
        assert_eq!(facts_of(&facts, "rule:2", "rule.protocol"), ["any"]);
        assert_eq!(
            facts_of(&facts, "alias:LOOP", "alias.entry"),
            Vec::<String>::new()
        );
        assert_eq!(facts_of(&facts, "user:bob", "user.name"), ["bob"]);
        assert_eq!(
            facts_of(&facts, "package:pfBlockerNG", "package.name"),
            ["pfblockerng"]
        );
        let rule = entities.iter().find(|e| e.entity == "rule:0").unwrap();
        assert_eq!(rule.section, "rules");
        assert!(rule.label.contains("rule on WAN (web)"), "{}", rule.label);
    }
}
