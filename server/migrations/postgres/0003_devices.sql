-- Devices (pfSense firewalls) of an organisation. A device is 'inactive' until activated; its host
-- key is pinned at activation (SHA256 fingerprint as `ssh` prints it, plus the OpenSSH public key).
-- host is stored lowercased; (org, host, port) is unique.
CREATE TABLE devices (
    id                   TEXT PRIMARY KEY NOT NULL,
    org_id               TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    host                 TEXT NOT NULL,
    port                 BIGINT NOT NULL CHECK (port BETWEEN 1 AND 65535),
    -- Comma-separated, lowercased.
    tags                 TEXT NOT NULL DEFAULT '',
    notes                TEXT NOT NULL DEFAULT '',
    state                TEXT NOT NULL CHECK (state IN ('inactive', 'activating', 'active', 'quarantined')),
    host_key             TEXT,
    host_key_fingerprint TEXT,
    pfsense_version      TEXT,
    pfsense_edition      TEXT,
    agent_version        TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    activated_at         BIGINT
);
CREATE UNIQUE INDEX devices_address ON devices (org_id, host, port);
CREATE INDEX devices_by_org ON devices (org_id, name);
