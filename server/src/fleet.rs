//! The fleet view's queries: one page of an organisation's devices joined with the monitor's
//! stored status, filtered, sorted and counted in the database (so the page costs the same at 50
//! devices and at 10,000).

use app::error::AppError;
use app::fleet::{FleetCounts, FleetPage, FleetQuery, FleetRow, SortKey, PER_PAGE};
use app::ui::badge::Health;
use sqlx::Row;

use crate::devices::{pfsense_label, port_of, tags_of};
use crate::services::sql_failure;
use crate::store::Store;

/// Every device of the organisation with what the table shows; `shown` is the state column: the
/// health for an active device ("pending" before its first poll), else the record's state.
const FLEET: &str =
    "SELECT d.id, d.name, d.host, d.port, d.tags, d.pfsense_version, d.pfsense_edition, \
     d.agent_version, s.health_reason, s.health_since, s.last_seen_at, s.uptime_secs, s.cpu_pct, \
     s.mem_pct, s.gateways_up, s.gateways_total, c.since AS drift_since, \
     CASE WHEN d.state = 'active' THEN COALESCE(s.health, 'pending') \
          WHEN d.state = 'quarantined' THEN 'quarantined' ELSE 'inactive' END AS shown \
     FROM devices d LEFT JOIN device_status s ON s.device_id = d.id \
     LEFT JOIN config_drift c ON c.device_id = d.id WHERE d.org_id = $1";

/// The query's filters over [`FLEET`] (aliased `f`): $2 search pattern, $3 state, $4 tag pattern,
/// $5 group id.
const FILTERS: &str = "($2 = '' OR LOWER(f.name) LIKE $2 ESCAPE '!' OR LOWER(f.host) LIKE $2 ESCAPE '!' \
     OR f.tags LIKE $2 ESCAPE '!') AND ($3 = '' OR f.shown = $3) AND ($4 = '' OR (',' || f.tags || ',') LIKE $4 ESCAPE '!') \
     AND ($5 = '' OR EXISTS (SELECT 1 FROM device_group_members m WHERE m.group_id = $5 AND m.device_id = f.id))";

fn order_by(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Name => "LOWER(f.name)",
        SortKey::Host => "f.host",
        SortKey::Version => "f.pfsense_version",
        SortKey::State => "f.shown",
        SortKey::LastSeen => "f.last_seen_at",
        SortKey::Uptime => "f.uptime_secs",
        SortKey::Cpu => "f.cpu_pct",
        SortKey::Memory => "f.mem_pct",
        SortKey::Gateways => "f.gateways_up",
        SortKey::Agent => "f.agent_version",
    }
}

/// `text` with LIKE's wildcards escaped (escape character `!`).
fn escape_like(text: &str) -> String {
    text.replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_")
}

/// `%text%` for LIKE, lowercased, wildcards in `text` matched literally.
fn contains_pattern(text: &str) -> String {
    format!("%{}%", escape_like(&text.to_lowercase()))
}

fn row(row: &sqlx::any::AnyRow) -> Result<FleetRow, sqlx::Error> {
    let tags: String = row.try_get("tags")?;
    let shown: String = row.try_get("shown")?;
    let version: Option<String> = row.try_get("pfsense_version")?;
    let edition: Option<String> = row.try_get("pfsense_edition")?;
    Ok(FleetRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: port_of(row)?,
        tags: tags_of(&tags),
        health: Health::parse(&shown).unwrap_or(Health::Pending),
        reason: row
            .try_get::<Option<String>, _>("health_reason")?
            .unwrap_or_default(),
        since_ms: row.try_get("health_since")?,
        last_seen_ms: row.try_get("last_seen_at")?,
        uptime_secs: row.try_get("uptime_secs")?,
        cpu_pct: row.try_get("cpu_pct")?,
        mem_pct: row.try_get("mem_pct")?,
        gateways_up: row.try_get("gateways_up")?,
        gateways_total: row.try_get("gateways_total")?,
        pfsense: pfsense_label(version, edition),
        agent_version: row.try_get("agent_version")?,
        drift_since_ms: row.try_get("drift_since")?,
    })
}

/// One page of `org_id`'s fleet.
pub async fn page(store: &Store, org_id: &str, query: &FleetQuery) -> Result<FleetPage, AppError> {
    let search = if query.search.trim().is_empty() {
        String::new()
    } else {
        contains_pattern(query.search.trim())
    };
    let health = query.health.map(Health::slug).unwrap_or_default();
    let tag = query
        .tag
        .as_deref()
        .map(|t| {
            format!(
                "%,{},%",
                t.replace('!', "!!").replace('%', "!%").replace('_', "!_")
            )
        })
        .unwrap_or_default();
    let group = query.group.as_deref().unwrap_or_default();
    let direction = if query.descending { "DESC" } else { "ASC" };
    let column = order_by(query.sort);
    // Empty values last whichever the direction, on both engines.
    let sql = format!(
        "SELECT f.* FROM ({FLEET}) f WHERE {FILTERS} \
         ORDER BY ({column} IS NULL), {column} {direction}, LOWER(f.name), f.id LIMIT $6 OFFSET $7"
    );
    let offset = i64::from(query.page) * i64::from(PER_PAGE);
    let pool = store.pool();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org_id)
        .bind(&search)
        .bind(health)
        .bind(&tag)
        .bind(group)
        .bind(i64::from(PER_PAGE))
        .bind(offset)
        .fetch_all(pool)
        .await
        .map_err(sql_failure)?;
    let rows = rows
        .iter()
        .map(row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_failure)?;
    // Counts by state and the number matching the query, in one pass over the organisation.
    let by_state_sql = format!(
        "SELECT f.shown, COUNT(*), SUM(CASE WHEN {FILTERS} THEN 1 ELSE 0 END) \
         FROM ({FLEET}) f GROUP BY f.shown"
    );
    let by_state: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(by_state_sql))
        .bind(org_id)
        .bind(&search)
        .bind(health)
        .bind(&tag)
        .bind(group)
        .fetch_all(pool)
        .await
        .map_err(sql_failure)?;
    let matching: i64 = by_state.iter().map(|(_, _, m)| m).sum();
    let mut counts = FleetCounts::default();
    for (shown, n, _) in by_state {
        let n = u64::try_from(n).unwrap_or(0);
        counts.all += n;
        match Health::parse(&shown) {
            Some(Health::Online) => counts.online += n,
            Some(Health::Degraded) => counts.degraded += n,
            Some(Health::Offline) => counts.offline += n,
            Some(Health::Quarantined) => counts.quarantined += n,
            Some(Health::Inactive) => counts.inactive += n,
            Some(Health::Rebooting) => counts.rebooting += n,
            Some(Health::NoAccess) => counts.no_access += n,
            Some(Health::Pending) | None => counts.pending += n,
        }
    }
    let tag_rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT tags FROM devices WHERE org_id = $1 AND tags <> ''")
            .bind(org_id)
            .fetch_all(pool)
            .await
            .map_err(sql_failure)?;
    let mut tags: Vec<String> = tag_rows.iter().flat_map(|(t,)| tags_of(t)).collect();
    tags.sort();
    tags.dedup();
    Ok(FleetPage {
        rows,
        matching: u64::try_from(matching).unwrap_or(0),
        page: query.page,
        per_page: PER_PAGE,
        counts,
        tags,
        groups: crate::groups::groups_of(store, org_id).await?,
        now_ms: crate::store::now_ms(),
    })
}

/// One device in depth (the caller has already found it in their organisation): its stored status and the last 24 hours of samples, thinned.
pub async fn detail(
    store: &Store,
    org_id: &str,
    device: app::devices::Device,
) -> Result<app::devices::detail::DeviceDetail, AppError> {
    use app::devices::detail::{thin, DeviceDetail, Sample, HISTORY_POINTS};
    use app::devices::DeviceState;

    let device_id = device.id.clone();
    let pool = store.pool();
    let status_row = sqlx::query(
        "SELECT s.health, s.health_reason, s.health_since, s.last_seen_at, d.status \
         FROM device_status s LEFT JOIN device_status_docs d ON d.device_id = s.device_id \
         WHERE s.device_id = $1",
    )
    .bind(&device.id)
    .fetch_optional(pool)
    .await
    .map_err(sql_failure)?;
    let now = crate::store::now_ms();
    let (health, reason, since_ms, last_seen_ms, status) = match &status_row {
        Some(r) => {
            let health: String = r.try_get("health").map_err(sql_failure)?;
            let status: Option<String> = r.try_get("status").map_err(sql_failure)?;
            (
                Health::parse(&health).unwrap_or(Health::Pending),
                r.try_get::<String, _>("health_reason")
                    .map_err(sql_failure)?,
                r.try_get("health_since").map_err(sql_failure)?,
                r.try_get("last_seen_at").map_err(sql_failure)?,
                status.and_then(|s| serde_json::from_str(&s).ok()),
            )
        }
        None => (Health::Pending, String::new(), None, None, None),
    };
    let health = match device.state {
        DeviceState::Active => health,
        DeviceState::Quarantined => Health::Quarantined,
        DeviceState::Inactive | DeviceState::Activating => Health::Inactive,
    };
    let rows = sqlx::query(
        "SELECT at, cpu_pct, mem_pct, disk_pct, rtt_ms, loss_pct, rx_bps, tx_bps FROM device_samples \
         WHERE device_id = $1 AND at >= $2 ORDER BY at",
    )
    .bind(&device.id)
    .bind(now - 24 * 3_600_000)
    .fetch_all(pool)
    .await
    .map_err(sql_failure)?;
    let samples = rows
        .iter()
        .map(|r| {
            Ok(Sample {
                at_ms: r.try_get("at")?,
                cpu_pct: r.try_get("cpu_pct")?,
                mem_pct: r.try_get("mem_pct")?,
                disk_pct: r.try_get("disk_pct")?,
                rtt_ms: r.try_get("rtt_ms")?,
                loss_pct: r.try_get("loss_pct")?,
                rx_bps: r.try_get("rx_bps")?,
                tx_bps: r.try_get("tx_bps")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(sql_failure)?;
    Ok(DeviceDetail {
        device,
        health,
        reason,
        since_ms,
        last_seen_ms,
        now_ms: now,
        status,
        history: thin(samples, HISTORY_POINTS),
        drift: crate::backups::drift::of_device(store, org_id, &device_id)
            .await
            .map_err(crate::services::store_failure)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_cannot_smuggle_wildcards() {
        assert_eq!(contains_pattern("Acme_HQ"), "%acme!_hq%");
        assert_eq!(contains_pattern("100%"), "%100!%%");
        assert_eq!(contains_pattern("a!b"), "%a!!b%");
    }
}
