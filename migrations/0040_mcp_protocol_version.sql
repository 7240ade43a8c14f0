-- The MCP revision each connector's server last negotiated with Switchboard (issue 22, item 2):
-- `2026-07-28`, `2025-11-25` or older; NULL until discovery first reaches it, and again after an edit.
ALTER TABLE mcp_connectors ADD COLUMN protocol_version text;
