-- Grounded answers (issue 26, parts 3 and 4).
--
-- 1. A tenant's own relevance floors, one per search mode (null: the service's default). Hybrid and vector
-- floors are cosine similarities, the full-text floor a share of the question's BM25 ceiling; each from 0
-- (no floor) to 1. The service checks the same range and says so; these constraints are the backstop.
ALTER TABLE tenant_configs
    ADD COLUMN relevance_floor_hybrid double precision CHECK (relevance_floor_hybrid BETWEEN 0 AND 1),
    ADD COLUMN relevance_floor_vector double precision CHECK (relevance_floor_vector BETWEEN 0 AND 1),
    ADD COLUMN relevance_floor_full_text double precision CHECK (relevance_floor_full_text BETWEEN 0 AND 1);

-- 2. An answer's `citations` are now the passages it cited (with the spans that cite them); the passages
-- it was given but did not cite are kept apart here. Earlier answers keep every passage under `citations`.
ALTER TABLE chat_messages ADD COLUMN retrieved jsonb NOT NULL DEFAULT '[]';
