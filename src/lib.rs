//! oauthlink: links identity-provider users to their accounts at external OAuth sources.
//! Transport (`graphql`, `rest`) is separate from the domain rules (`domain`) and from storage
//! (`storage`, the only module that touches SeaORM).
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod custody;
pub mod domain;
pub mod graphql;
pub mod metrics;
pub mod oidc;
pub mod rest;
pub mod server;
pub mod storage;
pub mod strict_json;
pub mod telemetry;
pub mod throttle;
pub mod token_endpoint;
