//! Change sets (issue 13, decision 0013): a titled, ordered list of [`Operation`]s, previewed and
//! applied per device. This module holds what does not need a firewall: the operations, applying
//! them to a device's configuration, and the preview — each operation's outcome in words, then the
//! configuration diff (in words and as raw XML) the whole set produces. An operation that cannot
//! apply to a device is a conflict named before anything is sent.

pub mod preview;
pub mod service;

use serde::{Deserialize, Serialize};

use crate::pfsense::edit::{AliasFields, EditError, Place, RuleFields, Stamp};
use crate::pfsense::Config;

/// One edit of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    AliasAdd { alias: AliasSpec },
    AliasUpdate { name: String, alias: AliasSpec },
    AliasRename { name: String, new_name: String },
    AliasDelete { name: String },
    RuleAdd { rule: RuleSpec, place: PlaceSpec },
    RuleUpdate { tracker: String, rule: RuleSpec },
    RuleMove { tracker: String, place: PlaceSpec },
    RuleEnable { tracker: String, enabled: bool },
    RuleDelete { tracker: String },
}

/// An alias as the wire carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasSpec {
    pub name: String,
    pub kind: String,
    /// Entries, each with its description ('' for none).
    pub entries: Vec<(String, String)>,
    #[serde(default)]
    pub descr: String,
}

/// A rule as the wire carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub action: String,
    pub interface: String,
    #[serde(default = "inet")]
    pub ipprotocol: String,
    #[serde(default = "any")]
    pub protocol: String,
    pub source: EndpointSpec,
    pub destination: EndpointSpec,
    #[serde(default)]
    pub log: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub descr: String,
}

fn inet() -> String {
    "inet".to_owned()
}

fn any() -> String {
    "any".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    pub what: String,
    #[serde(default)]
    pub not: bool,
    #[serde(default)]
    pub port: String,
}

/// Where a rule goes: "top", "bottom", or above the rule with a tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceSpec {
    Top,
    Bottom,
    Before(String),
}

impl From<&AliasSpec> for AliasFields {
    fn from(a: &AliasSpec) -> Self {
        Self {
            name: a.name.clone(),
            kind: a.kind.clone(),
            entries: a.entries.clone(),
            descr: a.descr.clone(),
        }
    }
}

impl From<&RuleSpec> for RuleFields {
    fn from(r: &RuleSpec) -> Self {
        let endpoint = |e: &EndpointSpec| crate::pfsense::edit::EndpointFields {
            what: e.what.clone(),
            not: e.not,
            port: e.port.clone(),
        };
        Self {
            action: r.action.clone(),
            interface: r.interface.clone(),
            ipprotocol: r.ipprotocol.clone(),
            protocol: r.protocol.clone(),
            source: endpoint(&r.source),
            destination: endpoint(&r.destination),
            log: r.log,
            disabled: r.disabled,
            descr: r.descr.clone(),
        }
    }
}

impl From<&PlaceSpec> for Place {
    fn from(p: &PlaceSpec) -> Self {
        match p {
            PlaceSpec::Top => Place::Top,
            PlaceSpec::Bottom => Place::Bottom,
            PlaceSpec::Before(tracker) => Place::Before(tracker.clone()),
        }
    }
}

impl Operation {
    /// The operation in people's words.
    pub fn words(&self) -> String {
        match self {
            Operation::AliasAdd { alias } => format!(
                "add {} alias {} ({} entries)",
                alias.kind,
                alias.name,
                alias.entries.len()
            ),
            Operation::AliasUpdate { name, alias } if *name != alias.name => {
                format!("change alias {name} and rename it {}", alias.name)
            }
            Operation::AliasUpdate { name, .. } => format!("change alias {name}"),
            Operation::AliasRename { name, new_name } => {
                format!("rename alias {name} to {new_name} (references follow)")
            }
            Operation::AliasDelete { name } => format!("delete alias {name}"),
            Operation::RuleAdd { rule, place } => format!(
                "add a {} rule on {} ({}) {}",
                rule.action,
                rule.interface.to_uppercase(),
                if rule.descr.is_empty() {
                    "no description"
                } else {
                    &rule.descr
                },
                match place {
                    PlaceSpec::Top => "at the top".to_owned(),
                    PlaceSpec::Bottom => "at the bottom".to_owned(),
                    PlaceSpec::Before(t) => format!("above rule {t}"),
                }
            ),
            Operation::RuleUpdate { tracker, .. } => format!("change rule {tracker}"),
            Operation::RuleMove { tracker, place } => match place {
                PlaceSpec::Top => format!("move rule {tracker} to the top"),
                PlaceSpec::Bottom => format!("move rule {tracker} to the bottom"),
                PlaceSpec::Before(t) => format!("move rule {tracker} above rule {t}"),
            },
            Operation::RuleEnable { tracker, enabled } => {
                format!(
                    "{} rule {tracker}",
                    if *enabled { "enable" } else { "disable" }
                )
            }
            Operation::RuleDelete { tracker } => format!("delete rule {tracker}"),
        }
    }

    /// Apply to `config`; a refused operation leaves it as it was.
    pub fn apply(&self, config: &mut Config, stamp: &Stamp) -> Result<(), EditError> {
        match self {
            Operation::AliasAdd { alias } => config.add_alias(&alias.into()),
            Operation::AliasUpdate { name, alias } => config.update_alias(name, &alias.into()),
            Operation::AliasRename { name, new_name } => {
                config.rename_alias(name, new_name).map(|_| ())
            }
            Operation::AliasDelete { name } => config.delete_alias(name),
            Operation::RuleAdd { rule, place } => config
                .add_rule(&rule.into(), &place.into(), stamp)
                .map(|_| ()),
            Operation::RuleUpdate { tracker, rule } => {
                config.update_rule(tracker, &rule.into(), stamp)
            }
            Operation::RuleMove { tracker, place } => config.move_rule(tracker, &place.into()),
            Operation::RuleEnable { tracker, enabled } => {
                config.set_rule_disabled(tracker, !enabled)
            }
            Operation::RuleDelete { tracker } => config.delete_rule(tracker),
        }
    }
}
