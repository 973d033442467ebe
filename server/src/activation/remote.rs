//! What activation and removal run on a firewall, in one place: the simulator answers exactly these
//! commands, so the tests exercise the strings a real pfSense receives.
//!
//! The agent lives in [`AGENT_DIR`] and runs as root: each device's key joins the `admin` account's
//! authorized keys through the agent itself (`access.ensure`, pfSense's user API), so it shows in
//! System → User Manager → admin and survives reboots, and Mudmap logs in as [`ROOT_USER`] (the
//! same uid 0, with `/bin/sh` as its shell; admin's shell is pfSense's console menu). The key is
//! bound to a forced command ([`FORCED_COMMAND`]) that can do exactly two things: start the
//! resident agent, or replace the agent file ([`SELF_HEAL`]) — the second so the engine can
//! reinstall an agent that a pfSense upgrade removed without asking for the password. Its line's
//! template is in [`crate::agent::keys`] (decision 0007).

use crate::agent::protocol::PfSenseVersion;

/// Where the agent is installed.
pub const AGENT_DIR: &str = "/usr/local/share/mudmap";
/// The agent script.
pub const AGENT_PATH: &str = "/usr/local/share/mudmap/agent.php";
/// pfSense's PHP.
pub const PHP: &str = "/usr/local/bin/php";
/// The account Mudmap logs in as with a device's key: root (uid 0, shell `/bin/sh`), whose
/// authorized keys pfSense writes from the `admin` account's.
pub const ROOT_USER: &str = "root";
/// The service account agents before 1.2.0 created (a normal uid, so it could not write the
/// configuration); re-activation removes it (`account.remove`).
pub const LEGACY_USER: &str = "mudmap";

/// Prints the platform name and the version: `pfSense\n2.7.2-RELEASE\n` on pfSense.
pub const DETECT: &str = "/bin/cat /etc/platform /etc/version";

macro_rules! install_script {
    () => {
        "umask 022 && /bin/mkdir -p /usr/local/share/mudmap && /bin/cat > /usr/local/share/mudmap/agent.php.new && /bin/mv -f /usr/local/share/mudmap/agent.php.new /usr/local/share/mudmap/agent.php"
    };
}

/// Writes the agent (its bytes on standard input) atomically: a new file, then a rename.
pub const INSTALL_AGENT: &str = concat!("/bin/sh -c '", install_script!(), "'");

/// What the device's key may ask for besides the agent: reinstalling it (bytes on stdin).
pub const SELF_HEAL: &str = "mudmap-install-agent";

/// The forced command of the device's key line. pfSense gives some accounts tcsh, so the
/// dispatcher runs under `/bin/sh` explicitly; a missing agent exits 127 (as a shell does for a
/// missing command), which the engine reads as "agent missing".
pub const FORCED_COMMAND: &str = concat!(
    "/bin/sh -c 'case $SSH_ORIGINAL_COMMAND in mudmap-install-agent) ",
    install_script!(),
    ";; *) test -f /usr/local/share/mudmap/agent.php || exit 127; exec /usr/local/bin/php /usr/local/share/mudmap/agent.php serve;; esac'"
);

/// The agent shipped in this binary, installed on every activated firewall.
pub const AGENT_SOURCE: &str = include_str!("../agent/php/agent.php");

/// The version [`AGENT_SOURCE`] reports in `hello` (its `AGENT_VERSION` constant).
pub fn shipped_agent_version() -> &'static str {
    AGENT_SOURCE
        .lines()
        .find_map(|l| l.strip_prefix("const AGENT_VERSION = '"))
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or("unknown")
}

/// Removes the agent and its directory, unless another Mudmap's key is on the firewall (another
/// organisation or instance uses the same agent: prints `kept`). Used by activation's undo, over
/// the admin session; a device's own removal goes through `access.remove`.
pub const REMOVE_AGENT: &str = "/bin/sh -c 'if grep -qs \" mudmap:\" /root/.ssh/authorized_keys; then echo kept; else /bin/rm -rf /usr/local/share/mudmap; fi'";

/// One agent request in call mode (as the admin account, during activation and removal).
pub const AGENT_CALL: &str = "/usr/local/bin/php /usr/local/share/mudmap/agent.php call";

/// The oldest pfSense CE release the agent supports (PHP 7.4).
pub const MIN_CE: (u32, u32) = (2, 6);

/// Why [`parse_detect`] refused a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSupported {
    /// Not pfSense at all; holds what the platform file said (or the error).
    NotPfSense(String),
    /// pfSense, but older than [`MIN_CE`].
    TooOld(String),
}

/// Read [`DETECT`]'s output: the platform must be pfSense; `2.x` versions are CE, `YY.MM` are
/// Plus (Netgate numbers Plus releases by year and month).
pub fn parse_detect(
    exit_status: Option<u32>,
    output: &str,
) -> Result<PfSenseVersion, NotSupported> {
    let mut lines = output.lines().map(str::trim).filter(|l| !l.is_empty());
    let platform = lines.next().unwrap_or_default();
    if exit_status != Some(0) || platform != "pfSense" {
        let seen = if platform.is_empty() {
            "no /etc/platform".to_owned()
        } else {
            platform.chars().take(80).collect()
        };
        return Err(NotSupported::NotPfSense(seen));
    }
    let raw = lines.next().unwrap_or_default();
    let version = raw.split('-').next().unwrap_or_default().to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return Err(NotSupported::NotPfSense(format!(
            "pfSense with an unreadable version {raw:?}"
        )));
    };
    if major >= 21 {
        return Ok(PfSenseVersion {
            version,
            edition: "Plus".to_owned(),
        });
    }
    if (major, minor) < MIN_CE {
        return Err(NotSupported::TooOld(version));
    }
    Ok(PfSenseVersion {
        version,
        edition: "CE".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_editions_and_refuses_the_rest() {
        let ce = parse_detect(Some(0), "pfSense\n2.7.2-RELEASE\n").unwrap();
        assert_eq!((ce.edition.as_str(), ce.version.as_str()), ("CE", "2.7.2"));
        let plus = parse_detect(Some(0), "pfSense\n24.03-RELEASE\n").unwrap();
        assert_eq!(plus.edition, "Plus");
        assert_eq!(
            parse_detect(Some(0), "pfSense\n2.5.2-RELEASE\n"),
            Err(NotSupported::TooOld("2.5.2".to_owned()))
        );
        assert!(matches!(
            parse_detect(Some(1), "cat: /etc/platform: No such file or directory\n"),
            Err(NotSupported::NotPfSense(_))
        ));
        assert!(matches!(
            parse_detect(Some(0), "OPNsense\n24.1\n"),
            Err(NotSupported::NotPfSense(p)) if p == "OPNsense"
        ));
    }

    #[test]
    fn the_service_key_can_only_start_the_agent() {
        let line = crate::agent::keys::line("ssh-ed25519 AAAA x", "mudmap:i:d");
        assert!(line.starts_with("command=\"/bin/sh -c 'case $SSH_ORIGINAL_COMMAND in "));
        assert!(line.ends_with("\",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding ssh-ed25519 AAAA mudmap:i:d"));
        // The PHP agent checks lines against the same dispatcher, byte for byte.
        assert!(
            AGENT_SOURCE.contains(&format!(
                "const DISPATCHER = <<<'SH'\n{FORCED_COMMAND}\nSH;\n"
            )),
            "agent.php's DISPATCHER differs from FORCED_COMMAND"
        );
        // The option value is double-quoted: the command itself must hold none.
        assert!(!FORCED_COMMAND.contains('"'));
        // The self-heal branch installs exactly as activation does.
        assert!(FORCED_COMMAND.contains(
            INSTALL_AGENT
                .trim_start_matches("/bin/sh -c '")
                .trim_end_matches('\'')
        ));
    }

    #[test]
    fn the_shipped_agent_names_its_version() {
        assert_eq!(
            shipped_agent_version(),
            crate::sim::agent::SIM_AGENT_VERSION
        );
    }
}
