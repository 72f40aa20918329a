-- name: AttentionList :many
-- What needs an operator: failed stacks of tenants, failed pool stacks and
-- failed grants, ordered (and paged) by (updated_at, kind, item_key);
-- item_key is attention.Item.Key(). A page starts after the position
-- (@after_at, @after_kind, @after_key); the empty time is before every
-- record (stored times are fixed-width text, which orders as time does).
-- placements_status_idx finds the failed stacks; pools are one per Region.
SELECT kind, tenant_id, tenant_slug, tenant_name, tenant_status,
    region, status, reason, stack_name, grant_id, principal, updated_at
FROM (
    SELECT CAST('stack' AS TEXT) AS kind, CAST(p.tenant_id || '/' || p.region AS TEXT) AS item_key,
        p.tenant_id, t.slug AS tenant_slug, t.name AS tenant_name, t.status AS tenant_status,
        p.region, p.status, p.last_error AS reason, p.stack_name,
        CAST('' AS TEXT) AS grant_id, CAST('' AS TEXT) AS principal, p.updated_at
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
WHERE (CAST(@kind AS TEXT) = '' OR kind = CAST(@kind AS TEXT))
    AND (CAST(@region AS TEXT) = '' OR region = CAST(@region AS TEXT))
    AND (updated_at > CAST(@after_at AS TEXT)
        OR (updated_at = CAST(@after_at AS TEXT) AND (kind > CAST(@after_kind AS TEXT)
            OR (kind = CAST(@after_kind AS TEXT) AND item_key > CAST(@after_key AS TEXT)))))
ORDER BY updated_at, kind, item_key
LIMIT @max_rows;
