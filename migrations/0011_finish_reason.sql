-- Why the model stopped, on the answer and on its run: an answer cut at its token limit (`length`) or
-- withheld by the provider (`content_filter`) must never look complete. Null for answers recorded before.

ALTER TABLE chat_messages ADD COLUMN finish_reason text
    CHECK (finish_reason IN ('stop', 'length', 'tool_calls', 'content_filter'));
ALTER TABLE runs ADD COLUMN finish_reason text
    CHECK (finish_reason IN ('stop', 'length', 'tool_calls', 'content_filter'));
