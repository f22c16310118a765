//! Subscriptions (over the websocket, see `ws`): changes of the connections a subscriber may
//! see, as they commit, on this instance or (PostgreSQL) any other.
use std::time::Duration;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription as GqlSubscription};
use tokio::sync::broadcast::error::RecvError;

use super::errors::{ErrorCode, render};
use super::node::GlobalId;
use super::types::UserOAuthSourceConnection;
use super::ws::SessionHandle;
use super::{caller, errors, service};
use crate::domain::model::ChangeKind;
use crate::domain::{Error, Service};
use crate::server::AppState;

/// How often a subscriber's credentials are resolved again (besides at every event): with
/// the principal cache's 500 ms, a revoked key stops its subscriptions within a second.
const RECHECK: Duration = Duration::from_millis(250);

pub struct Subscription;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "UserOAuthSourceConnectionEventKind")]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

/// A committed change of a connection the subscriber may see.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "UserOAuthSourceConnectionEvent")]
pub struct ConnectionEvent {
    pub kind: EventKind,
    /// The connection's global id (also of a deleted one: `@deleteRecord`).
    pub id: ID,
    pub pk: i32,
    /// The connection as it is now; null when deleted.
    pub connection: Option<UserOAuthSourceConnection>,
}

fn limit_error(message: String) -> async_graphql::Error {
    let e = errors::request_error(message, ErrorCode::QueryLimitExceeded);
    async_graphql::Error {
        message: e.message,
        source: None,
        extensions: e.extensions,
    }
}

#[GqlSubscription]
impl Subscription {
    /// Connections created, updated and deleted from now on, among those the subscriber may
    /// see (their own, or all with the view permission, decided at each event). Ends with
    /// an `UNAUTHENTICATED` error once the subscriber's credentials are refused, and with
    /// `QUERY_LIMIT_EXCEEDED` when it fell more than 1024 changes behind.
    #[graphql(name = "userOAuthSourceConnectionEvents")]
    async fn user_oauth_source_connection_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<ConnectionEvent>> + use<>> {
        caller(ctx).await?;
        let session = ctx
            .data_opt::<SessionHandle>()
            .cloned()
            .ok_or_else(|| render(Error::Unauthenticated))?;
        let state = ctx.data_unchecked::<AppState>().clone();
        let slot = session
            .get()
            .ok_or_else(|| render(Error::Unauthenticated))?
            .subscription_slot()
            .ok_or_else(|| {
                limit_error(format!(
                    "This websocket runs {} subscriptions already.",
                    state.graphql.sockets.limits.max_subscriptions
                ))
            })?;
        let service: Service = service(ctx).clone();
        let mut changes = service.connection_changes().await.map_err(render)?;
        Ok(async_stream::stream! {
            let _slot = slot;
            let mut recheck = tokio::time::interval(RECHECK);
            recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let Some(s) = session.get() else { return };
            loop {
                let change = tokio::select! {
                    change = changes.recv() => change,
                    _ = recheck.tick() => {
                        if let Err(e) = s.principal(&state).await {
                            yield Err(render(e));
                            break;
                        }
                        continue;
                    }
                };
                let change = match change {
                    Ok(change) => change,
                    Err(RecvError::Lagged(n)) => {
                        yield Err(limit_error(format!(
                            "The subscriber fell {n} changes behind; subscribe again and refetch."
                        )));
                        break;
                    }
                    Err(RecvError::Closed) => break,
                };
                // Visibility with the principal of now, not of the subscription's start.
                let principal = match s.principal(&state).await {
                    Ok(p) => p,
                    Err(e) => {
                        yield Err(render(e));
                        break;
                    }
                };
                if !Service::may_see(&principal, change.user) {
                    continue;
                }
                let id: ID = GlobalId::Connection(change.pk).into();
                let event = match change.kind {
                    ChangeKind::Deleted => ConnectionEvent {
                        kind: EventKind::Deleted,
                        id,
                        pk: change.pk,
                        connection: None,
                    },
                    kind => match service.connection(&principal, change.pk).await {
                        Ok(c) => ConnectionEvent {
                            kind: if kind == ChangeKind::Created {
                                EventKind::Created
                            } else {
                                EventKind::Updated
                            },
                            id,
                            pk: change.pk,
                            connection: Some(c.into()),
                        },
                        // Deleted (or moved out of sight) since: its own event follows.
                        Err(Error::NotFound) => continue,
                        Err(e) => {
                            yield Err(render(e));
                            continue;
                        }
                    },
                };
                yield Ok(event);
            }
        })
    }
}
