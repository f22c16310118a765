-- The anchor's equivalent tables: same columns, keys and constraints as oauthlink's migration.
DROP SCHEMA IF EXISTS app CASCADE;
CREATE SCHEMA app;
CREATE TABLE app.users (
  id serial PRIMARY KEY,
  username varchar(150) NOT NULL UNIQUE
);
CREATE TABLE app.sources (
  uuid uuid PRIMARY KEY,
  name text NOT NULL UNIQUE,
  slug varchar(50) NOT NULL UNIQUE,
  enabled boolean NOT NULL DEFAULT true,
  provider_type varchar(32) NOT NULL DEFAULT 'github'
);
CREATE TABLE app.user_oauth_source_connections (
  id serial PRIMARY KEY,
  user_id integer NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
  source_id uuid NOT NULL REFERENCES app.sources (uuid) ON DELETE CASCADE,
  identifier varchar(255) NOT NULL CHECK (length(trim(identifier)) > 0),
  access_token bytea,
  expires timestamptz,
  created timestamptz NOT NULL DEFAULT now(),
  last_updated timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT uq_connection_user_source UNIQUE (user_id, source_id),
  CONSTRAINT uq_connection_source_identifier UNIQUE (source_id, identifier)
);
CREATE INDEX ix_connection_created ON app.user_oauth_source_connections (created, id);
CREATE INDEX ix_connection_identifier ON app.user_oauth_source_connections (identifier, id);
-- PostGraphile needs the FK columns indexed to expose backward relations (the UNIQUE ones are).
CREATE INDEX ix_connection_source ON app.user_oauth_source_connections (source_id);
