-- Device groups: organisation-defined named sets of devices (e.g. one per customer or site), used
-- to filter the fleet and, later, as rollout targets. A device may be in several groups. Names are
-- unique per organisation, case-insensitively (name_key = lower(name)).
CREATE TABLE device_groups (
    id         TEXT PRIMARY KEY NOT NULL,
    org_id     TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX device_groups_name ON device_groups (org_id, name_key);

CREATE TABLE device_group_members (
    group_id  TEXT NOT NULL REFERENCES device_groups (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX device_group_members_by_device ON device_group_members (device_id);
