-- Collections: who may search which documents, and the shared corpus only for tenants that ask for it.
--
-- A document belongs to one or more of its tenant's collections. API keys, widget tokens and conversations
-- may be limited to some collections; a search runs with the transaction setting `app.collections` (the
-- ids it may read, set by the service from the authenticated caller), and a restrictive policy on every
-- table a search reads hides the chunks outside it, so no query of a search can reach them.

CREATE TABLE collections (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
SELECT enable_tenant_rls('collections');

-- The shared corpus (the operator's documentation, under the system tenant) is one collection with a
-- fixed id, which a tenant enables in its settings (`shared_corpus`).
INSERT INTO collections (id, tenant_id, name, description)
VALUES ('00000000-0000-0000-0000-00000000c0de', '00000000-0000-0000-0000-000000000000', 'switchboard-docs',
        'Switchboard''s own documentation, shared by the operator with the tenants that enable it.');

ALTER TABLE tenant_configs ADD COLUMN shared_corpus boolean NOT NULL DEFAULT false;

-- Whether the transaction's tenant has enabled the shared corpus. Policies call it inside a scalar
-- subquery, so it is evaluated once per statement rather than once per row.
CREATE FUNCTION shared_corpus_enabled() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT shared_corpus FROM tenant_configs WHERE tenant_id = current_tenant_id()), false)
$$;

-- The collections the transaction may search; NULL (unset) means every collection its tenant can read.
CREATE FUNCTION searchable_collections() RETURNS uuid[]
LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('app.collections', true), '')::uuid[]
$$;

-- Every collection a row belongs to, on documents and copied onto their chunks and vectors so that each
-- table's policy can decide alone (a policy that joined would cost a lookup per chunk).
ALTER TABLE documents ADD COLUMN collection_ids uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE doc_chunks ADD COLUMN collection_ids uuid[] NOT NULL DEFAULT '{}';
ALTER TABLE chunk_embeddings ADD COLUMN collection_ids uuid[] NOT NULL DEFAULT '{}';

-- The documents stored so far: the shared corpus's in its collection, every tenant's in its `default`
-- collection. Row-level security is lifted for these statements only: a migration runs with no tenant.
ALTER TABLE collections NO FORCE ROW LEVEL SECURITY;
ALTER TABLE documents NO FORCE ROW LEVEL SECURITY;
ALTER TABLE doc_chunks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE chunk_embeddings NO FORCE ROW LEVEL SECURITY;
INSERT INTO collections (id, tenant_id, name)
SELECT DISTINCT ON (tenant_id) gen_random_uuid(), tenant_id, 'default' FROM documents
WHERE tenant_id <> '00000000-0000-0000-0000-000000000000';
UPDATE documents AS d SET collection_ids = ARRAY[c.id]
FROM collections AS c WHERE c.tenant_id = d.tenant_id AND c.name IN ('default', 'switchboard-docs');
UPDATE doc_chunks AS c SET collection_ids = d.collection_ids FROM documents AS d WHERE d.id = c.document_id;
UPDATE chunk_embeddings AS e SET collection_ids = c.collection_ids FROM doc_chunks AS c WHERE c.id = e.chunk_id;
ALTER TABLE collections FORCE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
ALTER TABLE doc_chunks FORCE ROW LEVEL SECURITY;
ALTER TABLE chunk_embeddings FORCE ROW LEVEL SECURITY;

CREATE INDEX documents_collection_ids_idx ON documents USING gin (collection_ids);

-- The service writes a document's collections; its chunks and their vectors take them from it.
CREATE FUNCTION chunk_collections_from_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.collection_ids := (SELECT collection_ids FROM documents WHERE id = NEW.document_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER collections_from_document BEFORE INSERT ON doc_chunks
    FOR EACH ROW EXECUTE FUNCTION chunk_collections_from_document();

CREATE FUNCTION embedding_collections_from_chunk() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.collection_ids := (SELECT collection_ids FROM doc_chunks WHERE id = NEW.chunk_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER collections_from_chunk BEFORE INSERT ON chunk_embeddings
    FOR EACH ROW EXECUTE FUNCTION embedding_collections_from_chunk();

CREATE FUNCTION document_collections_to_chunks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE doc_chunks SET collection_ids = NEW.collection_ids WHERE document_id = NEW.id;
    UPDATE chunk_embeddings SET collection_ids = NEW.collection_ids
    WHERE chunk_id IN (SELECT id FROM doc_chunks WHERE document_id = NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER collections_to_chunks AFTER UPDATE OF collection_ids ON documents
    FOR EACH ROW WHEN (OLD.collection_ids IS DISTINCT FROM NEW.collection_ids)
    EXECUTE FUNCTION document_collections_to_chunks();

-- Scoped callers, conversations and runs: NULL is every collection of the tenant. A run keeps the scope
-- it started with (its key's, its conversation's and its request's together), so that a run resumed
-- after an approval, or an agent run claimed later, searches no more than its start allowed.
ALTER TABLE api_keys ADD COLUMN collection_ids uuid[];
ALTER TABLE chat_sessions ADD COLUMN collection_ids uuid[];
ALTER TABLE runs ADD COLUMN collection_ids uuid[];

-- A search sees only the collections it may read.
CREATE POLICY within_searchable_collections ON documents AS RESTRICTIVE FOR SELECT
    USING ((SELECT searchable_collections()) IS NULL OR collection_ids && (SELECT searchable_collections()));
CREATE POLICY within_searchable_collections ON doc_chunks AS RESTRICTIVE FOR SELECT
    USING ((SELECT searchable_collections()) IS NULL OR collection_ids && (SELECT searchable_collections()));
CREATE POLICY within_searchable_collections ON chunk_embeddings AS RESTRICTIVE FOR SELECT
    USING ((SELECT searchable_collections()) IS NULL OR collection_ids && (SELECT searchable_collections()));

-- The shared corpus is read only by tenants that enabled it: its documents, chunks, vectors, statistics
-- and its collection.
DROP POLICY shared_corpus_readable ON documents;
DROP POLICY shared_corpus_readable ON doc_chunks;
DROP POLICY shared_corpus_readable ON term_stats;
DROP POLICY shared_corpus_readable ON corpus_stats;
DROP POLICY shared_corpus_readable ON chunk_embeddings;
CREATE POLICY shared_corpus_readable ON documents FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000' AND (SELECT shared_corpus_enabled()));
CREATE POLICY shared_corpus_readable ON doc_chunks FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000' AND (SELECT shared_corpus_enabled()));
CREATE POLICY shared_corpus_readable ON term_stats FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000' AND (SELECT shared_corpus_enabled()));
CREATE POLICY shared_corpus_readable ON corpus_stats FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000' AND (SELECT shared_corpus_enabled()));
CREATE POLICY shared_corpus_readable ON chunk_embeddings FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000' AND (SELECT shared_corpus_enabled()));
CREATE POLICY shared_corpus_readable ON collections FOR SELECT
    USING (tenant_id = '00000000-0000-0000-0000-000000000000' AND (SELECT shared_corpus_enabled()));

-- Every tenant starts without it, those that exist already too (their assistants stopped citing the
-- operator's manual to their customers), but the demo tenant (default slug), made to show it.
ALTER TABLE tenant_configs NO FORCE ROW LEVEL SECURITY;
UPDATE tenant_configs SET shared_corpus = true
WHERE tenant_id IN (SELECT id FROM tenants WHERE slug = 'demo');
ALTER TABLE tenant_configs FORCE ROW LEVEL SECURITY;
