//! Fleet-wide search: [`facts`] are read from each device's newest backed-up configuration when
//! its backup is stored, and [`query`] answers a parsed query from them with indexed SQL scoped to
//! the caller's organisation. Results name the device and the thing (a rule, an alias…) in
//! people's words, with the section it lives in.

pub mod facts;
pub mod query;

use std::collections::HashMap;
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

/// One row of a bound query, as a tuple.
async fn bound_as<T>(
    sql: &str,
    org_id: &str,
    binds: &[Bind],
    pool: &sqlx::AnyPool,
) -> Result<T, AppError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut query = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql)).bind(org_id);
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text.as_str()),
            Bind::Int(n) => query.bind(*n),
        };
    }
    query.fetch_one(pool).await.map_err(sql_failure)
}

impl SearchService {
    /// The section and words of each (device, thing) listed.
    async fn words(
        &self,
        found: &[(String, String, String)],
    ) -> Result<HashMap<(String, String), (String, String)>, AppError> {
        let mut words = HashMap::new();
        for chunk in found.chunks(100) {
            let mut sql = String::from(
                "SELECT device_id, entity, section, label FROM config_entities WHERE ",
            );
            for n in 0..chunk.len() {
                if n > 0 {
                    sql.push_str(" OR ");
                }
                sql.push_str(&format!(
                    "(device_id = ${} AND entity = ${})",
                    2 * n + 1,
                    2 * n + 2
                ));
            }
            let mut query =
                sqlx::query_as::<_, (String, String, String, String)>(sqlx::AssertSqlSafe(sql));
            for (device_id, entity, _) in chunk {
                query = query.bind(device_id.as_str()).bind(entity.as_str());
            }
            for (device_id, entity, section, label) in query
                .fetch_all(self.store.pool())
                .await
                .map_err(sql_failure)?
            {
                words.insert((device_id, entity), (section, label));
            }
        }
        Ok(words)
    }
}

#[async_trait::async_trait]
impl app::services::SearchService for SearchService {
    async fn search(&self, caller: &Caller, text: String) -> Result<SearchAnswer, AppError> {
        let org = caller.org()?;
        let started = Instant::now();
        let filters = parse_query(&text).map_err(AppError::Invalid)?;
        let pool = self.store.pool();
        // The listed kind of thing's filters are ranked by how many facts each matches (an
        // index-only count each), so the narrowest leads; the others by their usual selectivity.
        let lead_thing = filters[0].thing();
        let mut ranks: Vec<u64> = filters
            .iter()
            .map(|f| u64::from(query::cost(f)) << 40)
            .collect();
        if filters.iter().filter(|f| f.thing() == lead_thing).count() > 1 {
            for (n, filter) in filters.iter().enumerate() {
                if filter.thing() == lead_thing {
                    let counting = query::count(filter);
                    let (count,): (i64,) =
                        bound_as(&counting.sql, &org.id, &counting.binds, pool).await?;
                    // Equally broad filters keep their usual order.
                    ranks[n] =
                        (u64::try_from(count).unwrap_or(0) << 8) + u64::from(query::cost(filter));
                }
            }
        }
        let matches = query::matches(&filters, |n| ranks[n]);
        // The first page of matches by firewall name; their words are read for those only.
        let listed = format!(
            "SELECT m.device_id, m.entity, d.name FROM ({}) m \
             JOIN devices d ON d.id = m.device_id AND d.org_id = $1 \
             ORDER BY LOWER(d.name), d.id, LENGTH(m.entity), m.entity LIMIT {}",
            matches.sql,
            MAX_HITS + 1
        );
        let rows = bound(&listed, &org.id, &matches.binds)
            .fetch_all(pool)
            .await
            .map_err(sql_failure)?;
        let found = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("device_id")?,
                    r.try_get::<String, _>("entity")?,
                    r.try_get::<String, _>("name")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(sql_failure)?;
        let words = self.words(&found).await?;
        let mut hits: Vec<SearchHit> = found
            .into_iter()
            .map(|(device_id, entity, device_name)| {
                let (section, label) = words
                    .get(&(device_id.clone(), entity.clone()))
                    .cloned()
                    .unwrap_or_else(|| (String::new(), entity));
                SearchHit {
                    device_id,
                    device_name,
                    section,
                    label,
                }
            })
            .collect();
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
