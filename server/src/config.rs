//! Configuration: built-in defaults, then an optional TOML file (`--config` / `MUDMAP_CONFIG`),
//! then `MUDMAP_*` environment variables, each layer overriding the one before.
//!
//! Every key has exactly one environment variable, derived from its dotted path:
//! `log.format` ↔ `MUDMAP_LOG_FORMAT`, `database.url` ↔ `MUDMAP_DATABASE_URL`. Unknown keys in
//! the file and unknown `MUDMAP_*` variables are reported as warnings naming the key, so a typo
//! never silently falls back to a default. Secrets (`database.url` credentials, the SMTP password)
//! are redacted in `Debug` output; this module never logs anything itself.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable naming the config file, when `--config` is not given.
pub const CONFIG_ENV: &str = "MUDMAP_CONFIG";

/// What can go wrong while loading configuration. Each message names the source and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause} (check the path given by --config or MUDMAP_CONFIG)")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message} at line {line}, column {column}")]
    Syntax {
        path: PathBuf,
        message: String,
        line: usize,
        column: usize,
    },
    #[error("environment variable {var}={value:?} is invalid: expected {expected}")]
    Env {
        var: String,
        value: String,
        expected: &'static str,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Fully resolved settings. Built by [`Settings::load`]; tests build them with [`Settings::for_data_dir`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the web server listens on.
    pub listen: SocketAddr,
    /// Directory holding the SQLite database, the mail drop and the master key.
    pub data_dir: PathBuf,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// The address users reach Mudmap at, for links in mail and the session cookie's `Secure`
    /// flag; empty means `http://` + `listen`.
    pub public_url: Option<String>,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub smtp: SmtpSettings,
    pub security: SecuritySettings,
    pub jobs: JobSettings,
    pub demo: DemoSettings,
    pub poll: PollSettings,
    pub backups: BackupSettings,
    pub audit: AuditSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// Audit entries older than this many days are deleted, the deletion itself audited
    /// (0: kept forever).
    pub keep_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BackupSettings {
    /// Seconds between scheduled backups of each active device (0: no schedule).
    pub interval_secs: u64,
    /// Seconds between two looks for devices due (and for revisions past retention).
    pub check_secs: u64,
    /// Revisions older than this many days are deleted…
    pub keep_days: u64,
    /// …except each device's newest ones, at least this many (at least 1: never the newest).
    pub keep_at_least: u64,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            interval_secs: 86_400,
            check_secs: 600,
            keep_days: 90,
            keep_at_least: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PollSettings {
    /// Seconds between two status polls of every active device.
    pub interval_secs: u64,
    /// Seconds a device must stay offline before its owners and admins get a mail.
    pub offline_mail_after_secs: u64,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            interval_secs: 30,
            offline_mail_after_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    /// Background jobs (mail, later polling and rollouts) run at once in this process.
    pub concurrency: u32,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self { concurrency: 16 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; empty means SQLite at `<data_dir>/mudmap.db`.
    pub url: Option<DatabaseUrl>,
    /// Pool size; 0 picks per engine (see [`DatabaseSettings::pool_size`]).
    pub max_connections: u32,
    /// Seconds to wait for a connection (and for the first connect at start).
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,mudmap=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpSettings {
    /// SMTP relay; when unset, mail is written as `.eml` files under `<data_dir>/mail/`.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SecuritySettings {
    /// File holding the key that encrypts device private keys; created 0600 on first run.
    pub master_key_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./data"),
            shutdown_grace_secs: 20,
            public_url: None,
            database: DatabaseSettings::default(),
            log: LogSettings::default(),
            smtp: SmtpSettings::default(),
            security: SecuritySettings::default(),
            jobs: JobSettings::default(),
            demo: DemoSettings::default(),
            poll: PollSettings::default(),
            backups: BackupSettings::default(),
            audit: AuditSettings::default(),
        }
    }
}

impl DatabaseSettings {
    /// The pool size: `max_connections`, or when it is 0, 4 connections on SQLite (writes are
    /// serialised anyway, and every SQLite connection costs a thread and its own page cache:
    /// 10 of them were ~40 MiB of a 1,000-device server's memory under load) and 10 on PostgreSQL.
    pub fn pool_size(&self, postgres: bool) -> u32 {
        match (self.max_connections, postgres) {
            (0, true) => 10,
            (0, false) => 4,
            (n, _) => n,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 0,
            connect_timeout_secs: 5,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            from: "Mudmap <mudmap@localhost>".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DemoSettings {
    /// Simulated firewalls to run inside the server (0 = none). For trying Mudmap out; never in production.
    pub devices: u32,
    /// Password of the demo account (demo@mudmap.test), created when `devices` > 0; empty means a
    /// random one, printed at start.
    pub password: Option<Secret>,
    /// Loopback port of the first simulated firewall; the others follow. Fixed, so the demo
    /// organisation's device records stay valid across restarts.
    pub base_port: u16,
    /// Loopback address for the simulator's fault-switching API (empty: off).
    pub control: Option<String>,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            devices: 0,
            password: None,
            base_port: 22200,
            control: None,
        }
    }
}

/// A secret string: deserializable, never serializable, redacted in `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    /// Passwords do not linger in freed memory.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// A database URL whose password never appears in `Debug` or `Display`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }
    /// The URL with any password replaced, safe for logs and error messages.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:secret@host/db?password=x` → `scheme://user:***@host/db?password=***`.
fn redact_url_password(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            // Only the authority (before the first '/') may hold credentials; '@' may appear in the password.
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                    let hidden = if userinfo.contains(':') { ":***" } else { "" };
                    format!("{scheme}://{user}{hidden}@{host}{path}")
                }
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// The kind of value a key holds, used to parse environment variables.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
}

/// Every configurable key (dotted path) and its kind. The env var is derived from the path.
const KEYS: &[(&str, Kind)] = &[
    ("listen", Kind::Str),
    ("data_dir", Kind::Str),
    ("shutdown_grace_secs", Kind::Int),
    ("public_url", Kind::Str),
    ("database.url", Kind::Str),
    ("database.max_connections", Kind::Int),
    ("database.connect_timeout_secs", Kind::Int),
    ("log.format", Kind::Str),
    ("log.level", Kind::Str),
    ("smtp.host", Kind::Str),
    ("smtp.port", Kind::Int),
    ("smtp.security", Kind::Str),
    ("smtp.username", Kind::Str),
    ("smtp.password", Kind::Str),
    ("smtp.from", Kind::Str),
    ("security.master_key_file", Kind::Str),
    ("jobs.concurrency", Kind::Int),
    ("demo.devices", Kind::Int),
    ("demo.password", Kind::Str),
    ("demo.base_port", Kind::Int),
    ("poll.interval_secs", Kind::Int),
    ("poll.offline_mail_after_secs", Kind::Int),
    ("backups.interval_secs", Kind::Int),
    ("backups.check_secs", Kind::Int),
    ("backups.keep_days", Kind::Int),
    ("backups.keep_at_least", Kind::Int),
    ("audit.keep_days", Kind::Int),
    ("demo.control", Kind::Str),
];

/// Environment variables that are honoured but do not map to a key of their own.
const EXTRA_ENV: &[&str] = &[CONFIG_ENV, "MUDMAP_LOG"];

/// The environment variable that sets a dotted key.
pub fn env_var_for(key: &str) -> String {
    format!("MUDMAP_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Settings plus what the loader noticed but tolerated (unknown keys), to be logged once logging is up.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
    pub source: Option<PathBuf>,
}

impl Settings {
    /// Load from defaults, the optional file, and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// Load with an explicit environment (tests pass their own).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let file = file.map(Path::to_path_buf).or_else(|| {
            lookup(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });

        let mut warnings = Vec::new();
        let mut table = match &file {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };

        for (path, kind) in KEYS {
            let var = env_var_for(path);
            let value = lookup(&var).or_else(|| match *path {
                "database.url" => lookup("DATABASE_URL"),
                "log.level" => lookup("MUDMAP_LOG").or_else(|| lookup("RUST_LOG")),
                _ => None,
            });
            if let Some(value) = value {
                let parsed = match kind {
                    Kind::Str => toml::Value::String(value),
                    Kind::Int => toml::Value::Integer(value.trim().parse().map_err(|_| {
                        ConfigError::Env {
                            var: var.clone(),
                            value: value.clone(),
                            expected: "a whole number",
                        }
                    })?),
                };
                set_path(&mut table, path, parsed);
            }
        }
        for (name, _) in env {
            let known = KEYS.iter().any(|(p, _)| env_var_for(p) == *name)
                || EXTRA_ENV.contains(&name.as_str());
            if name.starts_with("MUDMAP_") && !known {
                warnings.push(format!(
                    "unknown environment variable {name} (ignored); see `mudmap default-config` for the settings"
                ));
            }
        }

        let settings = deserialize(table, file.as_deref(), &mut warnings)?;
        settings.validate()?;
        Ok(Loaded {
            settings,
            warnings,
            source: file,
        })
    }

    /// Defaults rooted at `data_dir`, listening on an ephemeral loopback port: what tests start from.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// The database URL in force: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> DatabaseUrl {
        match &self.database.url {
            Some(url) => url.clone(),
            None => DatabaseUrl::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("mudmap.db").display()
            )),
        }
    }

    /// The public base URL without a trailing slash: `public_url`, or `http://` + the address
    /// actually bound (`bound`, which knows the port when `listen` asked for port 0).
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
            _ => {
                let host = if bound.ip().is_unspecified() {
                    SocketAddr::from(([127, 0, 0, 1], bound.port()))
                } else {
                    bound
                };
                format!("http://{host}")
            }
        }
    }

    /// Where the master key lives: configured, or `<data_dir>/master.key`.
    pub fn master_key_file(&self) -> PathBuf {
        self.security
            .master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database.url {
            let ok = url.is_postgres() || url.expose().starts_with("sqlite:");
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "database.url {url} is not supported: use sqlite://PATH or postgres://USER@HOST:PORT/DB"
                )));
            }
        }
        if let Some(url) = &self.public_url {
            let url = url.trim();
            if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::Invalid(format!(
                    "public_url {url:?} must start with https:// (or http:// for a local trial), e.g. \"https://mudmap.example.com\""
                )));
            }
        }
        if self.backups.check_secs == 0 || self.backups.keep_at_least == 0 {
            return Err(ConfigError::Invalid(
                "backups.check_secs and backups.keep_at_least must be at least 1 (a device's newest backup is always kept)"
                    .to_owned(),
            ));
        }
        if self.jobs.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "jobs.concurrency must be at least 1".to_owned(),
            ));
        }
        if self.smtp.host.is_some() && self.smtp.from.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "smtp.from must be set when smtp.host is set, e.g. \"Mudmap <mudmap@example.com>\""
                    .to_owned(),
            ));
        }
        if self.smtp.password.is_some() && self.smtp.username.is_none() {
            return Err(ConfigError::Invalid(
                "smtp.password is set but smtp.username is not: set both or neither".to_owned(),
            ));
        }
        Ok(())
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_col(&text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.message().trim().to_owned(),
            line,
            column,
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Deserialize; keys serde would skip are collected as warnings instead of failing the load.
fn deserialize(
    table: toml::Table,
    file: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<Settings, ConfigError> {
    let origin = file.map_or_else(|| "configuration".to_owned(), |f| f.display().to_string());
    let mut unknown = Vec::new();
    let settings = serde_ignored::deserialize(toml::Value::Table(table), |path| {
        unknown.push(path.to_string());
    })
    .map_err(|e| {
        ConfigError::Invalid(format!(
            "{} (in {origin})",
            e.to_string().trim().replace('\n', " ")
        ))
    })?;
    for key in unknown {
        warnings.push(format!(
            "unknown config key `{key}` in {origin} (ignored); see `mudmap default-config` for the settings"
        ));
    }
    Ok(settings)
}

/// The commented example printed by `mudmap default-config`. Every value shown is the default.
pub const DEFAULT_CONFIG: &str = r#"# Mudmap configuration (TOML). Every key is optional; the values shown are the defaults.
# Precedence: built-in defaults < this file (--config FILE or MUDMAP_CONFIG) < environment.
# Each key has one environment variable named after its path: log.format -> MUDMAP_LOG_FORMAT.

# Address the web server listens on.                            MUDMAP_LISTEN
listen = "127.0.0.1:3000"

# Directory for the SQLite database, the mail drop (mail/) and the master key.
#                                                               MUDMAP_DATA_DIR
data_dir = "./data"

# Seconds in-flight requests get to finish after SIGINT/SIGTERM. MUDMAP_SHUTDOWN_GRACE_SECS
shutdown_grace_secs = 20

# Where users reach Mudmap: used in links in mail; https:// also marks the session cookie Secure.
# Empty: http:// + listen, fine for a trial on one machine.     MUDMAP_PUBLIC_URL
# public_url = "https://mudmap.example.com"

[database]
# Empty: SQLite at <data_dir>/mudmap.db (created on first start).
# PostgreSQL: "postgres://USER:PASSWORD@HOST:5432/DB".          MUDMAP_DATABASE_URL (or DATABASE_URL)
# url = "postgres://mudmap@127.0.0.1:5432/mudmap"
# 0: 4 on SQLite (one writer at a time; each connection is a thread with its own page cache),
# 10 on PostgreSQL.
max_connections = 0                                           # MUDMAP_DATABASE_MAX_CONNECTIONS
connect_timeout_secs = 5                                      # MUDMAP_DATABASE_CONNECT_TIMEOUT_SECS

[log]
format = "pretty"   # pretty | json                             MUDMAP_LOG_FORMAT
level = "info"      # tracing filter, e.g. "info,mudmap=debug"  MUDMAP_LOG_LEVEL (or MUDMAP_LOG, RUST_LOG)

[smtp]
# Without a host, every mail is written as an .eml file under <data_dir>/mail/.
# host = "smtp.example.com"                                     MUDMAP_SMTP_HOST
# port = 587          # default: 587 for starttls, 465 for tls, 25 for none
security = "starttls" # starttls | tls | none                   MUDMAP_SMTP_SECURITY
# username = "mudmap"                                           MUDMAP_SMTP_USERNAME
# password = "..."                                              MUDMAP_SMTP_PASSWORD
from = "Mudmap <mudmap@localhost>"                            # MUDMAP_SMTP_FROM

[security]
# Key that encrypts device private keys at rest; generated with mode 0600 on first run.
# master_key_file = "./data/master.key"                         MUDMAP_SECURITY_MASTER_KEY_FILE

[jobs]
# Background jobs (mail; later polling, backups, rollouts) run at once in this process.
concurrency = 16                                              # MUDMAP_JOBS_CONCURRENCY

[poll]
# Seconds between two status polls of every active device (over its resident SSH channel).
interval_secs = 30                                            # MUDMAP_POLL_INTERVAL_SECS
# Seconds a device must stay offline before its owners and admins get a mail (no mail for a blip).
offline_mail_after_secs = 120                                 # MUDMAP_POLL_OFFLINE_MAIL_AFTER_SECS

[backups]
# Configuration backups: also taken at activation, on request and when a change is seen.
# Seconds between scheduled backups of every active device (0 = no schedule).
interval_secs = 86400                                         # MUDMAP_BACKUPS_INTERVAL_SECS
# Seconds between two looks for devices due and for backups past retention.
check_secs = 600                                              # MUDMAP_BACKUPS_CHECK_SECS
# Backups older than this many days are deleted…
keep_days = 90                                                # MUDMAP_BACKUPS_KEEP_DAYS
# …except each device's newest ones, at least this many (never fewer than 1).
keep_at_least = 30                                            # MUDMAP_BACKUPS_KEEP_AT_LEAST

[audit]
# Audit entries older than this many days are deleted, and the deletion is audited (0 = forever).
keep_days = 0                                                 # MUDMAP_AUDIT_KEEP_DAYS

[demo]
# Simulated pfSense firewalls run inside the server, to try Mudmap out (0 = none).
devices = 0                                                   # MUDMAP_DEMO_DEVICES
# With devices > 0, the demo account demo@mudmap.test gets this password (empty: random, printed).
# password = "..."                                              MUDMAP_DEMO_PASSWORD
# Loopback port of the first simulated firewall (their admin password is printed at start).
base_port = 22200                                             # MUDMAP_DEMO_BASE_PORT
# Fault-switching API of the simulator, e.g. "127.0.0.1:22199" (off when empty).
# control = ""                                                  MUDMAP_DEMO_CONTROL
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("mudmap.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_without_file_or_env() {
        let loaded = Settings::load_from(None, &[]).unwrap();
        assert_eq!(loaded.settings.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(loaded.settings.data_dir, PathBuf::from("./data"));
        assert_eq!(loaded.settings.log.format, LogFormat::Pretty);
        assert!(loaded.warnings.is_empty());
        assert_eq!(
            loaded.settings.database_url().expose(),
            "sqlite://./data/mudmap.db?mode=rwc"
        );
    }

    #[test]
    fn the_default_config_parses_to_the_defaults_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, DEFAULT_CONFIG);
        let loaded = Settings::load_from(Some(&path), &[]).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let defaults = Settings::default();
        assert_eq!(loaded.settings.listen, defaults.listen);
        assert_eq!(
            loaded.settings.shutdown_grace_secs,
            defaults.shutdown_grace_secs
        );
        assert_eq!(loaded.settings.smtp.from, defaults.smtp.from);
    }

    #[test]
    fn env_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "listen = \"127.0.0.1:4000\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
        );
        let loaded = Settings::load_from(
            Some(&path),
            &env(&[
                ("MUDMAP_LISTEN", "127.0.0.1:5000"),
                ("MUDMAP_SMTP_PORT", "2525"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.settings.listen.port(), 5000);
        assert_eq!(loaded.settings.log.format, LogFormat::Json);
        assert_eq!(loaded.settings.log.level, "debug");
        assert_eq!(loaded.settings.smtp.port, Some(2525));
    }

    #[test]
    fn config_file_can_come_from_mudmap_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "data_dir = \"/var/lib/mudmap\"\n");
        let loaded =
            Settings::load_from(None, &env(&[("MUDMAP_CONFIG", path.to_str().unwrap())])).unwrap();
        assert_eq!(loaded.settings.data_dir, PathBuf::from("/var/lib/mudmap"));
        assert_eq!(loaded.source.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn the_pool_size_defaults_per_engine() {
        let mut db = DatabaseSettings::default();
        assert_eq!((db.pool_size(false), db.pool_size(true)), (4, 10));
        db.max_connections = 3;
        assert_eq!((db.pool_size(false), db.pool_size(true)), (3, 3));
    }

    #[test]
    fn database_url_falls_back_to_plain_database_url() {
        let loaded =
            Settings::load_from(None, &env(&[("DATABASE_URL", "postgres://u@127.0.0.1/db")]))
                .unwrap();
        assert!(loaded.settings.database_url().is_postgres());
        let loaded = Settings::load_from(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://u@127.0.0.1/other"),
                ("MUDMAP_DATABASE_URL", "sqlite:///tmp/x.db"),
            ]),
        )
        .unwrap();
        assert_eq!(
            loaded.settings.database_url().expose(),
            "sqlite:///tmp/x.db"
        );
    }

    #[test]
    fn unknown_keys_and_variables_are_warnings_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "lisen = \"x\"\n[smtp]\nhots = \"mail\"\n");
        let loaded = Settings::load_from(Some(&path), &env(&[("MUDMAP_LISTN", "1")])).unwrap();
        let all = loaded.warnings.join("\n");
        assert!(all.contains("`lisen`"), "{all}");
        assert!(all.contains("`smtp.hots`"), "{all}");
        assert!(all.contains("MUDMAP_LISTN"), "{all}");
        assert_eq!(loaded.warnings.len(), 3);
    }

    #[test]
    fn malformed_toml_reports_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "listen = \"127.0.0.1:3000\"\nlog = [\n");
        let err = Settings::load_from(Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid TOML"), "{err}");
        assert!(err.contains("line 2") || err.contains("line 3"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn wrong_types_and_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[log]\nformat = \"xml\"\n");
        let err = Settings::load_from(Some(&path), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("xml") && err.contains("pretty"), "{err}");
        let err = Settings::load_from(None, &env(&[("MUDMAP_SHUTDOWN_GRACE_SECS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MUDMAP_SHUTDOWN_GRACE_SECS"), "{err}");
        let err = Settings::load_from(None, &env(&[("MUDMAP_LISTEN", "localhost")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("listen") || err.contains("socket address"),
            "{err}"
        );
        let err = Settings::load_from(None, &env(&[("MUDMAP_DATABASE_URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = Settings::load_from(Some(Path::new("/nonexistent/mudmap.toml")), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/mudmap.toml") && err.contains("--config"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let loaded = Settings::load_from(
            None,
            &env(&[
                (
                    "MUDMAP_DATABASE_URL",
                    "postgres://mudmap:hunter2@db:5432/mudmap?sslmode=require",
                ),
                ("MUDMAP_SMTP_USERNAME", "mailer"),
                ("MUDMAP_SMTP_PASSWORD", "s3cr3t-smtp"),
            ]),
        )
        .unwrap();
        let debug = format!("{:?}", loaded.settings);
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("s3cr3t-smtp"), "{debug}");
        assert!(
            debug.contains("postgres://mudmap:***@db:5432/mudmap"),
            "{debug}"
        );
    }

    #[test]
    fn url_redaction_handles_edge_cases() {
        assert_eq!(
            redact_url_password("postgres://u:p@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_url_password("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_url_password("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(
            redact_url_password("postgres://h/db?password=x&a=b"),
            "postgres://h/db?password=***&a=b"
        );
        assert_eq!(
            redact_url_password("sqlite://./data/m.db?mode=rwc"),
            "sqlite://./data/m.db?mode=rwc"
        );
    }
}
