-- The Audit page (issue "Safe change sets…", part 6): each entry keeps the actor's e-mail as it was
-- when written (a later change of address, or the account's deletion, does not rewrite history).
ALTER TABLE audit_log ADD COLUMN actor_email TEXT NOT NULL DEFAULT '';
UPDATE audit_log SET actor_email = COALESCE((SELECT email FROM users WHERE users.id = audit_log.actor_id), '')
    WHERE actor_id IS NOT NULL;
