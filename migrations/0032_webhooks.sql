-- Webhooks (issue 21, part 5): a tenant's destinations, the durable queue of deliveries (the outbox, written in
-- the transaction that records each fact), and the log of every attempt.

-- A destination: where events of the named types are POSTed, signed with its secret (Standard Webhooks).
-- The secret is sealed under the master key like provider keys (`crypto.rs`), bound to the row's identity.
CREATE TABLE webhook_endpoints (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                  text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    events               text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 20),
    description          text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    enabled              boolean NOT NULL DEFAULT true,
    -- Why it is off: `failing` when the worker disabled it after persistent failure; NULL when a person did.
    disabled_reason      text CHECK (disabled_reason IN ('failing')),
    secret_key_id        text NOT NULL,
    secret_nonce         bytea NOT NULL,
    secret_ciphertext    bytea NOT NULL,
    -- Failed attempts in a row, and since when: both cleared by a delivered attempt (or re-enabling).
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id, created_at);
SELECT enable_tenant_rls('webhook_endpoints');

-- One event for one destination. `body` is the exact JSON sent (and signed) on every attempt; the message id
-- (`webhook-id`) is derived from `id`, so it stays the same across retries and redeliveries.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Attempts in the current round (the backoff grows with them); every attempt stays in `webhook_attempts`.
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- The first attempt of the current round: retries go on for 24 hours from it (a redelivery starts a round).
    first_attempt_at timestamptz,
    -- The worker holding it, and until when (a worker that died lets it go when the lease ends).
    claimed_by       uuid,
    locked_until     timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- Retention deletes finished deliveries (with their attempts) after 30 days.
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (tenant_id, updated_at) WHERE status <> 'pending';
SELECT enable_tenant_rls('webhook_deliveries');

-- Every attempt: the status code, or the kind of error when there was no answer; how long it took.
CREATE TABLE webhook_attempts (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    status_code  integer,
    error        text CHECK (error IN ('timeout', 'connect', 'refused', 'request', 'secret')),
    latency_ms   integer NOT NULL CHECK (latency_ms >= 0),
    CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (tenant_id, delivery_id, attempted_at);
SELECT enable_tenant_rls('webhook_attempts');

-- The delivery workers of every process claim due deliveries before they know their tenant, as agent-run
-- workers claim runs (0009): with `app.webhook_worker` on (set for the claiming statements only), a pending
-- delivery is visible and may be leased; it stays pending. Everything else (reading the destination, opening
-- its secret, recording the attempt) happens in a transaction bound to the delivery's tenant.
CREATE POLICY webhook_worker ON webhook_deliveries FOR SELECT
    USING (current_setting('app.webhook_worker', true) = 'on' AND status = 'pending');
CREATE POLICY webhook_worker_claim ON webhook_deliveries FOR UPDATE
    USING (current_setting('app.webhook_worker', true) = 'on' AND status = 'pending')
    WITH CHECK (current_setting('app.webhook_worker', true) = 'on' AND status = 'pending');
