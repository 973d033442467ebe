-- Fleet-wide search answers from an in-memory index (server/src/search/index.rs) instead of
-- per-fact rows: broad queries over 10,000 firewalls took seconds in SQL (decision 0011). Each
-- device's facts become one compressed record on its source row, numbered by a per-organisation
-- sequence so every server process sees what changed since it last looked.
DROP TABLE config_facts;

-- Records are rebuilt from each device's next backup (the schedule takes one at once for a
-- device with no record), so the words they pair with go too.
DELETE FROM config_entities;
DELETE FROM config_fact_sources;
ALTER TABLE config_fact_sources ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE config_fact_sources ADD COLUMN facts BYTEA NOT NULL DEFAULT ''::bytea;
CREATE INDEX config_fact_sources_by_seq ON config_fact_sources (org_id, seq);
-- A search's fingerprint reads each organisation's newest device change.
CREATE INDEX devices_by_org_updated ON devices (org_id, updated_at);

-- Each organisation's last record number.
CREATE TABLE search_generations (
    org_id TEXT PRIMARY KEY NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL
);
