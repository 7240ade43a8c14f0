-- A reranker over the best fused passages (issue 19, item 2).
--
-- 1. Each tenant chooses whether its searches and turns are reranked by the deployment's reranker
-- (`SWITCHBOARD_RERANK_MODEL`); off for every tenant until it says so. The service refuses `true` on a
-- deployment without a reranker.
ALTER TABLE tenant_configs ADD COLUMN rerank boolean NOT NULL DEFAULT false;

-- 2. A rerank call is usage too. Cohere bills it in search units rather than tokens: they are kept apart,
-- null on every other record.
ALTER TABLE usage_records DROP CONSTRAINT usage_records_operation_check;
ALTER TABLE usage_records
    ADD CONSTRAINT usage_records_operation_check CHECK (operation IN ('chat', 'embedding', 'rerank')),
    ADD COLUMN search_units integer CHECK (search_units >= 0);
