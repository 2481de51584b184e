-- Section 14, exercises 14.C.1 and Part E: 200 more people, 40 projects and
-- 120,000 tasks with a realistic spread, generated inside PostgreSQL.
-- Run schema.sql and seed.sql first. Re-runnable: removes its own rows first.
-- Takes a few seconds even on a small sandbox (0.5 CPU, 256 MiB).

SELECT setseed(0.14);  -- the same "random" data on every run

DELETE FROM projects WHERE name LIKE 'Bulk project %';          -- cascades to their tasks
DELETE FROM users    WHERE username LIKE 'bulk\_user\_%';

INSERT INTO users (username, email, created_at)
SELECT format('bulk_user_%s', g),
       format('bulk-%s@taskflow.test', g),
       now() - (random() * interval '700 days')
FROM generate_series(1, 200) AS g;

INSERT INTO projects (name, owner_id, created_at)
SELECT format('Bulk project %s', g),
       (SELECT id FROM users ORDER BY id LIMIT 1 OFFSET (g % 6)),
       now() - (random() * interval '600 days')
FROM generate_series(1, 40) AS g;

-- A bulk load checks each row's two foreign keys one by one (about 240,000
-- lookups). Dropping the two constraints and adding them back after the
-- load validates every row in one join instead: several times faster. User
-- triggers (the audit trigger of 14.C.3, if you made it) would write one
-- audit row per bulk row: they are switched off for the load and back on.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_project_id_fkey,
                  DROP CONSTRAINT IF EXISTS tasks_assigned_to_fkey;
ALTER TABLE tasks DISABLE TRIGGER USER;

-- Spread, per task (most work in a real tracker is done, and old work most
-- of all): rows are inserted oldest first, as an application writes them,
-- and the younger a task the likelier it is still open:
--   status    about closed 75%, in_progress 15%, open 10% in all; open
--             and in progress tasks are mostly from the last few months
--   priority  1: 25%, 2: 30%, 3: 25%, 4: 12%, 5: 8%  (5 = most important)
--             so "open and priority >= 4" is about 2% of the rows
--   assignee  one of the 200 new people (the six of seed.sql keep their
--             own few tasks); a few carry much of the work (power curve);
--             5% unassigned
--   dates     created over the last 540 days, due 2-60 days later; 10% undated
INSERT INTO tasks (title, project_id, assigned_to, status, priority, due_date, created_at)
WITH pool AS (
  SELECT (SELECT array_agg(id ORDER BY id) FROM users WHERE username LIKE 'bulk\_user\_%') AS people,
         (SELECT array_agg(id ORDER BY id) FROM projects) AS projects
), draws AS (
  SELECT g, random() AS r_status, random() AS r_prio, random() AS r_who,
         random() AS r_proj, random() AS r_age, random() AS r_due
  FROM generate_series(1, 120000) AS g
)
SELECT format('Bulk task %s', d.g),
       pool.projects[1 + floor(d.r_proj * cardinality(pool.projects))::int],
       CASE WHEN d.r_who < 0.05 THEN NULL
            ELSE pool.people[1 + floor(power((d.r_who - 0.05) / 0.95, 1.8) * cardinality(pool.people))::int]
       END,
       CASE WHEN d.r_status < 0.9 * exp(-9 * d.r_age) THEN 'open'
            WHEN d.r_status < 0.9 * exp(-9 * d.r_age) + 0.15 THEN 'in_progress'
            ELSE 'closed' END,
       CASE WHEN d.r_prio < 0.25 THEN 1
            WHEN d.r_prio < 0.55 THEN 2
            WHEN d.r_prio < 0.80 THEN 3
            WHEN d.r_prio < 0.92 THEN 4
            ELSE 5 END,
       CASE WHEN d.r_due < 0.10 THEN NULL
            ELSE (now() - d.r_age * interval '540 days')::date + 2 + floor(d.r_due * 58)::int END,
       now() - d.r_age * interval '540 days'
FROM draws d CROSS JOIN pool
ORDER BY d.r_age DESC;

ALTER TABLE tasks ENABLE TRIGGER USER;
ALTER TABLE tasks
  ADD CONSTRAINT tasks_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
  ADD CONSTRAINT tasks_assigned_to_fkey FOREIGN KEY (assigned_to) REFERENCES users (id) ON DELETE SET NULL;

-- Fresh statistics, so the planner knows the table's new size and spread.
ANALYZE users;
ANALYZE projects;
ANALYZE tasks;

SELECT status, count(*) AS tasks, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM tasks GROUP BY status ORDER BY tasks DESC;
