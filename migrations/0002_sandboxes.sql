-- Per-learner PostgreSQL sandboxes (src/sandbox.rs).
--
-- One row per learner that has a sandbox. No foreign key to users on purpose:
-- when a learner is deleted, the row (and the container or cluster it names)
-- stays until an operator removes it with `pglab sandbox rm`, so that
-- `pglab sandbox list --orphans` can show it.
create table sandboxes (
    learner_id  integer primary key,
    backend     text not null check (backend in ('docker', 'local')),
    -- Docker: the container name; local: the cluster folder.
    container   text not null,
    -- Docker: the named volume at PGDATA; local: empty.
    volume      text not null default '',
    -- Random per-sandbox password of `labuser` (scram-sha-256).
    password    text not null,
    state       text not null default 'absent',
    created_at  integer not null default (unixepoch()),
    last_used   integer not null default (unixepoch())
);

create index sandboxes_last_used on sandboxes (state, last_used);

-- Warm pool: pre-initialised Docker sandboxes not yet given to a learner.
-- Assigning one moves its row into `sandboxes` and renames the container.
create table sandbox_pool (
    container   text primary key,
    volume      text not null,
    password    text not null,
    created_at  integer not null default (unixepoch())
);
