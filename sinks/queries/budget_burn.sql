-- title: Budget burn and days to exhaustion
-- answers: For each tenant with a budget_usd in the config: what it spent in its current budget period (from telemetry's settled costs), what remains, its daily burn over the last burn_days (or since the hour of its first spend in them, if later; at least an hour, so one request in a fresh window does not extrapolate to a huge rate), and in how many days the rest is gone at that rate. A day or month budget resets at period_ends. Reads the hourly rollup.
-- param burn_days: UInt32 = 7 -- days the daily burn is averaged over
-- param as_of: DateTime('UTC') = now -- the moment the budget is judged at (UTC)
-- param budget_tenants: Array(String) = config -- the tenants with a budget_usd
-- param budget_usd: Array(Float64) = config -- their budget_usd, in the same order
-- param budget_periods: Array(String) = config -- their budget_period: day, month or total
SELECT
    b.1 AS tenant,
    b.3 AS period,
    b.2 AS budget_usd,
    multiIf(period = 'day', s.spent_today, period = 'month', s.spent_month, s.spent_total)
        AS spent_usd,
    budget_usd - spent_usd AS remaining_usd,
    if(s.burn_seconds = 0, 0, s.burn_cost * 86400 / s.burn_seconds) AS burn_usd_per_day,
    if(burn_usd_per_day = 0, NULL, greatest(remaining_usd, 0) / burn_usd_per_day)
        AS days_to_exhaustion,
    multiIf(
        period = 'day', toString(toDate({as_of:DateTime('UTC')}) + 1),
        period = 'month', toString(addMonths(toStartOfMonth({as_of:DateTime('UTC')}), 1)),
        'never'
    ) AS period_ends
FROM (
    SELECT arrayJoin(arrayZip(
        {budget_tenants:Array(String)}, {budget_usd:Array(Float64)}, {budget_periods:Array(String)}
    )) AS b
) AS budgets
LEFT JOIN (
    SELECT
        tenant,
        sumIf(cost_usd, hour >= toStartOfDay({as_of:DateTime('UTC')})) AS spent_today,
        sumIf(cost_usd, hour >= toStartOfMonth({as_of:DateTime('UTC')})) AS spent_month,
        sum(cost_usd) AS spent_total,
        sumIf(cost_usd, hour >= {as_of:DateTime('UTC')} - INTERVAL {burn_days:UInt32} DAY)
            AS burn_cost,
        greatest(dateDiff(
            'second',
            greatest(
                minIf(hour, hour >= {as_of:DateTime('UTC')} - INTERVAL {burn_days:UInt32} DAY),
                {as_of:DateTime('UTC')} - INTERVAL {burn_days:UInt32} DAY
            ),
            {as_of:DateTime('UTC')}
        ), 3600) AS burn_seconds
    FROM {db:Identifier}.requests_hourly
    WHERE hour < {as_of:DateTime('UTC')}
    GROUP BY tenant
) AS s ON s.tenant = b.1
ORDER BY tenant
