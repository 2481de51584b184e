-- Section 14, exercise 14.B.2: a small, readable data set.
-- Re-runnable: empties the five tables and restarts their ids at 1.

TRUNCATE audit_logs, tasks, projects, users, accounts RESTART IDENTITY CASCADE;

INSERT INTO users (username, email) VALUES
  ('ana',    'ana@taskflow.test'),
  ('bruno',  'bruno@taskflow.test'),
  ('chioma', 'chioma@taskflow.test'),
  ('dmitri', 'dmitri@taskflow.test'),
  ('emma',   'emma@taskflow.test'),
  ('farid',  'farid@taskflow.test');

INSERT INTO projects (name, owner_id)
SELECT p.name, u.id
FROM (VALUES ('Website relaunch', 'ana'),
             ('Billing service',  'bruno'),
             ('Mobile app',       'chioma')) AS p (name, owner)
JOIN users u ON u.username = p.owner;

-- priority: 1 = low ... 5 = most important.
INSERT INTO tasks (title, project_id, assigned_to, status, priority, due_date, created_at)
SELECT t.title, p.id, u.id, t.status, t.priority, current_date + t.due_in, now() - t.age
FROM (VALUES
  ('Website relaunch', 'ana',    'Pick a new colour palette',      'closed',      2,  -20, interval '40 days'),
  ('Website relaunch', 'bruno',  'Migrate blog posts',             'in_progress', 3,    5, interval '12 days'),
  ('Website relaunch', 'bruno',  'Fix broken links on /pricing',   'open',        5,    1, interval '2 days'),
  ('Website relaunch', 'chioma', 'Write the launch announcement',  'in_progress', 4,    3, interval '6 days'),
  ('Website relaunch', NULL,     'Choose analytics tool',          'open',        1,   30, interval '1 day'),
  ('Billing service',  'bruno',  'Add VAT to invoices',            'in_progress', 5,    2, interval '9 days'),
  ('Billing service',  'dmitri', 'Retry failed card payments',     'open',        5,   -1, interval '15 days'),
  ('Billing service',  'dmitri', 'Export invoices as CSV',         'open',        3,   14, interval '3 days 4 hours'),
  ('Billing service',  'dmitri', 'Load test the checkout',         'open',        4,   10, interval '3 days'),
  ('Billing service',  'farid',  'Document the webhooks',          'closed',      2,  -10, interval '25 days'),
  ('Mobile app',       'chioma', 'Offline mode for task lists',    'in_progress', 4,   21, interval '8 days'),
  ('Mobile app',       'chioma', 'Push notifications',             'open',        3,   28, interval '4 days'),
  ('Mobile app',       'farid',  'Crash on login with SSO',        'open',        5,    0, interval '5 days'),
  ('Mobile app',       'ana',    'App store screenshots',          'closed',      3,    7, interval '2 days 6 hours')
) AS t (project, owner, title, status, priority, due_in, age)
JOIN projects p ON p.name = t.project
LEFT JOIN users u ON u.username = t.owner;

-- A little history, so the audit query of 14.B.3 has something to show:
-- each task's creation, and the status change of those no longer open.
INSERT INTO audit_logs (entity_type, entity_id, action, changes, user_id, created_at)
SELECT 'task', t.id, 'INSERT',
       jsonb_build_object('new', jsonb_build_object('title', t.title, 'status', 'open')),
       t.assigned_to, t.created_at
FROM tasks t;

INSERT INTO audit_logs (entity_type, entity_id, action, changes, user_id, created_at)
SELECT 'task', t.id, 'UPDATE',
       jsonb_build_object('old', jsonb_build_object('status', 'open'),
                          'new', jsonb_build_object('status', t.status)),
       t.assigned_to, t.created_at + interval '1 day'
FROM tasks t
WHERE t.status <> 'open';

-- Two accounts for the transfer and deadlock examples of 14.C.2.
INSERT INTO accounts (id, balance) VALUES (1, 1000.00), (2, 500.00);

SELECT (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM projects) AS projects,
       (SELECT count(*) FROM tasks) AS tasks,
       (SELECT count(*) FROM audit_logs) AS audit_logs,
       (SELECT count(*) FROM accounts) AS accounts;
