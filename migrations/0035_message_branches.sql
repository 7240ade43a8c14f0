-- Edit and regenerate: a conversation's messages form a tree. A user's message follows the message it
-- was written after (the answer before it on its branch, or none); an answer's parent is the question it
-- answers. Editing a question adds a sibling of it, regenerating an answer a sibling of that answer; the
-- conversation's active leaf says which branch is shown and continued.
ALTER TABLE chat_messages ADD COLUMN parent_message_id uuid REFERENCES chat_messages (id) ON DELETE CASCADE;
CREATE INDEX chat_messages_parent_idx ON chat_messages (parent_message_id);
ALTER TABLE chat_sessions ADD COLUMN active_leaf_id uuid REFERENCES chat_messages (id) ON DELETE SET NULL;
-- The question a run answers when it is not the run's own user message (a regenerated answer).
ALTER TABLE runs ADD COLUMN user_message_id uuid REFERENCES chat_messages (id) ON DELETE SET NULL;
-- Every answer recorded finds its question through its run, and every turn its history.
CREATE INDEX chat_messages_run_id_idx ON chat_messages (run_id);
-- A deleted message (its conversation deleted, erased or past retention) clears what names it, found by index.
CREATE INDEX chat_sessions_active_leaf_idx ON chat_sessions (active_leaf_id) WHERE active_leaf_id IS NOT NULL;
CREATE INDEX runs_user_message_idx ON runs (user_message_id) WHERE user_message_id IS NOT NULL;

-- The conversations so far are one branch each, in the order they were listed; the last message is the
-- leaf. Row-level security is lifted for these statements only: a migration runs with no tenant.
ALTER TABLE chat_messages NO FORCE ROW LEVEL SECURITY;
ALTER TABLE chat_sessions NO FORCE ROW LEVEL SECURITY;
UPDATE chat_messages AS m SET parent_message_id = linear.previous
FROM (SELECT id, lag(id) OVER (PARTITION BY session_id ORDER BY created_at, id) AS previous FROM chat_messages)
    AS linear
WHERE linear.id = m.id AND linear.previous IS NOT NULL;
UPDATE chat_sessions AS s SET active_leaf_id = (
    SELECT m.id FROM chat_messages AS m WHERE m.session_id = s.id ORDER BY m.created_at DESC, m.id DESC LIMIT 1);
ALTER TABLE chat_messages FORCE ROW LEVEL SECURITY;
ALTER TABLE chat_sessions FORCE ROW LEVEL SECURITY;
