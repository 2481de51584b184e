-- Accounts and classrooms: sign-in sessions and bearer tokens, classrooms with
-- join codes and their members, the one-time link that creates the first
-- instructor, and sign-in attempts for rate limiting.
-- Secrets (session tokens, bearer tokens, setup tokens) are stored only as
-- SHA-256 hashes: a copy of the store signs nobody in. Times are unix seconds.

-- One row per browser session (kind 'cookie') or per bearer token for scripts
-- (kind 'bearer'). Expiry slides forward while the session is used.
create table sessions (
    id           integer primary key,
    token_hash   blob not null unique,
    user_id      integer not null references users(id) on delete cascade,
    kind         text not null check (kind in ('cookie', 'bearer')),
    -- The double-submit CSRF value of a cookie session; the browser reads it
    -- anyway (pglab_csrf cookie), so it is not a secret from its owner.
    csrf_token   text not null default '',
    created_at   integer not null default (unixepoch()),
    last_seen_at integer not null default (unixepoch()),
    expires_at   integer not null
);
create index sessions_user on sessions (user_id);
create index sessions_expires on sessions (expires_at);

-- A classroom: learners join with its code while it is open.
create table classrooms (
    id         integer primary key,
    name       text not null,
    join_code  text not null unique,
    is_open    integer not null default 1 check (is_open in (0, 1)),
    created_by integer references users(id) on delete set null,
    created_at integer not null default (unixepoch())
);

-- Who is in which classroom; progress views join through this table.
create table classroom_members (
    classroom_id integer not null references classrooms(id) on delete cascade,
    user_id      integer not null references users(id) on delete cascade,
    joined_at    integer not null default (unixepoch()),
    primary key (classroom_id, user_id)
);
create index classroom_members_user on classroom_members (user_id);

-- The one-time links printed at start while no instructor exists.
create table setup_tokens (
    token_hash blob primary key,
    created_at integer not null default (unixepoch()),
    expires_at integer not null,
    used_at    integer
);

-- Sign-in attempts, kept for the rate-limit window only.
create table login_attempts (
    id        integer primary key,
    username  text not null collate nocase,
    address   text not null,
    succeeded integer not null check (succeeded in (0, 1)),
    at        integer not null default (unixepoch())
);
create index login_attempts_username on login_attempts (username, at);
create index login_attempts_address on login_attempts (address, at);
