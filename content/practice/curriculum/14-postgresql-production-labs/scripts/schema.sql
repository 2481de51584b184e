-- Section 14, exercise 14.B.2: the TaskFlow schema.
-- Re-runnable: it drops the four tables (and their data) first.

DROP TABLE IF EXISTS audit_logs, tasks, projects, users CASCADE;

CREATE TABLE users (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email       text NOT NULL UNIQUE CHECK (email LIKE '%_@_%'),
  full_name   text NOT NULL,
  role        text NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member', 'viewer')),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  owner_id    bigint NOT NULL REFERENCES users (id),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (owner_id, name)
);

CREATE TABLE tasks (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  assignee_id  bigint REFERENCES users (id) ON DELETE SET NULL,
  title        text NOT NULL CHECK (length(title) > 0),
  status       text NOT NULL DEFAULT 'todo'
               CHECK (status IN ('todo', 'in_progress', 'review', 'done', 'blocked')),
  priority     smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),  -- 1 = urgent
  due_date     date,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_logs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
  table_name  text NOT NULL,
  record_id   bigint NOT NULL,
  action      text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
  old_data    jsonb,
  new_data    jsonb,
  changed_at  timestamptz NOT NULL DEFAULT now()
);

-- PostgreSQL indexes primary keys and UNIQUE columns by itself, but not
-- foreign keys: index the columns joins and ON DELETE actions look up.
CREATE INDEX tasks_project_id_idx  ON tasks (project_id);
CREATE INDEX tasks_assignee_id_idx ON tasks (assignee_id);
CREATE INDEX projects_owner_id_idx ON projects (owner_id);
CREATE INDEX audit_logs_record_idx ON audit_logs (table_name, record_id);
CREATE INDEX audit_logs_changed_at_idx ON audit_logs (changed_at DESC);
