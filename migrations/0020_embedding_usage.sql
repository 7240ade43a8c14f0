-- Embeddings are usage too: ingestion, questions and `/v1/embeddings` record their input tokens and
-- cost. `operation` tells them from model calls; an embedding made outside any run has no `run_id`.

ALTER TABLE usage_records
    ADD COLUMN operation text NOT NULL DEFAULT 'chat' CHECK (operation IN ('chat', 'embedding'));
