-- Fleet-wide search (issue "Configuration backups…", part 5): facts read from each device's newest
-- backed-up configuration, replaced whenever a backup brings a new one, so a search answers from
-- indexed tables instead of opening configurations.
CREATE TABLE config_facts (
    org_id    TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- What the fact is about: "rule:<n>", "alias:<name>", "user:<name>", "system"…
    entity    TEXT NOT NULL,
    -- rule.action, rule.port, alias.entry, pfsense.version…
    field     TEXT NOT NULL,
    -- Lowercased text; '' for numeric facts.
    value     TEXT NOT NULL,
    -- A numeric range (ports; a version as one number); 0, 0 for text facts.
    lo        BIGINT NOT NULL DEFAULT 0,
    hi        BIGINT NOT NULL DEFAULT 0,
    -- Probes by (device, thing, field) read the row itself (clustered on SQLite).
    PRIMARY KEY (device_id, entity, field, value, lo, hi)
);
-- A search's leading filter scans one of these; both carry the key, so the scan reads no rows.
CREATE INDEX config_facts_by_value ON config_facts (org_id, field, value) INCLUDE (device_id, entity);
CREATE INDEX config_facts_by_number ON config_facts (org_id, field, lo, hi) INCLUDE (device_id, entity);

-- What a result shows of each thing: its section and its words.
CREATE TABLE config_entities (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    entity    TEXT NOT NULL,
    section   TEXT NOT NULL,
    label     TEXT NOT NULL,
    PRIMARY KEY (device_id, entity)
);

-- Which configuration each device's facts were read from.
CREATE TABLE config_fact_sources (
    device_id   TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    revision_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    read_at     BIGINT NOT NULL
);
