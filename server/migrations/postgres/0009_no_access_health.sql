-- A device whose key logs in without root (activated before agent 1.2.0, or its key moved to
-- another account) shows as 'no_access' until it is re-activated (decision 0007).
ALTER TABLE device_status DROP CONSTRAINT device_status_health_check;
ALTER TABLE device_status ADD CONSTRAINT device_status_health_check
    CHECK (health IN ('online', 'degraded', 'offline', 'rebooting', 'unknown', 'no_access'));
