-- Instance-wide key/value facts (instance id, first start time). Times are Unix milliseconds.
CREATE TABLE meta (
    key        TEXT PRIMARY KEY NOT NULL,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
