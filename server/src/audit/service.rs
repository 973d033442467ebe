//! Reading the audit log: a filtered page (newest first, continued by a cursor) or a CSV export,
//! for owners and admins of the caller's organisation only. Every query is bound to that
//! organisation; every value is bound, never spliced.

use std::sync::Arc;

use app::audit::{AuditEntry, AuditExport, AuditFilter, AuditPage, EXPORT_MAX, PAGE};
use app::error::AppError;
use app::roles::Role;
use app::services::Caller;

use crate::services::{sql_failure, store_failure};
use crate::store::{now_ms, Store};

pub struct AuditService {
    store: Store,
}

impl AuditService {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

/// `text` as a LIKE pattern matching it anywhere ('!' escapes).
fn anywhere(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('!', "!!")
            .replace('%', "!%")
            .replace('_', "!_")
    )
}

/// The rows matching `filter` after the cursor `after` ("<ms>:<id>"), newest first.
async fn rows(
    store: &Store,
    org_id: &str,
    filter: &AuditFilter,
    after: Option<(i64, String)>,
    limit: usize,
) -> Result<Vec<AuditEntry>, AppError> {
    let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
    // An action filter ending in '.' is a prefix ("device."), otherwise the exact action.
    let action_prefix = if filter.action.ends_with('.') {
        format!(
            "{}%",
            filter
                .action
                .replace('!', "!!")
                .replace('%', "!%")
                .replace('_', "!_")
        )
    } else {
        String::new()
    };
    let found: Vec<(String, i64, String, String, String, String)> = sqlx::query_as(
        "SELECT id, created_at, actor_email, action, subject, detail FROM audit_log \
         WHERE org_id = $1 \
         AND ($2 = '' OR LOWER(actor_email) LIKE $3 ESCAPE '!') \
         AND ($4 = '' OR LOWER(subject) LIKE $5 ESCAPE '!') \
         AND ($6 = '' OR action = $6 OR ($7 <> '' AND action LIKE $7 ESCAPE '!')) \
         AND created_at >= $8 AND created_at < $9 \
         AND (created_at < $10 OR (created_at = $10 AND id < $11)) \
         ORDER BY created_at DESC, id DESC LIMIT $12",
    )
    .bind(org_id)
    .bind(&filter.actor)
    .bind(anywhere(&filter.actor))
    .bind(&filter.subject)
    .bind(anywhere(&filter.subject))
    .bind(&filter.action)
    .bind(action_prefix)
    .bind(filter.since_ms.unwrap_or(i64::MIN))
    .bind(filter.until_ms.unwrap_or(i64::MAX))
    .bind(after_ms)
    .bind(if after_id.is_empty() {
        "\u{10FFFF}".to_owned()
    } else {
        after_id
    })
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(store.pool())
    .await
    .map_err(sql_failure)?;
    Ok(found
        .into_iter()
        .map(
            |(id, at_ms, actor_email, action, subject, detail)| AuditEntry {
                id,
                at_ms,
                actor_email,
                action,
                subject,
                detail,
            },
        )
        .collect())
}

/// A page cursor: "<ms>:<id>".
fn cursor(text: &str) -> Result<Option<(i64, String)>, AppError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.split_once(':')
        .and_then(|(ms, id)| Some((ms.parse().ok()?, id.to_owned())))
        .filter(|(_, id)| id.len() <= 64)
        .map(Some)
        .ok_or_else(|| {
            AppError::Invalid(
                "That page of the audit log does not exist: start again from the newest."
                    .to_owned(),
            )
        })
}

/// One CSV cell: quoted when needed, and a cell a spreadsheet would run as a formula is
/// prefixed with an apostrophe.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `ms` as `2026-12-08 14:03:07` (UTC).
fn utc(ms: i64) -> String {
    let day = app::ui::format::utc_datetime(ms);
    format!(
        "{} {}",
        day.get(..10).unwrap_or_default(),
        app::ui::format::clock(ms).trim_end_matches(" UTC")
    )
}

#[async_trait::async_trait]
impl app::services::AuditService for AuditService {
    async fn list(
        &self,
        caller: &Caller,
        filter: AuditFilter,
        after: String,
    ) -> Result<AuditPage, AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let after = cursor(&after)?;
        let mut entries = rows(&self.store, &org.id, &filter, after, PAGE + 1).await?;
        let next = if entries.len() > PAGE {
            entries.truncate(PAGE);
            entries.last().map(|e| format!("{}:{}", e.at_ms, e.id))
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }

    async fn export(&self, caller: &Caller, filter: AuditFilter) -> Result<AuditExport, AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let mut entries = rows(&self.store, &org.id, &filter, None, EXPORT_MAX + 1).await?;
        let truncated = entries.len() > EXPORT_MAX;
        entries.truncate(EXPORT_MAX);
        let mut csv = String::from("time (UTC),actor,action,subject,detail\r\n");
        for e in &entries {
            let actor = if e.actor_email.is_empty() {
                "Mudmap"
            } else {
                &e.actor_email
            };
            csv.push_str(&format!(
                "{},{},{},{},{}\r\n",
                cell(&utc(e.at_ms)),
                cell(actor),
                cell(&e.action),
                cell(&e.subject),
                cell(&e.detail)
            ));
        }
        let mut tx = self.store.begin().await.map_err(store_failure)?;
        crate::audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "audit.exported",
            &org.name,
            format!("{} entries", entries.len()),
        )
        .await?;
        tx.commit().await.map_err(sql_failure)?;
        let now = utc(now_ms());
        let (day, time) = now.split_once(' ').unwrap_or((&now, ""));
        Ok(AuditExport {
            file_name: format!(
                "audit-{}-{}.csv",
                day.replace('-', ""),
                time.replace(':', "")
            ),
            csv,
            rows: entries.len(),
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1+2"), "'-1+2");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_688_000_000 + 3_723_000), "2026-12-08 01:02:03");
        assert_eq!(utc(1_709_164_800_000), "2024-02-29 00:00:00");
    }

    #[test]
    fn a_cursor_is_checked() {
        assert_eq!(cursor("").unwrap(), None);
        assert_eq!(cursor("12:abc").unwrap(), Some((12, "abc".to_owned())));
        assert!(cursor("nope").is_err());
    }
}
