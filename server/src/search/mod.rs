//! Fleet-wide search: [`facts`] are read from each device's newest backed-up configuration when
//! its backup is stored, and [`query`] answers a parsed query from them with indexed SQL scoped to
//! the caller's organisation. Results name the device and the thing (a rule, an alias…) in
//! people's words, with the section it lives in.

pub mod facts;
pub mod query;

use std::sync::Arc;
use std::time::Instant;

use app::error::AppError;
use app::search::{parse_query, SearchAnswer, SearchHit, MAX_HITS};
use app::services::Caller;
use sqlx::Row;

use crate::services::sql_failure;
use crate::store::Store;
use query::Bind;

pub struct SearchService {
    store: Store,
}

impl SearchService {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

/// Bind `binds` after the organisation.
fn bound<'q>(
    sql: &'q str,
    org_id: &'q str,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org_id);
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text.as_str()),
            Bind::Int(n) => query.bind(*n),
        };
    }
    query
}

#[async_trait::async_trait]
impl app::services::SearchService for SearchService {
    async fn search(&self, caller: &Caller, text: String) -> Result<SearchAnswer, AppError> {
        let org = caller.org()?;
        let started = Instant::now();
        let filters = parse_query(&text).map_err(AppError::Invalid)?;
        let matches = query::matches(&filters);
        let listed = format!(
            "SELECT m.device_id, d.name, e.section, e.label FROM ({}) m \
             JOIN devices d ON d.id = m.device_id AND d.org_id = $1 \
             JOIN config_entities e ON e.device_id = m.device_id AND e.entity = m.entity \
             ORDER BY LOWER(d.name), d.id, e.section, LENGTH(e.entity), e.entity LIMIT {}",
            matches.sql,
            MAX_HITS + 1
        );
        let pool = self.store.pool();
        let rows = bound(&listed, &org.id, &matches.binds)
            .fetch_all(pool)
            .await
            .map_err(sql_failure)?;
        let mut hits = rows
            .iter()
            .map(|r| {
                Ok(SearchHit {
                    device_id: r.try_get("device_id")?,
                    device_name: r.try_get("name")?,
                    section: r.try_get("section")?,
                    label: r.try_get("label")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(sql_failure)?;
        let more = hits.len() > MAX_HITS;
        hits.truncate(MAX_HITS);
        let devices: i64 = if more {
            let counted = format!(
                "SELECT COUNT(DISTINCT m.device_id) FROM ({}) m",
                matches.sql
            );
            bound(&counted, &org.id, &matches.binds)
                .fetch_one(pool)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(sql_failure)?
        } else {
            let mut ids: Vec<&str> = hits.iter().map(|h| h.device_id.as_str()).collect();
            ids.dedup();
            i64::try_from(ids.len()).unwrap_or(0)
        };
        let (searched,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM config_fact_sources WHERE org_id = $1")
                .bind(&org.id)
                .fetch_one(pool)
                .await
                .map_err(sql_failure)?;
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(org.id = %org.id, filters = filters.len(), hits = hits.len(), took_ms, "fleet searched");
        Ok(SearchAnswer {
            hits,
            devices: u64::try_from(devices).unwrap_or(0),
            more,
            searched: u64::try_from(searched).unwrap_or(0),
            took_ms,
        })
    }
}
