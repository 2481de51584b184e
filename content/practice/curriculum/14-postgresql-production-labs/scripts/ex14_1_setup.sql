-- Section 14, exercise 14.B.1: the roles the TaskFlow labs use.
-- Run as labuser (a superuser in your own sandbox). Safe to run again.
--
--   taskflow_app       the application's login (reads and writes data)
--   taskflow_readonly  a group for reporting (SELECT only), no login
--   report_reader      a person in that group

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'taskflow_app') THEN
    CREATE ROLE taskflow_app LOGIN PASSWORD 'taskflow-lab-only';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'taskflow_readonly') THEN
    CREATE ROLE taskflow_readonly NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'report_reader') THEN
    CREATE ROLE report_reader LOGIN PASSWORD 'reader-lab-only' IN ROLE taskflow_readonly;
  END IF;
END
$$;

GRANT CONNECT ON DATABASE labdb TO taskflow_app, taskflow_readonly;
GRANT USAGE ON SCHEMA public TO taskflow_app, taskflow_readonly;

-- Tables labuser creates from now on get these privileges automatically,
-- so schema.sql needs no GRANT of its own.
ALTER DEFAULT PRIVILEGES FOR ROLE labuser IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO taskflow_app;
ALTER DEFAULT PRIVILEGES FOR ROLE labuser IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO taskflow_app;
ALTER DEFAULT PRIVILEGES FOR ROLE labuser IN SCHEMA public
  GRANT SELECT ON TABLES TO taskflow_readonly;

-- What you should see: three roles, and who may log in.
SELECT rolname, rolcanlogin, rolconnlimit
FROM pg_roles
WHERE rolname IN ('taskflow_app', 'taskflow_readonly', 'report_reader')
ORDER BY rolname;
