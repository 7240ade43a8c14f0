-- Documents uploaded as files (issue 19, item 8): what the original was, recorded beside the Markdown the
-- document holds. Text sent as such is `text/markdown` of its own size; a null size (a writer that does
-- not set it) reads as the text's (`coalesce` in retrieval/store.rs).
ALTER TABLE documents
    ADD COLUMN original_media_type text NOT NULL DEFAULT 'text/markdown',
    ADD COLUMN original_byte_size bigint CHECK (original_byte_size >= 0);
