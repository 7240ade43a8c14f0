-- The documents written without vectors (their embedding failed), so that the backfill's sweep reads them
-- alone once the embedding model is complete, instead of looking for unembedded chunks among every chunk of
-- every tenant each minute (1.5 s of PostgreSQL's time at 100k chunks, in every process). A model that is
-- not complete (new, or switched back to) is still checked chunk by chunk. A row is removed once every
-- chunk of its document has a vector from the model that serves.
CREATE TABLE documents_owed_vectors (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, document_id)
);
SELECT enable_tenant_rls('documents_owed_vectors');

-- The backfill's sweep lists the tenants it owes vectors before it knows their tenant, as webhook workers
-- claim deliveries (0032): with `app.backfill_sweeper` on (set for that statement's transaction only), every
-- row is visible; what it then reads and writes, it does bound to each tenant.
CREATE POLICY backfill_sweeper ON documents_owed_vectors FOR SELECT
    USING (current_setting('app.backfill_sweeper', true) = 'on');

