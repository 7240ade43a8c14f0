-- The vector index holds half-precision vectors (`retrieval::vectors`), which pgvector's HNSW indexes up
-- to 4,000 dimensions: models of up to 4,000 (text-embedding-3-large's 3,072) can be recorded.
ALTER TABLE embedding_models DROP CONSTRAINT embedding_models_dimensions_check;
ALTER TABLE embedding_models ADD CONSTRAINT embedding_models_dimensions_check CHECK (dimensions BETWEEN 1 AND 4000);
