-- Drift: a configuration changed outside Mudmap (issue "Configuration backups…", part 4). One mark
-- per device while it is unacknowledged: set when a drift backup differs in substance from the
-- revision before it, kept (with its first `since`) while further outside changes arrive, cleared
-- by "Acknowledge" (audited).
CREATE TABLE config_drift (
    device_id        TEXT PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    -- The newest revision before the first outside change (what Mudmap last knew), if still kept.
    base_revision_id TEXT,
    -- The newest revision taken because of an outside change.
    revision_id      TEXT NOT NULL,
    since            BIGINT NOT NULL,
    seen_at          BIGINT NOT NULL,
    -- pfSense's record of who made the newest outside change.
    pf_username      TEXT NOT NULL DEFAULT '',
    pf_description   TEXT NOT NULL DEFAULT '',
    -- When a mail about this mark went out (none yet: a later sweep makes sure one does).
    mailed_at        BIGINT
);
CREATE INDEX config_drift_by_org ON config_drift (org_id);
