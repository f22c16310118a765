-- pgbench anchor: the service's write, done by PostgreSQL alone. One transaction: the same
-- INSERT ... RETURNING into user_oauth_source_connections, then the read of the nested source.
-- Variables (-D): start, nclients, first_user, n=0. Pair index as in lib/create.lua.
\set i :start + :client_id + :n * :nclients
\set n :n + 1
\set u :first_user + (:i / 10)
\set s :i % 10
BEGIN;
INSERT INTO user_oauth_source_connections (user_id, source_id, identifier, access_token, expires, created, last_updated)
  VALUES (:u, (SELECT uuid FROM sources WHERE slug = 'bench-' || :s::text), 'pgbench-' || :i::text,
          '\x01000102030405060708090a0b0c0d0e0f1011121314151617000102030405060708090a0b0c0d0e0f10111213141516'::bytea,
          NULL, now(), now())
  RETURNING id, user_id, source_id, identifier, expires, created, last_updated \gset
SELECT uuid, name, slug, enabled, promoted, authentication_flow_id, enrollment_flow_id, policy_engine_mode,
       user_matching_mode, managed, user_path_template, icon, kind, provider_type
  FROM sources WHERE uuid = :source_id;
COMMIT;
