-- Sign-in through OpenID Connect (src/auth/oidc/).
--
-- An external identity is the provider's `iss` and `sub` claims: together they
-- name one person for ever (usernames and e-mail addresses change). Accounts
-- are linked only by this pair, never by a matching username, so a provider
-- account called "admin" cannot take over a local "admin".
create table external_identities (
    issuer        text not null,
    subject       text not null,
    user_id       integer not null references users(id) on delete cascade,
    created_at    integer not null default (unixepoch()),
    last_login_at integer not null default (unixepoch()),
    primary key (issuer, subject)
);
create index external_identities_user on external_identities (user_id);

-- Sign-ins under way, kept server-side for a few minutes and used once:
-- kind 'flow' is a redirect to the provider (its state, nonce and PKCE
-- verifier), kind 'join' a verified new identity waiting for a join code.
-- `key_hash` is the SHA-256 of the state (flow) or of a random key (join);
-- `browser_hash` the SHA-256 of the short-lived `pglab_oidc` cookie of the
-- browser that started it, so a callback URL sent to someone else signs
-- nobody in. `data` is JSON owned by src/auth/oidc/pending.rs.
create table oidc_pending (
    key_hash     blob primary key,
    browser_hash blob not null,
    kind         text not null check (kind in ('flow', 'join')),
    data         text not null,
    expires_at   integer not null
);
create index oidc_pending_expires on oidc_pending (expires_at);
