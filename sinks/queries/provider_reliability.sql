-- title: Fallback and error rates per provider
-- answers: Per provider: its calls and the share that failed (error_rate, from attempts_hourly), and the requests it answered and the share of those that needed a fallback first (fallback_rate, from requests_hourly; a cascade's escalation is not a fallback).
-- param days: UInt32 = 7 -- hours starting in the days before as_of
-- param as_of: DateTime('UTC') = now -- the window's end (UTC)
-- param tenant: String = '' -- only this tenant; empty: every tenant
SELECT
    if(c.provider != '', c.provider, r.provider) AS provider,
    c.calls AS calls,
    c.failed_calls AS failed_calls,
    if(c.calls = 0, NULL, c.failed_calls / c.calls) AS error_rate,
    r.answered AS answered,
    r.fallbacks AS fallbacks,
    if(r.answered = 0, NULL, r.fallbacks / r.answered) AS fallback_rate
FROM (
    SELECT provider, sum(calls) AS calls, sum(failed_calls) AS failed_calls
    FROM {db:Identifier}.attempts_hourly
    WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
        AND hour < {as_of:DateTime('UTC')}
        AND ({tenant:String} = '' OR tenant = {tenant:String})
    GROUP BY provider
) AS c
FULL OUTER JOIN (
    SELECT provider, sum(answered) AS answered, sum(fallbacks) AS fallbacks
    FROM {db:Identifier}.requests_hourly
    WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL {days:UInt32} DAY
        AND hour < {as_of:DateTime('UTC')}
        AND ({tenant:String} = '' OR tenant = {tenant:String})
        AND provider != ''
    GROUP BY provider
) AS r ON c.provider = r.provider
ORDER BY provider
