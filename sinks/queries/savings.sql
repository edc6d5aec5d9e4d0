-- title: Savings against always-premium
-- answers: What requests cost against what the same tokens would have cost on the premium model, by route: cache (a cached answer, free), cascade (cheapest model that passed its check), downgraded (a cheaper model over a rate limit or soft budget), routed (the strategy's pick); total last. Reads the hourly rollup.
-- param days: UInt32 = 30 -- hours starting in the days before as_of
-- param as_of: DateTime('UTC') = now -- the window's end (UTC)
-- param tenant: String = '' -- only this tenant; empty: every tenant
-- param premium_model: String = config -- the model always-premium would use (default: the config's most expensive)
-- param premium_in_per_mtok: Float64 = config -- its USD per 1M input tokens
-- param premium_out_per_mtok: Float64 = config -- its USD per 1M output tokens
SELECT
    if(total = 1, 'total', route) AS route,
    {premium_model:String} AS premium_model,
    requests,
    answered,
    cost_usd,
    premium_cost_usd,
    premium_cost_usd - cost_usd AS saved_usd,
    if(premium_cost_usd = 0, NULL, saved_usd / premium_cost_usd) AS saved_share
FROM (
    SELECT
        route,
        grouping(route) AS total,
        sum(requests) AS requests,
        sum(answered) AS answered,
        sum(cost_usd) AS cost_usd,
        (sum(input_tokens) * {premium_in_per_mtok:Float64}
            + sum(output_tokens) * {premium_out_per_mtok:Float64}) / 1000000 AS premium_cost_usd
    FROM {db:Identifier}.requests_hourly
    WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
        AND hour < {as_of:DateTime('UTC')}
        AND ({tenant:String} = '' OR tenant = {tenant:String})
    GROUP BY ROLLUP(route)
)
ORDER BY total, route
