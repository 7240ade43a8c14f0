-- MCP elicitation (issue 22, item 5): a call whose server asks the person for input waits for it, like an
-- approval, and is made again with the answer.
ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_status_check;
ALTER TABLE tool_calls ADD CONSTRAINT tool_calls_status_check
    CHECK (status IN ('awaiting_approval', 'awaiting_input', 'running', 'completed', 'denied', 'failed'));
-- What the server asked ({key, message, requested_schema, request_state}), while and after it waited.
ALTER TABLE tool_calls ADD COLUMN input_request jsonb;
-- The person's answer ({key, result: {action, content?}, request_state}), sent with the call made again.
ALTER TABLE tool_calls ADD COLUMN input_response jsonb;
