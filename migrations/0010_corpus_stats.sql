-- Full-text search at scale, from profiling it at 100k chunks (benchmark suite).
--
-- 1. BM25 needs the corpus size and average chunk length. Counting them at query time was a scan of every
-- visible chunk (56 ms of a 274 ms search at 100k chunks, measured by the benchmark suite), so ingestion
-- keeps one row per tenant in step with doc_chunks, as it does term_stats.
CREATE TABLE corpus_stats (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chunks    bigint NOT NULL CHECK (chunks >= 0),
    tokens    bigint NOT NULL CHECK (tokens >= 0)
);

-- The chunks already stored, counted once. Row-level security is lifted from doc_chunks for this
-- statement only: a migration runs with no tenant, and a non-superuser owner would otherwise see none.
ALTER TABLE doc_chunks NO FORCE ROW LEVEL SECURITY;
INSERT INTO corpus_stats (tenant_id, chunks, tokens)
SELECT tenant_id, count(*), coalesce(sum(token_count), 0) FROM doc_chunks GROUP BY tenant_id;
ALTER TABLE doc_chunks FORCE ROW LEVEL SECURITY;

SELECT enable_tenant_rls('corpus_stats');
CREATE POLICY shared_corpus_readable ON corpus_stats FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000');

-- 2. Under row-level security PostgreSQL applies an operator that is not marked leakproof only after the
-- policy's filter, so `search_vector @@ query` could not use the GIN index and tested every chunk of the
-- tenant (268 ms of a search at 100k chunks; 87 ms with the index). ts_match_vq, the function behind @@,
-- tells nothing of its arguments but whether they match. Only a superuser may mark it (the embedded server's
-- owner is one); elsewhere search stays correct and scans, and this says so once.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF;
    ELSE
        RAISE WARNING 'full-text search will not use its index under row-level security: a superuser may run '
            'ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF (see migration 0010)';
    END IF;
END
$$;
