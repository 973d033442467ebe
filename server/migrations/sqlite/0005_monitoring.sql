-- What the monitor knows of each managed device: the latest status (JSON, as the agent sent it),
-- its health (online, degraded with a reason, offline since when) and the figures the fleet table
-- sorts by; and a bounded history of samples (24 h at poll resolution; older rows are dropped).
CREATE TABLE device_status (
    device_id      TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    health         TEXT NOT NULL CHECK (health IN ('online', 'degraded', 'offline', 'rebooting', 'unknown')),
    health_reason  TEXT NOT NULL DEFAULT '',
    health_since   BIGINT NOT NULL,
    last_seen_at   BIGINT,
    last_error     TEXT,
    -- health_since of the offline episode whose "offline" mail went out (so "back" follows it).
    offline_mailed BIGINT,
    status         TEXT,
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
CREATE INDEX device_status_by_org ON device_status (org_id, health);

CREATE TABLE device_samples (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    at        BIGINT NOT NULL,
    cpu_pct   REAL,
    mem_pct   REAL,
    disk_pct  REAL,
    rtt_ms    REAL,
    loss_pct  REAL,
    rx_bps    REAL,
    tx_bps    REAL,
    PRIMARY KEY (device_id, at)
);
CREATE INDEX device_samples_by_time ON device_samples (at);
