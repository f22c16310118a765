//! API tests over a real socket and a real database (SQLite by default; PostgreSQL with
//! TEST_DATABASE_URL).
mod helpers;

mod authz;
mod concurrency;
mod create_path;
mod graphql;
mod hostile;
mod oidc;
mod openapi;
mod operations;
mod oracles;
mod outage;
mod provider;
mod relay;
mod rest;
mod revocation;
mod schema;
mod storage;
mod vault;
mod vault_refresh;
