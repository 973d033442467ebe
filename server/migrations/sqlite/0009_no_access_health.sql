-- A device whose key logs in without root (activated before agent 1.2.0, or its key moved to
-- another account) shows as 'no_access' until it is re-activated (decision 0007). SQLite cannot
-- change a CHECK constraint in place, so device_status is rebuilt with the same columns.
CREATE TABLE device_status_new (
    device_id      TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    health         TEXT NOT NULL CHECK (health IN ('online', 'degraded', 'offline', 'rebooting', 'unknown', 'no_access')),
    health_reason  TEXT NOT NULL DEFAULT '',
    health_since   BIGINT NOT NULL,
    last_seen_at   BIGINT,
    last_error     TEXT,
    offline_mailed BIGINT,
    uptime_secs    BIGINT,
    cpu_pct        REAL,
    mem_pct        REAL,
    disk_pct       REAL,
    rtt_ms         REAL,
    loss_pct       REAL,
    gateways_up    BIGINT,
    gateways_total BIGINT,
    updated_at     BIGINT NOT NULL
);

INSERT INTO device_status_new (device_id, org_id, health, health_reason, health_since, last_seen_at,
    last_error, offline_mailed, uptime_secs, cpu_pct, mem_pct, disk_pct, rtt_ms, loss_pct,
    gateways_up, gateways_total, updated_at)
SELECT device_id, org_id, health, health_reason, health_since, last_seen_at, last_error,
    offline_mailed, uptime_secs, cpu_pct, mem_pct, disk_pct, rtt_ms, loss_pct, gateways_up,
    gateways_total, updated_at FROM device_status;

DROP TABLE device_status;
ALTER TABLE device_status_new RENAME TO device_status;
CREATE INDEX device_status_by_org ON device_status (org_id, health);
