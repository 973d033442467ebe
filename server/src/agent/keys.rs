//! Mudmap's lines in the pfSense `admin` account's authorized keys (docs/agent-protocol.md,
//! "Access"): the one template a line may have, and the edits `access.ensure` / `access.remove`
//! make to the text — shared by the server (which builds lines) and the simulator (which edits its
//! model exactly as the PHP agent edits `config.xml`). No I/O here.
//!
//! A line is `command="<dispatcher>",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding
//! ssh-ed25519 <key> mudmap:<instance>:<device>`. Nothing else is accepted, so the key that
//! reaches root through the agent can never be given other options or another command.

use base64::Engine as _;

use crate::activation::remote::FORCED_COMMAND;

/// The fixed options every Mudmap line carries after its forced command.
pub const RESTRICTIONS: &str = "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding";
/// Comments of Mudmap's lines start with this.
pub const COMMENT_PREFIX: &str = "mudmap:";

/// A Mudmap line, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLine {
    /// The base64 of the ed25519 public key blob.
    pub key: String,
    /// `mudmap:<instance>:<device>`.
    pub comment: String,
}

/// `mudmap:<instance>:<device>`, the comment that names this Mudmap installation and the device.
pub fn comment(instance: &str, device: &str) -> String {
    format!("{COMMENT_PREFIX}{instance}:{device}")
}

/// The line for `public_key` (OpenSSH text, `ssh-ed25519 AAAA… [comment]`; its own comment is
/// replaced) and `comment`.
pub fn line(public_key_openssh: &str, comment: &str) -> String {
    let mut fields = public_key_openssh.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    format!("command=\"{FORCED_COMMAND}\",{RESTRICTIONS} {kind} {key} {comment}")
}

fn id_part_ok(part: &str) -> bool {
    (1..=64).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The base64 is of a 51-byte ed25519 blob: the type string and 32 key bytes, each with its length.
fn ed25519_blob_ok(key: &str) -> bool {
    if key.len() != 68 {
        return false;
    }
    let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(key) else {
        return false;
    };
    blob.len() == 51 && blob.starts_with(b"\0\0\0\x0bssh-ed25519\0\0\0\x20")
}

/// Take a line apart if, and only if, it is exactly Mudmap's template.
pub fn parse(line: &str) -> Option<KeyLine> {
    let rest = line.strip_prefix("command=\"")?;
    let rest = rest.strip_prefix(FORCED_COMMAND)?;
    let rest = rest.strip_prefix("\",")?;
    let rest = rest.strip_prefix(RESTRICTIONS)?;
    let rest = rest.strip_prefix(" ssh-ed25519 ")?;
    let (key, comment) = rest.split_once(' ')?;
    let mut parts = comment.strip_prefix(COMMENT_PREFIX)?.split(':');
    let (instance, device) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !id_part_ok(instance) || !id_part_ok(device) {
        return None;
    }
    ed25519_blob_ok(key).then(|| KeyLine {
        key: key.to_owned(),
        comment: comment.to_owned(),
    })
}

/// The key and comment of any authorized-keys line whose comment is a Mudmap one (also lines of
/// older dispatchers), so removal and the "others" list see every Mudmap line.
fn mudmap_parts(line: &str) -> Option<(&str, &str)> {
    let at = line.find(" ssh-ed25519 ")?;
    let (key, comment) = line[at + 13..].trim_end_matches('\r').split_once(' ')?;
    comment
        .starts_with(COMMENT_PREFIX)
        .then_some((key, comment))
}

/// What `access.ensure` did to the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub text: String,
    /// False when a line of the same comment was replaced.
    pub created: bool,
    /// Comments of the other Mudmap lines.
    pub others: Vec<String>,
}

/// Add `line` (already [`parse`]d) to the authorized-keys `text`: in place of a line with the same
/// comment, else appended. Every other line stays byte for byte.
pub fn ensure(text: &str, line: &str, parsed: &KeyLine) -> Ensured {
    let mut lines: Vec<String> = split(text);
    let mut others = Vec::new();
    let mut created = true;
    for existing in lines.iter_mut() {
        match mudmap_parts(existing) {
            Some((_, comment)) if comment == parsed.comment && created => {
                *existing = line.to_owned();
                created = false;
            }
            Some((_, comment)) if comment != parsed.comment => others.push(comment.to_owned()),
            _ => {}
        }
    }
    let mut text = if created {
        let mut text = text.to_owned();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(line);
        text.push('\n');
        text
    } else {
        join(&lines, text)
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ensured {
        text,
        created,
        others,
    }
}

/// What `access.remove` did to the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub text: String,
    pub removed: bool,
    pub others: Vec<String>,
}

/// Remove every Mudmap line carrying `key` (base64); nothing else.
pub fn remove(text: &str, key: &str) -> Removed {
    let mut removed = false;
    let mut others = Vec::new();
    let lines: Vec<String> = split(text)
        .into_iter()
        .filter(|line| match mudmap_parts(line) {
            Some((k, _)) if k == key => {
                removed = true;
                false
            }
            Some((_, comment)) => {
                others.push(comment.to_owned());
                true
            }
            None => true,
        })
        .collect();
    Removed {
        text: join(&lines, text),
        removed,
        others,
    }
}

/// The lines of `text` (without their `\n`; a final newline does not make an empty last line).
fn split(text: &str) -> Vec<String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Vec::new();
    }
    body.split('\n').map(str::to_owned).collect()
}

/// The lines back into text, ending in a newline when the original did (or was empty).
fn join(lines: &[String], original: &str) -> String {
    let mut text = lines.join("\n");
    if !text.is_empty() && (original.ends_with('\n') || original.is_empty()) {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBxrRPzBWx0aNj2TxQPiNLSDLxsdglm6rf0T3KP6ZXYD";

    fn mudmap(key: &str, comment: &str) -> String {
        line(&format!("ssh-ed25519 {key} whatever"), comment)
    }

    #[test]
    fn only_the_exact_template_parses() {
        let good = mudmap(KEY, "mudmap:inst-1:dev-2");
        assert_eq!(
            parse(&good),
            Some(KeyLine {
                key: KEY.to_owned(),
                comment: "mudmap:inst-1:dev-2".to_owned()
            })
        );
        for bad in [
            good.replace("no-pty,", ""),
            good.replace("no-pty", "no-pty,permitopen=\"*:*\""),
            good.replace("mudmap-install-agent", "mudmap-install-anything"),
            good.replace("ssh-ed25519", "ssh-rsa"),
            good.replace("mudmap:inst-1:dev-2", "mudmap:inst 1:dev"),
            good.replace("mudmap:inst-1:dev-2", "mudmap:inst:dev:extra"),
            good.replace("mudmap:inst-1:dev-2", "admin@laptop"),
            good.replace(KEY, &KEY[..60]),
            format!("{good}\nssh-ed25519 {OTHER} x"),
            format!("environment=\"X=1\",{good}"),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn ensure_appends_beside_the_admins_keys_and_replaces_its_own_line() {
        let admin = "ssh-rsa AAAAB3Nza admin@laptop"; // no final newline, as typed in the GUI
        let first = mudmap(KEY, "mudmap:a:dev");
        let done = ensure(admin, &first, &parse(&first).unwrap());
        assert_eq!(done.text, format!("{admin}\n{first}\n"));
        assert!(done.created && done.others.is_empty());

        // Another organisation's line is appended after, and each sees the other.
        let second = mudmap(OTHER, "mudmap:a:dev2");
        let done = ensure(&done.text, &second, &parse(&second).unwrap());
        assert_eq!(done.text, format!("{admin}\n{first}\n{second}\n"));
        assert_eq!(done.others, ["mudmap:a:dev"]);

        // Re-activating the first device replaces its line in place.
        let renewed = mudmap(OTHER, "mudmap:a:dev");
        let done = ensure(&done.text, &renewed, &parse(&renewed).unwrap());
        assert!(!done.created);
        assert_eq!(done.text, format!("{admin}\n{renewed}\n{second}\n"));
        assert_eq!(done.others, ["mudmap:a:dev2"]);
    }

    #[test]
    fn remove_takes_only_mudmap_lines_of_that_key() {
        let admin = "ssh-ed25519 AAAAplain admin@laptop\r\n# a comment\n";
        let ours = mudmap(KEY, "mudmap:a:dev");
        let theirs = mudmap(OTHER, "mudmap:b:dev");
        let text = format!("{admin}{ours}\n{theirs}\n");
        let done = remove(&text, KEY);
        assert!(done.removed);
        assert_eq!(done.text, format!("{admin}{theirs}\n"));
        assert_eq!(done.others, ["mudmap:b:dev"]);
        let again = remove(&done.text, KEY);
        assert!(!again.removed);
        assert_eq!(again.text, done.text);
        // The admin's own line with the same key bytes but no Mudmap comment stays.
        let plain = format!("ssh-ed25519 {KEY} admin@laptop\n");
        assert_eq!(remove(&plain, KEY).text, plain);
    }
}
