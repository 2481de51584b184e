-- Progress per learner and exercise, and the evidence an instructor reads.
create table exercise_progress (
    user_id            integer not null references users(id) on delete cascade,
    exercise_id        text    not null,
    status             text    not null check (status in ('in_progress', 'passed')),
    statements         integer not null default 0,
    attempts           integer not null default 0,
    first_passed_at    integer,
    last_check_message text,
    last_activity_at   integer not null,
    primary key (user_id, exercise_id)
);

-- The learner's recent statements, errors and checks (kept short per learner).
create table learner_evidence (
    id          integer primary key,
    user_id     integer not null references users(id) on delete cascade,
    exercise_id text,
    kind        text    not null check (kind in ('statement', 'check')),
    sql         text,
    error       text,
    sqlstate    text,
    passed      integer,
    created_at  integer not null
);
create index learner_evidence_by_user on learner_evidence (user_id, id desc);

-- What the stuck rules need, kept up to date as learners work, so that the
-- classroom matrix reads one row per learner (see src/progress/stuck.rs).
create table learner_activity (
    user_id            integer primary key references users(id) on delete cascade,
    last_activity_at   integer not null,
    -- Start of the current stretch of work (no pause longer than 10 minutes),
    -- or the last pass if that came later.
    working_since      integer not null,
    -- The error of the last three statements when they all failed alike.
    repeated_error     text
);
