//! Instance status: version, database engine and schema, identity, uptime.

use std::time::Instant;

use app::error::AppError;
use app::system::ServerStatus;

use super::store_failure;
use crate::ssh::Engine;
use crate::store::{now_ms, Store};

pub struct SystemService {
    store: Store,
    engine: Engine,
    instance_id: String,
    started: Instant,
}

impl SystemService {
    pub fn new(store: Store, engine: Engine, instance_id: String) -> Self {
        Self {
            store,
            engine,
            instance_id,
            started: Instant::now(),
        }
    }
}

#[async_trait::async_trait]
impl app::services::SystemService for SystemService {
    async fn status(&self) -> Result<ServerStatus, AppError> {
        let started = Instant::now();
        self.store.ping().await.map_err(store_failure)?;
        let database_latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let schema_version = self.store.schema_version().await.map_err(store_failure)?;
        Ok(ServerStatus {
            version: crate::VERSION.to_owned(),
            database: self.store.backend().name().to_owned(),
            schema_version,
            instance_id: self.instance_id.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
            server_time_ms: now_ms(),
            database_latency_us,
            engine_devices: self.engine.device_count(),
            engine_connected: self.engine.connected_count(),
        })
    }
}
