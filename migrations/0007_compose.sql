-- Learners' own compose files for their PostgreSQL (src/sandbox/compose.rs).
--
-- One row per learner who saved one. `yaml` is the file as written (already
-- validated when saved); `applied` is the JSON of the validated settings a
-- `compose up` put in force (NULL: pglab's own settings). The Docker backend
-- reads `applied` each time it creates the learner's container. No row at
-- all: pglab's settings, nothing written.
create table sandbox_compose (
    learner_id  integer primary key,
    yaml        text not null,
    applied     text,
    updated_at  integer not null default (unixepoch())
);
