-- title: Cost per successful task
-- answers: What one answered request of each tenant and task costs, counting what its failed and refused requests cost too. Reads the hourly rollup.
-- param days: UInt32 = 30 -- hours starting in the days before as_of
-- param as_of: DateTime('UTC') = now -- the window's end (UTC)
-- param tenant: String = '' -- only this tenant; empty: every tenant
SELECT
    tenant,
    task,
    sum(requests) AS requests,
    sum(answered) AS answered,
    sum(cost_usd) AS cost_usd,
    if(answered = 0, NULL, cost_usd / answered) AS cost_per_answer_usd
FROM {db:Identifier}.requests_hourly
WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
    AND hour < {as_of:DateTime('UTC')}
    AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY tenant, task
ORDER BY tenant, task
