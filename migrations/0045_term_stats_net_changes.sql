-- Ingestion changes a tenant's BM25 statistics once per transaction, as one net change per term (new
-- chunks in, replaced or deleted ones out) in a single `INSERT … ON CONFLICT DO UPDATE` in lexeme order:
-- one ordered pass, so concurrent writers cannot deadlock on these rows (two passes, one taking terms
-- out and one putting them in, did). A term's change may be negative, and PostgreSQL checks a proposed
-- row's constraints before it finds the conflict that makes it an update, so `chunks >= 0` would refuse
-- it. A negative change only ever lands on a row that counted the removed chunks when they were stored;
-- the tests compare these counts with a recount of the chunks, term by term.
ALTER TABLE term_stats DROP CONSTRAINT IF EXISTS term_stats_chunks_check;
