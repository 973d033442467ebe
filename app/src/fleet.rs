//! The fleet view's data: one row per device with its health and latest figures, counts by health,
//! and the query the fleet page sends (search, filters, sort, page). The server answers from the
//! monitor's stored status, never by asking the devices, so the page stays fast at any size.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::ui::badge::Health;

/// Rows per page.
pub const PER_PAGE: u32 = 50;

/// A device as the fleet table shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    pub id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tags: Vec<String>,
    pub health: Health,
    /// Why it is degraded or offline ("" otherwise).
    pub reason: String,
    /// When the current health began (ms since the epoch).
    pub since_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub uptime_secs: Option<i64>,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    pub gateways_up: Option<i64>,
    pub gateways_total: Option<i64>,
    /// e.g. "CE 2.7.2".
    pub pfsense: Option<String>,
    pub agent_version: Option<String>,
    /// Since when its configuration has "Changed outside Mudmap" (unacknowledged), if it has.
    pub drift_since_ms: Option<i64>,
}

/// Devices of the organisation by health (all of them, whatever the filters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCounts {
    pub all: u64,
    pub online: u64,
    pub degraded: u64,
    pub offline: u64,
    pub quarantined: u64,
    pub inactive: u64,
    pub pending: u64,
    pub rebooting: u64,
    pub no_access: u64,
}

impl FleetCounts {
    pub fn of(&self, health: Health) -> u64 {
        match health {
            Health::Online => self.online,
            Health::Degraded => self.degraded,
            Health::Offline => self.offline,
            Health::Quarantined => self.quarantined,
            Health::Inactive => self.inactive,
            Health::Pending => self.pending,
            Health::Rebooting => self.rebooting,
            Health::NoAccess => self.no_access,
        }
    }
}

/// One page of the fleet table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPage {
    pub rows: Vec<FleetRow>,
    /// Devices matching the query (all pages).
    pub matching: u64,
    /// 0-based.
    pub page: u32,
    pub per_page: u32,
    pub counts: FleetCounts,
    /// Every tag in use in the organisation, for the filter.
    pub tags: Vec<String>,
    /// The organisation's groups, for the filter.
    pub groups: Vec<crate::groups::Group>,
    /// The server's clock when the page was read, for "12 s ago" (the same on the server's
    /// render and in the browser).
    pub now_ms: i64,
}

/// Columns the table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Name,
    Host,
    Version,
    State,
    LastSeen,
    Uptime,
    Cpu,
    Memory,
    Gateways,
    Agent,
}

impl SortKey {
    pub const ALL: [SortKey; 10] = [
        SortKey::Name,
        SortKey::Host,
        SortKey::Version,
        SortKey::State,
        SortKey::LastSeen,
        SortKey::Uptime,
        SortKey::Cpu,
        SortKey::Memory,
        SortKey::Gateways,
        SortKey::Agent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Host => "host",
            SortKey::Version => "version",
            SortKey::State => "state",
            SortKey::LastSeen => "last_seen",
            SortKey::Uptime => "uptime",
            SortKey::Cpu => "cpu",
            SortKey::Memory => "memory",
            SortKey::Gateways => "gateways",
            SortKey::Agent => "agent",
        }
    }

    pub fn parse(text: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// What the fleet page asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetQuery {
    /// Matched against name, host and tags, case-insensitively.
    pub search: String,
    pub health: Option<Health>,
    pub tag: Option<String>,
    /// A group id: only its devices.
    pub group: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub page: u32,
}

impl FleetQuery {
    /// The query from the form's fields; `health`, `tag`, `group` and `sort` empty mean "any"
    /// and "name"; an unknown state or column is refused with a sentence.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        search: String,
        health: &str,
        tag: &str,
        group: &str,
        sort: &str,
        descending: bool,
        page: u32,
    ) -> Result<Self, AppError> {
        let health = match health {
            "" => None,
            slug => Some(Health::parse(slug).ok_or_else(|| {
                AppError::Invalid(format!("\"{slug}\" is not a state to filter by."))
            })?),
        };
        let sort = match sort {
            "" => SortKey::Name,
            key => SortKey::parse(key).ok_or_else(|| {
                AppError::Invalid(format!("\"{key}\" is not a column to sort by."))
            })?,
        };
        Ok(FleetQuery {
            search: search.chars().take(100).collect(),
            health,
            tag: Some(tag.trim().to_lowercase()).filter(|t| !t.is_empty()),
            group: Some(group.trim().to_owned()).filter(|g| !g.is_empty()),
            sort,
            descending,
            page,
        })
    }
}

/// One page of the current organisation's fleet. `health`, `tag`, `group` and `sort` empty mean
/// "any" and "name"; unknown values are refused with a sentence.
#[server(prefix = "/api", endpoint = "fleet/list")]
pub async fn fleet(
    #[server(default)] search: String,
    #[server(default)] health: String,
    #[server(default)] tag: String,
    #[server(default)] group: String,
    #[server(default)] sort: String,
    #[server(default)] descending: bool,
    #[server(default)] page: u32,
) -> Result<FleetPage, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    let query = respond(FleetQuery::parse(
        search, &health, &tag, &group, &sort, descending, page,
    ))?;
    respond(services()?.devices.fleet(&caller, query).await)
}
