-- The console: what each learner ran, for history recall and search.
create table console_history (
    id         integer primary key,
    user_id    integer not null references users(id) on delete cascade,
    session    text not null,
    sql        text not null,
    exercise   text,
    created_at integer not null default (unixepoch())
);
create index console_history_by_user on console_history (user_id, id desc);
