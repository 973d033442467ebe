-- Gateways the monitor has seen down, per device, for the gateway down / back up mails: when the
-- episode began and when its "down" mail went out (so "back up" follows only a sent "down").
-- A row lives while the gateway is down; it is deleted when the gateway is up again.
CREATE TABLE gateway_alerts (
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    gateway    TEXT NOT NULL,
    down_since BIGINT NOT NULL,
    mailed_at  BIGINT,
    PRIMARY KEY (device_id, gateway)
);
