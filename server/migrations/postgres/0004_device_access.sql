-- What activation gives Mudmap on a device: the service account's name, its private key sealed
-- with the instance master key (AES-256-GCM, base64; the device id is the associated data) and its
-- public key (OpenSSH format, so the demo and cleanup can name it). presented_fingerprint holds the
-- key a quarantined device presented instead of the pinned one.
ALTER TABLE devices ADD COLUMN service_user TEXT;
ALTER TABLE devices ADD COLUMN service_key TEXT;
ALTER TABLE devices ADD COLUMN service_public_key TEXT;
ALTER TABLE devices ADD COLUMN presented_fingerprint TEXT;
