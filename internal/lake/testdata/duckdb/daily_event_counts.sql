SELECT CAST("timestamp" AS DATE) AS day, type, event, count(*) AS events
FROM events
GROUP BY CAST("timestamp" AS DATE), type, event
