-- title: Requests a rule denied or downgraded
-- answers: Each request a governance rule denied or downgraded (or another audit action), newest first: when, whose, which rule and config version, the detail, and the model that served it (empty when none did). Reads the audit trail and requests.
-- param rule: String = '' -- the rule: budget_exhausted, policy_denied, rate_downgraded, budget_downgraded...; empty: any
-- param action: String = '' -- denied, downgraded, rate_limited, queued, redacted, alert, forged; empty: denied and downgraded
-- param days: UInt32 = 7 -- actions in the days before as_of
-- param as_of: DateTime('UTC') = now -- the window's end (UTC)
-- param tenant: String = '' -- only this tenant; empty: every tenant
-- param limit: UInt32 = 1000 -- at most this many requests
SELECT
    a.at AS at,
    a.tenant AS tenant,
    a.team AS team,
    a.app AS app,
    a.request_id AS request_id,
    a.action AS action,
    a.rule AS rule,
    a.detail AS detail,
    a.config_version AS config_version,
    r.model AS served_by
FROM {db:Identifier}.audit AS a FINAL
LEFT JOIN (
    SELECT tenant, request_id, model
    FROM {db:Identifier}.requests FINAL
    WHERE finished_at >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY - INTERVAL 1 DAY
        AND ({tenant:String} = '' OR tenant = {tenant:String})
) AS r ON a.tenant = r.tenant AND a.request_id = r.request_id
WHERE a.at >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
    AND a.at < {as_of:DateTime('UTC')}
    AND ({tenant:String} = '' OR a.tenant = {tenant:String})
    AND ({rule:String} = '' OR a.rule = {rule:String})
    AND (
        ({action:String} = '' AND a.action IN ('denied', 'downgraded'))
        OR a.action = {action:String}
    )
ORDER BY at DESC, request_id
LIMIT {limit:UInt32}
