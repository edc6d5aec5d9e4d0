-- title: Cost per day by tenant, team, app and model
-- answers: What each tenant, team, app and model spent each day (UTC), on how many requests and tokens. Reads the hourly rollup.
-- param days: UInt32 = 30 -- hours starting in the days before as_of
-- param as_of: DateTime('UTC') = now -- the window's end (UTC)
-- param tenant: String = '' -- only this tenant; empty: every tenant
SELECT
    toDate(hour) AS day,
    tenant,
    team,
    app,
    model,
    sum(requests) AS requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cost_usd) AS cost_usd
FROM {db:Identifier}.requests_hourly
WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
    AND hour < {as_of:DateTime('UTC')}
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY day, tenant, team, app, model
ORDER BY day, tenant, team, app, cost_usd DESC, model
