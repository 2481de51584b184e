-- Section 14, exercises 14.C.1 and Part E: 200 more people, 40 projects and
-- 120,000 tasks with a realistic spread, generated inside PostgreSQL.
-- Run schema.sql and seed.sql first. Re-runnable: removes its own rows first.
-- Takes a few seconds even on a small sandbox (0.5 CPU, 256 MiB).

SELECT setseed(0.14);  -- the same "random" data on every run

DELETE FROM projects WHERE name LIKE 'Bulk project %';          -- cascades to their tasks
DELETE FROM users    WHERE email LIKE 'bulk-%@taskflow.test';

INSERT INTO users (email, full_name, role, created_at)
SELECT format('bulk-%s@taskflow.test', g),
       format('Bulk Person %s', g),
       CASE WHEN g % 25 = 0 THEN 'viewer' ELSE 'member' END,
       now() - (random() * interval '700 days')
FROM generate_series(1, 200) AS g;

INSERT INTO projects (owner_id, name, created_at)
SELECT (SELECT id FROM users ORDER BY id LIMIT 1 OFFSET (g % 6)),
       format('Bulk project %s', g),
       now() - (random() * interval '600 days')
FROM generate_series(1, 40) AS g;

-- A bulk load checks each row's two foreign keys one by one (about 240,000
-- lookups). Dropping the two constraints and adding them back after the
-- load validates every row in one join instead: several times faster. User
-- triggers (the audit trigger of 14.C.3, if you made it) would write one
-- audit row per bulk row: they are switched off for the load and back on.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_project_id_fkey,
                  DROP CONSTRAINT IF EXISTS tasks_assignee_id_fkey;
ALTER TABLE tasks DISABLE TRIGGER USER;

-- Spread, per task:
--   status    done 46%, todo 22%, in_progress 16%, review 12%, blocked 4%
--   priority  1 urgent 8%, 2 high 22%, 3 normal 50%, 4 low 20%
--   assignee  a few people carry much of the work (power curve); 5% unassigned
--   dates     created over the last 540 days, due 2-60 days later; 10% undated
INSERT INTO tasks (project_id, assignee_id, title, status, priority, due_date, created_at, updated_at)
WITH pool AS (
  SELECT (SELECT array_agg(id ORDER BY id) FROM users) AS people,
         (SELECT array_agg(id ORDER BY id) FROM projects) AS projects
), draws AS (
  SELECT g, random() AS r_status, random() AS r_prio, random() AS r_who,
         random() AS r_proj, random() AS r_age, random() AS r_due
  FROM generate_series(1, 120000) AS g
)
SELECT pool.projects[1 + floor(d.r_proj * cardinality(pool.projects))::int],
       CASE WHEN d.r_who < 0.05 THEN NULL
            ELSE pool.people[1 + floor(power((d.r_who - 0.05) / 0.95, 1.8) * cardinality(pool.people))::int]
       END,
       format('Bulk task %s', d.g),
       CASE WHEN d.r_status < 0.46 THEN 'done'
            WHEN d.r_status < 0.68 THEN 'todo'
            WHEN d.r_status < 0.84 THEN 'in_progress'
            WHEN d.r_status < 0.96 THEN 'review'
            ELSE 'blocked' END,
       CASE WHEN d.r_prio < 0.08 THEN 1
            WHEN d.r_prio < 0.30 THEN 2
            WHEN d.r_prio < 0.80 THEN 3
            ELSE 4 END,
       CASE WHEN d.r_due < 0.10 THEN NULL
            ELSE (now() - d.r_age * interval '540 days')::date + 2 + floor(d.r_due * 58)::int END,
       now() - d.r_age * interval '540 days',
       now() - d.r_age * interval '500 days'
FROM draws d CROSS JOIN pool;

ALTER TABLE tasks ENABLE TRIGGER USER;
ALTER TABLE tasks
  ADD CONSTRAINT tasks_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE,
  ADD CONSTRAINT tasks_assignee_id_fkey FOREIGN KEY (assignee_id) REFERENCES users (id) ON DELETE SET NULL;

-- Fresh statistics, so the planner knows the table's new size and spread.
ANALYZE users;
ANALYZE projects;
ANALYZE tasks;

SELECT status, count(*) AS tasks, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM tasks GROUP BY status ORDER BY tasks DESC;
