-- Authentication in one round trip. The lookup policy (`api_key_lookup`, 0001) shows a key to whoever
-- names its prefix in `app.api_key_prefix`; this function sets it and reads the key in one statement,
-- where the service began a transaction with the setting, read, and committed: three round trips on
-- every request's path. Called alone, the setting is the statement's own transaction's.
CREATE FUNCTION api_key_for_authentication(key_prefix text)
RETURNS TABLE (
    id uuid, tenant_id uuid, secret_hash bytea, scopes text[], expires_at timestamptz, revoked_at timestamptz,
    collection_ids uuid[], tenant_suspended boolean, use_to_record boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.api_key_prefix', key_prefix, true);
    RETURN QUERY
    SELECT k.id, k.tenant_id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at, k.collection_ids,
           t.status = 'suspended',
           k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'
    FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
    WHERE k.prefix = key_prefix;
END
$$;
