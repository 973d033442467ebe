-- Accounts, organisations, roles, sessions, the durable job queue and the audit log.
-- Ids are text (random or UUIDv7), times are Unix milliseconds, emails are stored lowercased.
-- Keep this file and its PostgreSQL twin identical apart from engine syntax.

CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL UNIQUE,
    password_hash     TEXT NOT NULL,
    email_verified_at BIGINT,
    -- Sealed (AES-256-GCM under the master key), base64; NULL when two-factor is off.
    totp_secret       TEXT,
    -- A secret being enrolled, sealed; moves to totp_secret once a code proves it.
    totp_pending      TEXT,
    totp_enabled_at   BIGINT,
    totp_last_step    BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE organisations (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- The cookie carries a random token; only its SHA-256 is stored, so a database leak grants no session.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id       TEXT REFERENCES organisations (id) ON DELETE SET NULL,
    -- 'full' once signed in; 'mfa' after the password when a second factor is still owed.
    stage        TEXT NOT NULL CHECK (stage IN ('full', 'mfa')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    client_addr  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Single-use mail tokens. The link carries id + HMAC(id) (server/src/crypto.rs); the token itself is never stored.
CREATE TABLE email_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);

CREATE TABLE invitations (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    invited_by  TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  BIGINT
);
CREATE INDEX invitations_by_org ON invitations (org_id, created_at);

-- Failed-sign-in counters per account ('account:<email>') and per client address ('addr:<ip>').
CREATE TABLE throttle (
    key          TEXT PRIMARY KEY NOT NULL,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- The durable job queue (server/src/jobs). A job is inserted in the same transaction as the write
-- that causes it. state: queued -> running -> done | failed (or back to queued for a retry).
-- A running job holds a lease; when the lease expires (its worker died) the job is claimable again.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    org_id       TEXT REFERENCES organisations (id) ON DELETE CASCADE,
    dedup_key    TEXT,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_queued ON jobs (run_at) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_by_org ON jobs (org_id, state, updated_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'done';
-- At most one pending job per deduplication key.
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key) WHERE dedup_key IS NOT NULL AND state IN ('queued', 'running');

CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY NOT NULL,
    org_id     TEXT REFERENCES organisations (id) ON DELETE CASCADE,
    actor_id   TEXT REFERENCES users (id) ON DELETE SET NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_by_org ON audit_log (org_id, created_at);
