-- title: Routing mix per task, week over week
-- answers: Which models answered each task in the 7 days before as_of and in the 7 days before that, as counts and as shares of the task's answered requests. Reads the hourly rollup.
-- param as_of: DateTime('UTC') = now -- the end of this week (UTC); weeks are the 7-day spans before it
-- param tenant: String = '' -- only this tenant; empty: every tenant
SELECT
    task,
    model,
    sumIf(answered, hour >= {as_of:DateTime('UTC')} - INTERVAL 7 DAY) AS this_week,
    sumIf(answered, hour < {as_of:DateTime('UTC')} - INTERVAL 7 DAY) AS last_week,
    if(sum(this_week) OVER (PARTITION BY task) = 0, NULL,
        this_week / sum(this_week) OVER (PARTITION BY task)) AS share_this_week,
    if(sum(last_week) OVER (PARTITION BY task) = 0, NULL,
        last_week / sum(last_week) OVER (PARTITION BY task)) AS share_last_week,
    share_this_week - share_last_week AS share_change
FROM {db:Identifier}.requests_hourly
WHERE hour >= {as_of:DateTime('UTC')} - INTERVAL 14 DAY
    AND hour < {as_of:DateTime('UTC')}
    AND ({tenant:String} = '' OR tenant = {tenant:String})
    AND model != ''
GROUP BY task, model
ORDER BY task, this_week DESC, model
