-- The integration door: idempotent retries, and what an external system attaches to a message.

-- A retried request with the same key attaches to the run the first one started, instead of running
-- twice. `run_id` is empty while the first request is still starting it.
CREATE TABLE idempotency_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    -- SHA-256 of the request: the same key with a different request is refused.
    request_hash bytea NOT NULL,
    session_id   uuid,
    run_id       uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, scope, key)
);
SELECT enable_tenant_rls('idempotency_keys');

ALTER TABLE chat_messages ADD COLUMN metadata jsonb;
CREATE INDEX chat_sessions_user_idx ON chat_sessions (tenant_id, user_id, updated_at DESC) WHERE user_id IS NOT NULL;
