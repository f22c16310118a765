//! Short-lived caches of what nearly every request reads: the principal behind an API key (or
//! an OpenID Connect access token, by its SHA-256 as well) and a source. Their time to live is the staleness the service promises: a revoked or expired
//! key, a deactivated user, a removed permission, a changed or deleted source take effect on
//! every instance within one second, whichever process made the change and on either
//! database, with no invalidation channel to lose. A read that began before a change may
//! insert what it saw; `TTL` leaves room for that read's own duration under the second.
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use uuid::Uuid;

use super::model::Source;
use super::permission::Principal;

pub const TTL: Duration = Duration::from_millis(500);
const MAX_PRINCIPALS: u64 = 10_000;
const MAX_SOURCES: u64 = 1_000;

/// A resolved key: its principal and its own expiry (checked on every use, cached or not).
pub type KeyEntry = (Principal, Option<DateTime<Utc>>);

#[derive(Clone, Debug)]
pub struct Caches {
    pub principals: Cache<String, KeyEntry>,
    pub sources: Cache<Uuid, Source>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            principals: Cache::builder()
                .max_capacity(MAX_PRINCIPALS)
                .time_to_live(TTL)
                .build(),
            sources: Cache::builder()
                .max_capacity(MAX_SOURCES)
                .time_to_live(TTL)
                .build(),
        }
    }
}
