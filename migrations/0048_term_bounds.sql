-- Per term, the most occurrences one chunk has and the fewest tokens of a chunk that holds it: full-text
-- search bounds what the term can add to a chunk's score by them (`search.rs`), far below BM25's limit
-- for a term repeated without end, so that fewer chunks can reach the results and fewer are read. Both
-- only ever widen (a larger most, a smaller fewest) as chunks come, and stay when chunks go, so they
-- always bound every chunk that holds the term. NULL where chunks counted before this column existed:
-- unknown, and the term keeps the limit bound until all of those chunks are gone.
ALTER TABLE term_stats ADD COLUMN max_occurrences integer, ADD COLUMN min_tokens integer;
