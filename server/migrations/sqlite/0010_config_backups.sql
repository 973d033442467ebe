-- Configuration backups (issue "Configuration backups, history…"). Each backup is a revision row;
-- the configuration itself is stored once per organisation and content hash (deduplicated), deflated
-- and sealed with the master key (AES-256-GCM; associated data: organisation id and hash), because a
-- pfSense configuration holds password hashes, pre-shared keys and private keys.
CREATE TABLE config_blobs (
    org_id      TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    -- sha256:<hex> of the exact bytes of config.xml, as the agent reports it.
    config_hash TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    stored      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, config_hash)
);

CREATE TABLE config_revisions (
    id             TEXT PRIMARY KEY NOT NULL,
    device_id      TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    taken_at       BIGINT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('activation', 'scheduled', 'before_change', 'after_change', 'drift', 'manual')),
    config_hash    TEXT NOT NULL,
    size           BIGINT NOT NULL,
    -- pfSense's own record of the change that made this configuration (<revision>).
    pf_time        BIGINT,
    pf_description TEXT NOT NULL DEFAULT '',
    pf_username    TEXT NOT NULL DEFAULT '',
    -- Who asked for it (a manual backup), if anyone.
    actor_id       TEXT
);
CREATE INDEX config_revisions_by_device ON config_revisions (device_id, taken_at);
