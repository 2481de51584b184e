-- Section 14, exercise 14.B.3: five everyday queries on the TaskFlow data.

-- 1. Ana's tasks with the name of their project.
SELECT t.title, p.name AS project
FROM tasks t
JOIN projects p ON t.project_id = p.id
JOIN users u ON t.assigned_to = u.id
WHERE u.username = 'ana';

-- 2. How many tasks are in each status.
SELECT status, count(*) AS tasks
FROM tasks
GROUP BY status;

-- 3. The people with more than two tasks.
SELECT u.username, count(*) AS tasks
FROM users u
JOIN tasks t ON t.assigned_to = u.id
GROUP BY u.username
HAVING count(*) > 2;

-- 4. The ten most important tasks: priority 5 first, the oldest first
--    among equals.
SELECT title, priority, created_at
FROM tasks
ORDER BY priority DESC, created_at
LIMIT 10;

-- 5. The ten most recent audit log entries, with who made them.
SELECT a.created_at, a.entity_type, a.entity_id, a.action, u.username
FROM audit_logs a
LEFT JOIN users u ON a.user_id = u.id
ORDER BY a.created_at DESC
LIMIT 10;
