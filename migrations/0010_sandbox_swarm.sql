-- The swarm sandbox backend (src/sandbox/swarm.rs, issue #18): `backend`
-- may be 'swarm' too. SQLite cannot change a CHECK constraint in place, so
-- the table is rebuilt with the same columns and rows.
create table sandboxes_new (
    learner_id  integer primary key,
    backend     text not null check (backend in ('docker', 'local', 'swarm')),
    -- Docker: the container name; swarm: the service name; local: the
    -- cluster folder.
    container   text not null,
    -- Docker and swarm: the named volume at PGDATA; local: empty.
    volume      text not null default '',
    -- Random per-sandbox password of `labuser` (scram-sha-256).
    password    text not null,
    state       text not null default 'absent',
    created_at  integer not null default (unixepoch()),
    last_used   integer not null default (unixepoch())
);

insert into sandboxes_new
    (learner_id, backend, container, volume, password, state, created_at, last_used)
select learner_id, backend, container, volume, password, state, created_at, last_used
from sandboxes;

drop table sandboxes;
alter table sandboxes_new rename to sandboxes;
create index sandboxes_last_used on sandboxes (state, last_used);
