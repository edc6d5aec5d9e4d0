-- title: Latency per model: p50, p95, p99
-- answers: How long answered requests took end to end (total_ms: queue, routing and provider), per model that answered. Quantiles of t-digest states from the hourly rollup.
-- param days: UInt32 = 7 -- hours starting in the days before as_of
-- param as_of: DateTime('UTC') = now -- the window's end (UTC)
-- param tenant: String = '' -- only this tenant; empty: every tenant
SELECT
    model,
    sum(answered) AS answered,
    round(toFloat64(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_ms)[1]), 1) AS p50_ms,
    round(toFloat64(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_ms)[2]), 1) AS p95_ms,
    round(toFloat64(quantilesTDigestMerge(0.5, 0.95, 0.99)(latency_ms)[3]), 1) AS p99_ms
FROM {db:Identifier}.requests_hourly
WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
    AND hour < {as_of:DateTime('UTC')}
    AND ({tenant:String} = '' OR tenant = {tenant:String})
    AND model != ''
GROUP BY model
HAVING answered > 0
ORDER BY model
