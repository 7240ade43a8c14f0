-- Documents and their chunks, searchable by full text. The shared documentation lives under the system
-- tenant: every tenant may read it, none may write it (writes still need the row's own tenant).

CREATE TABLE documents (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source_path  text NOT NULL,
    title        text NOT NULL,
    -- SHA-256 of title and content: re-ingesting an unchanged document changes nothing.
    content_hash text NOT NULL,
    byte_size    integer NOT NULL,
    chunk_count  integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source_path)
);
SELECT enable_tenant_rls('documents');
CREATE POLICY shared_corpus_readable ON documents FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000');

CREATE TABLE doc_chunks (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    document_id   uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index   integer NOT NULL,
    content       text NOT NULL,
    token_count   integer NOT NULL,
    -- The headings above the chunk, outermost first, so a citation can say where it came from.
    heading_path  text[] NOT NULL DEFAULT '{}',
    -- The same headings as one string: generated columns may only use immutable functions, and
    -- array_to_string is not one.
    heading_text  text NOT NULL DEFAULT '',
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', heading_text), 'A') || to_tsvector('english', content)
    ) STORED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, chunk_index)
);
CREATE INDEX doc_chunks_tenant_id_idx ON doc_chunks (tenant_id);
CREATE INDEX doc_chunks_search_idx ON doc_chunks USING gin (search_vector);
SELECT enable_tenant_rls('doc_chunks');
CREATE POLICY shared_corpus_readable ON doc_chunks FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000');

-- BM25 needs, per term, how many chunks contain it; counting that at query time cost more than the rest
-- of the search, so ingestion maintains it.
CREATE TABLE term_stats (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    lexeme    text NOT NULL,
    chunks    integer NOT NULL CHECK (chunks >= 0),
    PRIMARY KEY (tenant_id, lexeme)
);
SELECT enable_tenant_rls('term_stats');
CREATE POLICY shared_corpus_readable ON term_stats FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000');
