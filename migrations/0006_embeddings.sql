-- Chunk embeddings, one row per chunk and embedding model, so that a change of model can embed every chunk
-- anew in the background while the old model's vectors keep serving searches.

-- The embedding models this database has held. Not tenant data: the model is a deployment setting.
CREATE TABLE embedding_models (
    id          text PRIMARY KEY,
    dimensions  integer NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- When every chunk had a vector from this model; searches prefer a complete model.
    complete_at timestamptz
);
-- Models are registered by the owner at start; the service only marks them complete or incomplete (a
-- DELETE would cascade to every tenant's vectors, past row-level security).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON embedding_models FROM switchboard_app;
GRANT UPDATE (complete_at) ON embedding_models TO switchboard_app;

CREATE TABLE chunk_embeddings (
    chunk_id   uuid NOT NULL REFERENCES doc_chunks (id) ON DELETE CASCADE,
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model      text NOT NULL REFERENCES embedding_models (id) ON DELETE CASCADE,
    -- Dimensions vary by model: each model's HNSW index casts to its own `vector(n)` (created at start,
    -- see retrieval/vectors.rs), partial on `model = id`.
    embedding  vector NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chunk_id, model)
);
-- Exact search and the backfill read one tenant's vectors of one model.
CREATE INDEX chunk_embeddings_tenant_model_idx ON chunk_embeddings (tenant_id, model);
SELECT enable_tenant_rls('chunk_embeddings');
CREATE POLICY shared_corpus_readable ON chunk_embeddings FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000');
