-- Query plans learners ran (explain area): the last 50 per learner are kept
-- (older ones deleted on save) so two can be compared.
create table plans (
    id          integer primary key,
    learner_id  integer not null references users(id) on delete cascade,
    created_at  integer not null default (unixepoch()),
    sql         text not null,
    plan_json   text not null,
    total_ms    real
);

create index plans_by_learner on plans (learner_id, id desc);
