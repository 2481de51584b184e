-- Per-classroom instructor scoping, and the audit log of instructor actions.

-- An administrator instructor sees and manages every classroom; any other
-- instructor only the classrooms they created or were assigned to. Every
-- instructor that existed before this migration managed every classroom, so
-- they keep doing so (nobody loses access on upgrade).
alter table users add column is_admin integer not null default 0 check (is_admin in (0, 1));
update users set is_admin = 1 where role = 'instructor';

-- Who manages which classroom (the creator, and anyone assigned to it).
create table classroom_instructors (
    classroom_id integer not null references classrooms(id) on delete cascade,
    user_id      integer not null references users(id) on delete cascade,
    added_at     integer not null default (unixepoch()),
    primary key (classroom_id, user_id)
);
create index classroom_instructors_user on classroom_instructors (user_id);
insert or ignore into classroom_instructors (classroom_id, user_id)
    select id, created_by from classrooms where created_by is not null;

-- What instructors did to learners and classrooms. Names are copied in, so
-- the log stays readable after an account is removed.
create table audit_log (
    id           integer primary key,
    at           integer not null default (unixepoch()),
    actor_id     integer,
    actor        text not null,
    action       text not null,
    classroom_id integer,
    target_id    integer,
    target       text not null default '',
    detail       text not null default ''
);
create index audit_log_at on audit_log (at);
