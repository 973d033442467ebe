//! The preview of a change set on one device: each operation applied in order to the device's
//! newest configuration, with its outcome; when every one applies, the configuration the device
//! would get and the difference in words and as raw XML (secrets masked, as in History). Nothing
//! here talks to a firewall.

use super::Operation;
use crate::pfsense::diff::{diff, Change};
use crate::pfsense::edit::Stamp;
use crate::pfsense::{raw_diff, secrets, Config};

/// Raw diff lines a preview shows at most.
const RAW_LINES: usize = 4_000;

/// One operation's outcome on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub words: String,
    /// Why it does not apply to this device, in people's words.
    pub conflict: Option<String>,
}

/// A device's preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub steps: Vec<Step>,
    /// The configuration to send, when every operation applies.
    pub after: Option<Config>,
    pub changes: Vec<Change>,
    /// The line diff ('+', '-', ' ' and the line), secrets masked, and whether it was cut.
    pub raw: (Vec<(char, String)>, bool),
}

impl Preview {
    pub fn conflicts(&self) -> usize {
        self.steps.iter().filter(|s| s.conflict.is_some()).count()
    }
}

/// Preview `operations` on `before`. Operations after a conflict are still tried (on the
/// configuration without the refused one), so every conflict of the device shows at once.
pub fn preview(before: &Config, operations: &[Operation], stamp: &Stamp) -> Preview {
    let mut after = before.clone();
    let steps: Vec<Step> = operations
        .iter()
        .map(|op| Step {
            words: op.words(),
            conflict: op.apply(&mut after, stamp).err().map(|e| e.to_string()),
        })
        .collect();
    if steps.iter().any(|s| s.conflict.is_some()) {
        return Preview {
            steps,
            after: None,
            changes: Vec::new(),
            raw: (Vec::new(), false),
        };
    }
    let changes = diff(before, &after);
    let (old, new) = (before.to_xml(), after.to_xml());
    let raw = raw_diff::lines(
        &secrets::mask(&old, Some(&new)),
        &secrets::mask(&new, Some(&old)),
        RAW_LINES,
    );
    Preview {
        steps,
        after: Some(after),
        changes,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{AliasSpec, EndpointSpec, PlaceSpec, RuleSpec};

    const CONFIG: &str = r#"<?xml version="1.0"?>
<pfsense>
	<version>23.3</version>
	<interfaces>
		<wan><if>vtnet0</if></wan>
		<lan><if>vtnet1</if></lan>
	</interfaces>
	<aliases>
		<alias><name>WEB</name><type>host</type><address>10.0.0.7</address></alias>
	</aliases>
	<cert>
		<prv>secretsecretsecretsecretsecretsecret</prv>
		<refid>5f1e</refid>
	</cert>
	<filter>
		<rule>
			<tracker>100</tracker>
			<type>pass</type>
			<interface>lan</interface>
			<source><network>lan</network></source>
			<destination><any></any></destination>
			<descr><![CDATA[LAN out]]></descr>
		</rule>
	</filter>
</pfsense>
"#;

    fn stamp() -> Stamp {
        Stamp {
            by: "Mudmap: alice@example.com".to_owned(),
            at_secs: 1_800_000_000,
        }
    }

    fn operations() -> Vec<Operation> {
        // As the browser sends them.
        serde_json::from_str(
            r#"[
            {"op":"alias_add","alias":{"name":"MAIL","kind":"host","entries":[["10.0.0.25","relay"]]}},
            {"op":"rule_add","place":"top","rule":{"action":"pass","interface":"wan","protocol":"tcp",
              "source":{"what":"any"},"destination":{"what":"MAIL","port":"25"},"descr":"Mail in"}}
        ]"#,
        )
        .unwrap()
    }

    #[test]
    fn a_preview_says_each_step_and_what_the_configuration_becomes() {
        let before = Config::parse(CONFIG).unwrap();
        let p = preview(&before, &operations(), &stamp());
        assert_eq!(p.conflicts(), 0, "{p:?}");
        assert_eq!(p.steps[0].words, "add host alias MAIL (1 entries)");
        assert_eq!(
            p.steps[1].words,
            "add a pass rule on WAN (Mail in) at the top"
        );
        let words: Vec<&str> = p.changes.iter().map(|c| c.text.as_str()).collect();
        assert!(words.iter().any(|w| w.contains("MAIL")), "{words:?}");
        assert!(words.iter().any(|w| w.contains("Mail in")), "{words:?}");
        assert!(p
            .raw
            .0
            .iter()
            .any(|(k, l)| *k == '+' && l.contains("<address>MAIL</address>")));
        assert!(
            p.raw.0.iter().any(|(_, l)| l.contains("<prv>")),
            "the hash is within the diff's context: {:?}",
            p.raw.0
        );
        assert!(
            p.raw.0.iter().all(|(_, l)| !l.contains("secretsecret")),
            "secrets are masked in the raw diff"
        );
        let after = p.after.unwrap();
        assert_eq!(after.rules().len(), 2);
        assert_eq!(Config::parse(&after.to_xml()).unwrap(), after);
    }

    #[test]
    fn conflicts_are_named_per_operation_and_nothing_is_produced() {
        let before = Config::parse(CONFIG).unwrap();
        let mut ops = operations();
        ops.insert(
            0,
            Operation::AliasDelete {
                name: "NOPE".to_owned(),
            },
        );
        ops.push(Operation::RuleAdd {
            rule: RuleSpec {
                action: "pass".to_owned(),
                interface: "opt7".to_owned(),
                ipprotocol: "inet".to_owned(),
                protocol: "any".to_owned(),
                source: EndpointSpec {
                    what: "any".to_owned(),
                    not: false,
                    port: String::new(),
                },
                destination: EndpointSpec {
                    what: "any".to_owned(),
                    not: false,
                    port: String::new(),
                },
                log: false,
                disabled: false,
                descr: String::new(),
            },
            place: PlaceSpec::Bottom,
        });
        ops.push(Operation::AliasAdd {
            alias: AliasSpec {
                name: "WEB".to_owned(),
                kind: "host".to_owned(),
                entries: vec![("10.0.0.8".to_owned(), String::new())],
                descr: String::new(),
            },
        });
        let p = preview(&before, &ops, &stamp());
        assert_eq!(p.conflicts(), 3);
        assert_eq!(
            p.steps[0].conflict.as_deref(),
            Some("There is no alias \"NOPE\" on this firewall.")
        );
        assert!(p.steps[1].conflict.is_none() && p.steps[2].conflict.is_none());
        assert!(p.steps[3]
            .conflict
            .as_deref()
            .unwrap()
            .contains("no such interface"));
        assert!(p.steps[4]
            .conflict
            .as_deref()
            .unwrap()
            .contains("already exists"));
        assert!(p.after.is_none() && p.changes.is_empty());
    }
}
