-- Section 14, exercise 14.B.3: five everyday queries on the TaskFlow data.

-- 1. Ana's tasks with the name of their project, most urgent first.
SELECT t.id, t.title, t.status, t.priority, p.name AS project
FROM tasks t
JOIN projects p ON p.id = t.project_id
JOIN users u ON u.id = t.assignee_id
WHERE u.email = 'ana@taskflow.test'
ORDER BY t.priority, t.due_date NULLS LAST;

-- 2. How many tasks are in each status.
SELECT status, count(*) AS tasks
FROM tasks
GROUP BY status
ORDER BY tasks DESC, status;

-- 3. People with more than two tasks, kept as a view the check can read.
CREATE OR REPLACE VIEW busy_users AS
SELECT u.id AS user_id, u.full_name, count(*) AS task_count
FROM users u
JOIN tasks t ON t.assignee_id = u.id
GROUP BY u.id, u.full_name
HAVING count(*) > 2;

SELECT * FROM busy_users ORDER BY task_count DESC, full_name;

-- 4. Open work by priority (1 = urgent), then by due date; undated last.
SELECT id, title, priority, due_date, status
FROM tasks
WHERE status <> 'done'
ORDER BY priority, due_date NULLS LAST, id
LIMIT 20;

-- 5. The ten latest audit entries and who made them.
SELECT a.changed_at, a.action, a.table_name, a.record_id,
       coalesce(u.full_name, '(system)') AS changed_by
FROM audit_logs a
LEFT JOIN users u ON u.id = a.user_id
ORDER BY a.changed_at DESC, a.id DESC
LIMIT 10;
