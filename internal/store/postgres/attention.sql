-- name: AttentionList :many
-- What needs an operator: failed stacks of tenants, failed pool stacks and
-- failed grants, ordered (and paged) by (updated_at, kind, item_key), in
-- byte order so that both stores order alike; item_key is
-- attention.Item.Key(). A page starts after the position (@after_at,
-- @after_kind, @after_key); the zero time is before every record.
-- placements_status_idx finds the failed stacks; pools are one per Region.
SELECT kind, tenant_id, tenant_slug, tenant_name, tenant_status,
    region, status, reason, stack_name, grant_id, principal, updated_at
FROM (
    SELECT 'stack'::text AS kind, (p.tenant_id || '/' || p.region)::text AS item_key,
        p.tenant_id, t.slug AS tenant_slug, t.name AS tenant_name, t.status AS tenant_status,
        p.region, p.status, p.last_error AS reason, p.stack_name,
        ''::text AS grant_id, ''::text AS principal, p.updated_at
    FROM placements p JOIN tenants t ON t.id = p.tenant_id
    WHERE p.status = 'failed'
    UNION ALL
    SELECT 'pool_stack', l.region, '', '', '', '',
        l.region, l.status, l.last_error, l.stack_name, '', '', l.updated_at
    FROM pools l
    WHERE l.status = 'failed'
    UNION ALL
    SELECT 'grant', g.id, g.tenant_id, t.slug, t.name, t.status,
        g.region, g.status, g.reason, '', g.id, g.principal, g.updated_at
    FROM grants g JOIN tenants t ON t.id = g.tenant_id
    WHERE g.status = 'failed'
) AS a
WHERE (@kind::text = '' OR kind = @kind::text)
    AND (@region::text = '' OR region = @region::text)
    AND (updated_at, kind COLLATE "C", item_key COLLATE "C") > (@after_at::timestamptz, @after_kind::text, @after_key::text)
ORDER BY updated_at, kind COLLATE "C", item_key COLLATE "C"
LIMIT @max_rows::bigint;
