-- The foundation: server settings and user accounts.
create table settings (
    key   text primary key,
    value text not null
);

create table users (
    id            integer primary key,
    username      text not null unique collate nocase,
    password_hash text,
    role          text not null default 'learner' check (role in ('learner', 'instructor')),
    created_at    integer not null default (unixepoch())
);
