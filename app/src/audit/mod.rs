//! The organisation's audit log: who did what to which thing, when — every change Mudmap makes,
//! device events, members and the organisation itself. Owners and admins read it on `/audit`,
//! filtered by who, what it was done to, the kind of action and the time, and export it as CSV.
//! Entries are never changed; each keeps the actor's e-mail as it was when written.

pub mod page;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Entries per page.
pub const PAGE: usize = 100;
/// Entries one export holds at most (narrow the filters for more).
pub const EXPORT_MAX: usize = 10_000;

/// The kinds of action offered as a filter: a prefix of the action's name, and its label.
pub const KINDS: [(&str, &str); 6] = [
    ("", "Every action"),
    ("device.", "Devices"),
    ("member.", "Members"),
    ("org.", "Organisation"),
    ("account.", "Sign-ins and accounts"),
    ("job.", "Jobs"),
];

/// What to show: every part is optional ('' or None: no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Part of the actor's e-mail.
    pub actor: String,
    /// Part of what it was done to (a device's name, a member's e-mail…).
    pub subject: String,
    /// An action's name or a prefix of it (`device.`).
    pub action: String,
    /// From this time (inclusive) to that one (exclusive), ms since the epoch.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Longest text a filter takes.
pub const MAX_FILTER_TEXT: usize = 200;

impl AuditFilter {
    /// The filter from the form's fields: dates are days (`2026-12-08`, UTC); `until` includes
    /// its day. A bad field is named in the error.
    pub fn from_form(
        actor: &str,
        subject: &str,
        action: &str,
        since: &str,
        until: &str,
    ) -> Result<Self, String> {
        for (name, text) in [
            ("Who", actor),
            ("Device or subject", subject),
            ("Action", action),
        ] {
            if text.chars().count() > MAX_FILTER_TEXT {
                return Err(format!(
                    "{name} is longer than {MAX_FILTER_TEXT} characters."
                ));
            }
        }
        let day = |name: &str, text: &str| -> Result<Option<i64>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            day_start_ms(text)
                .map(Some)
                .ok_or_else(|| format!("{name}: use a date such as 2026-12-08, not \"{text}\"."))
        };
        let since_ms = day("From", since)?;
        let until_ms = day("To", until)?.map(|start| start + 86_400_000);
        if let (Some(a), Some(b)) = (since_ms, until_ms) {
            if a >= b {
                return Err("From must be on or before To.".to_owned());
            }
        }
        Ok(Self {
            actor: actor.trim().to_lowercase(),
            subject: subject.trim().to_lowercase(),
            action: action.trim().to_owned(),
            since_ms,
            until_ms,
        })
    }
}

/// Midnight UTC of `YYYY-MM-DD`, in ms since the epoch.
pub fn day_start_ms(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > days_in_month[usize::try_from(month - 1).ok()?] {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

/// One entry as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub at_ms: i64,
    /// The actor's e-mail as it was; '' for Mudmap itself (a drift, a scheduled job).
    pub actor_email: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// A page of entries, newest first; `next` continues after the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

/// An export: the file's name and its CSV text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    pub file_name: String,
    pub csv: String,
    /// Entries in it, and whether the filters matched more than [`EXPORT_MAX`].
    pub rows: usize,
    pub truncated: bool,
}

#[server(prefix = "/api", endpoint = "audit/list")]
pub async fn list_audit(
    actor: String,
    subject: String,
    action: String,
    since: String,
    until: String,
    #[server(default)] after: String,
) -> Result<AuditPage, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    let filter = AuditFilter::from_form(&actor, &subject, &action, &since, &until)
        .map_err(AppError::Invalid);
    let filter = respond(filter)?;
    respond(services()?.audit.list(&caller, filter, after).await)
}

#[server(prefix = "/api", endpoint = "audit/export")]
pub async fn export_audit(
    actor: String,
    subject: String,
    action: String,
    since: String,
    until: String,
) -> Result<AuditExport, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    let filter = AuditFilter::from_form(&actor, &subject, &action, &since, &until)
        .map_err(AppError::Invalid);
    let filter = respond(filter)?;
    respond(services()?.audit.export(&caller, filter).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_midnights_and_bad_ones_are_named() {
        assert_eq!(day_start_ms("1970-01-01"), Some(0));
        assert_eq!(day_start_ms("2026-12-08"), Some(1_796_688_000_000));
        assert_eq!(day_start_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(day_start_ms("2023-02-29"), None);
        assert_eq!(day_start_ms("2026-13-01"), None);
        assert_eq!(day_start_ms("yesterday"), None);
        let f = AuditFilter::from_form(
            " Alice@Example.com ",
            "",
            "device.",
            "2026-12-01",
            "2026-12-01",
        )
        .unwrap();
        assert_eq!(f.actor, "alice@example.com");
        assert_eq!(
            f.until_ms.unwrap() - f.since_ms.unwrap(),
            86_400_000,
            "To includes its day"
        );
        let e = AuditFilter::from_form("", "", "", "12/01/2026", "").unwrap_err();
        assert!(e.starts_with("From: use a date"), "{e}");
        let e = AuditFilter::from_form("", "", "", "2026-12-02", "2026-12-01").unwrap_err();
        assert_eq!(e, "From must be on or before To.");
    }
}
