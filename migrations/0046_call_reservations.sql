-- A priced call outside a run's model calls (`/v1/embeddings`, a document's embedding, a rerank) reserves
-- its cost before it is made, under an id of its own, so concurrent calls cannot pass a budget together
-- either. `run_id` names the run or that call, and no longer references `runs`.
ALTER TABLE budget_reservations DROP CONSTRAINT budget_reservations_run_id_fkey;
-- A reservation nobody will settle (its process died mid-call, or its run ended) is released when a budget
-- it holds would refuse a call (`budgets::store::release_stale`): found by its age.
CREATE INDEX budget_reservations_age_idx ON budget_reservations (tenant_id, created_at);
