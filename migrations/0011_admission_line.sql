-- The admission line of a full classroom (src/sandbox/line_keep.rs, issue
-- #18), kept across pglab restarts: who waits for a place, first first.
-- pglab writes it as the line changes and reads it back at start-up, when
-- every learner in it gets their place back and their start goes on.
create table admission_line (
    learner_id integer primary key references users(id) on delete cascade,
    -- 1-based place in line when written.
    position   integer not null,
    -- Unix time they joined the line (kept, so instructors see how long).
    joined_at  integer not null
);
