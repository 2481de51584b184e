-- Section 14, exercise 14.B.2: a small, readable data set.
-- Re-runnable: empties the four tables and restarts their ids at 1.

TRUNCATE audit_logs, tasks, projects, users RESTART IDENTITY CASCADE;

INSERT INTO users (email, full_name, role) VALUES
  ('ana@taskflow.test',    'Ana Duarte',     'admin'),
  ('bruno@taskflow.test',  'Bruno Keller',   'member'),
  ('chioma@taskflow.test', 'Chioma Eze',     'member'),
  ('dmitri@taskflow.test', 'Dmitri Volkov',  'member'),
  ('emma@taskflow.test',   'Emma Lindqvist', 'viewer'),
  ('farid@taskflow.test',  'Farid Haddad',   'member');

INSERT INTO projects (owner_id, name)
SELECT u.id, p.name
FROM (VALUES ('ana@taskflow.test', 'Website relaunch'),
             ('bruno@taskflow.test', 'Billing service'),
             ('chioma@taskflow.test', 'Mobile app')) AS p (email, name)
JOIN users u ON u.email = p.email;

INSERT INTO tasks (project_id, assignee_id, title, status, priority, due_date, created_at)
SELECT p.id, u.id, t.title, t.status, t.priority, current_date + t.due_in, now() - t.age
FROM (VALUES
  ('Website relaunch', 'ana@taskflow.test',    'Pick a new colour palette',      'done',        3,  -20, interval '40 days'),
  ('Website relaunch', 'bruno@taskflow.test',  'Migrate blog posts',             'in_progress', 2,    5, interval '12 days'),
  ('Website relaunch', 'bruno@taskflow.test',  'Fix broken links on /pricing',   'todo',        1,    1, interval '2 days'),
  ('Website relaunch', 'chioma@taskflow.test', 'Write the launch announcement',  'review',      2,    3, interval '6 days'),
  ('Website relaunch', NULL,                   'Choose analytics tool',          'todo',        4,   30, interval '1 day'),
  ('Billing service',  'bruno@taskflow.test',  'Add VAT to invoices',            'in_progress', 1,    2, interval '9 days'),
  ('Billing service',  'dmitri@taskflow.test', 'Retry failed card payments',     'blocked',     1,   -1, interval '15 days'),
  ('Billing service',  'dmitri@taskflow.test', 'Export invoices as CSV',         'todo',        3,   14, interval '3 days'),
  ('Billing service',  'dmitri@taskflow.test', 'Load test the checkout',         'todo',        2,   10, interval '3 days'),
  ('Billing service',  'farid@taskflow.test',  'Document the webhooks',          'done',        4,  -10, interval '25 days'),
  ('Mobile app',       'chioma@taskflow.test', 'Offline mode for task lists',    'in_progress', 2,   21, interval '8 days'),
  ('Mobile app',       'chioma@taskflow.test', 'Push notifications',             'todo',        3,   28, interval '4 days'),
  ('Mobile app',       'farid@taskflow.test',  'Crash on login with SSO',        'blocked',     1,    0, interval '5 days'),
  ('Mobile app',       'ana@taskflow.test',    'App store screenshots',          'review',      3,    7, interval '2 days')
) AS t (project, email, title, status, priority, due_in, age)
JOIN projects p ON p.name = t.project
LEFT JOIN users u ON u.email = t.email;

-- A little history, so the audit query of 14.B.3 has something to show.
INSERT INTO audit_logs (user_id, table_name, record_id, action, new_data, changed_at)
SELECT t.assignee_id, 'tasks', t.id, 'INSERT', jsonb_build_object('title', t.title, 'status', 'todo'), t.created_at
FROM tasks t;

INSERT INTO audit_logs (user_id, table_name, record_id, action, old_data, new_data, changed_at)
SELECT t.assignee_id, 'tasks', t.id, 'UPDATE',
       jsonb_build_object('status', 'todo'), jsonb_build_object('status', t.status),
       t.created_at + interval '1 day'
FROM tasks t
WHERE t.status <> 'todo';

SELECT (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM projects) AS projects,
       (SELECT count(*) FROM tasks) AS tasks,
       (SELECT count(*) FROM audit_logs) AS audit_logs;
