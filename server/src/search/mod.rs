//! Fleet-wide search: [`facts`] are read from each device's newest backed-up configuration when
//! its backup is stored (one [`record`] per device), and an organisation's search is answered
//! from its in-memory [`index`], which first catches up with the database. Results name the
//! device and the thing (a rule, an alias…) in people's words, with the section it lives in.

pub mod facts;
pub mod index;
pub mod record;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use app::error::AppError;
use app::search::{parse_query, SearchAnswer, SearchHit, MAX_HITS};
use app::services::Caller;

use crate::services::sql_failure;
use crate::store::Store;
use index::{Cache, Fingerprint, Slot};

/// Records read and applied to an index at a time.
const LOAD_PAGE: i64 = 500;

pub struct SearchService {
    store: Store,
    cache: Cache,
}

impl SearchService {
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self {
            store,
            cache: Cache::default(),
        })
    }

    /// What the database says the organisation's facts and devices are now.
    async fn fingerprint(&self, org_id: &str) -> Result<Fingerprint, AppError> {
        let (sources, max_seq, devices, devices_changed): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM config_fact_sources WHERE org_id = $1), \
             (SELECT COALESCE(MAX(seq), 0) FROM config_fact_sources WHERE org_id = $1), \
             (SELECT COUNT(*) FROM devices WHERE org_id = $1), \
             (SELECT COALESCE(MAX(updated_at), 0) FROM devices WHERE org_id = $1)",
        )
        .bind(org_id)
        .fetch_one(self.store.pool())
        .await
        .map_err(sql_failure)?;
        Ok(Fingerprint {
            sources,
            max_seq,
            devices,
            devices_changed,
        })
    }

    /// Bring the organisation's index up to `now` (only one search of an organisation loads at
    /// a time; the others wait for it and find it current).
    async fn catch_up(
        &self,
        org_id: &str,
        slot: &Arc<Slot>,
        now: Fingerprint,
    ) -> Result<(), AppError> {
        let _loading = slot.catching_up.lock().await;
        let (held, rebuild) = {
            let index = slot.read();
            (index.fingerprint, index.needs_rebuild())
        };
        if held == now {
            return Ok(());
        }
        let started = Instant::now();
        if rebuild {
            *slot.write() = index::OrgIndex::default();
        }
        let whole = slot.read().max_seq == 0;
        // Records written since the index last looked, a page at a time, decoded off the async
        // workers.
        let mut loaded = 0usize;
        loop {
            let after = slot.read().max_seq;
            let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT device_id, seq, facts FROM config_fact_sources \
                 WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(org_id)
            .bind(after)
            .bind(LOAD_PAGE)
            .fetch_all(self.store.pool())
            .await
            .map_err(sql_failure)?;
            let last_page = rows.len() < LOAD_PAGE as usize;
            loaded += rows.len();
            let slot_for_page = slot.clone();
            let org = org_id.to_owned();
            tokio::task::spawn_blocking(move || {
                // Inflated outside the lock; read and put under it (texts borrow the bytes).
                let inflated: Vec<_> = rows
                    .into_iter()
                    .filter_map(|(device_id, seq, bytes)| match record::inflate(&bytes) {
                        Ok(raw) => Some((device_id, seq, raw)),
                        Err(e) => {
                            tracing::warn!(org.id = %org, device.id = %device_id, error = %e, "search facts left out");
                            None
                        }
                    })
                    .collect();
                let mut index = slot_for_page.write();
                for (device_id, seq, raw) in &inflated {
                    match record::parse(raw) {
                        Ok(record) => index.put(device_id, *seq, record),
                        Err(e) => {
                            tracing::warn!(org.id = %org, device.id = %device_id, error = %e, "search facts left out");
                        }
                    }
                }
            })
            .await
            .map_err(|e| AppError::Internal(format!("search index load failed: {e}")))?;
            if last_page {
                break;
            }
        }
        // A device gone (deleted) leaves fewer sources than the index holds.
        if i64::try_from(slot.read().devices_held()).unwrap_or(i64::MAX) != now.sources {
            let ids: Vec<(String,)> =
                sqlx::query_as("SELECT device_id FROM config_fact_sources WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(sql_failure)?;
            let ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
            slot.write().retain(&ids);
        }
        if (held.devices, held.devices_changed) != (now.devices, now.devices_changed) || loaded > 0
        {
            let devices: Vec<(String, String)> =
                sqlx::query_as("SELECT id, name FROM devices WHERE org_id = $1")
                    .bind(org_id)
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(sql_failure)?;
            slot.write().set_devices(devices);
        }
        let mut index = slot.write();
        if whole {
            index.built();
        }
        index.fingerprint = now;
        let (facts, texts) = index.size();
        tracing::info!(
            org.id = %org_id,
            records = loaded,
            devices = index.devices_held(),
            facts,
            texts,
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "search index caught up"
        );
        Ok(())
    }
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
        let now = self.fingerprint(&org.id).await?;
        let slot = self.cache.slot(&org.id);
        if slot.read().fingerprint != now {
            if let Err(e) = self.catch_up(&org.id, &slot, now).await {
                // A half-caught-up index is rebuilt whole next time.
                self.cache.drop_org(&org.id);
                return Err(e);
            }
        }
        let found = tokio::task::spawn_blocking(move || slot.read().find(&filters, MAX_HITS))
            .await
            .map_err(|e| AppError::Internal(format!("search failed: {e}")))?;
        let listed: Vec<(String, String, String)> = found
            .hits
            .iter()
            .map(|h| {
                (
                    h.device_id.to_string(),
                    h.key.to_string(),
                    h.device_name.to_string(),
                )
            })
            .collect();
        let words = self.words(&listed).await?;
        let hits = listed
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
            .collect::<Vec<_>>();
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(org.id = %org.id, hits = hits.len(), devices = found.devices, took_ms, "fleet searched");
        Ok(SearchAnswer {
            hits,
            devices: found.devices,
            more: found.more,
            searched: u64::try_from(now.sources).unwrap_or(0),
            took_ms,
        })
    }
}
