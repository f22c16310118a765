//! GraphQL over a websocket (the `graphql-transport-ws` protocol) at `/graphql`. The
//! credentials come in `connection_init` (`{"Authorization": "Bearer …"}`) and go through
//! the same path as an HTTP request's header; every operation then passes the same checks as
//! over HTTP (`prepare`). Bounded: websockets at once, subscriptions per socket, and (see
//! `subscription`) the events a subscriber may lag behind.
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::futures_util::{SinkExt, StreamExt, stream};
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor, Request, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request as HttpRequest};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Caller, ErrorCode, Refused, Transport, prepare};
use crate::domain::permission::Principal;
use crate::server::{AppState, ConnectionSlot};

/// graphql-ws close codes.
const CLOSE_FORBIDDEN: u16 = 4403;
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_INIT_TIMEOUT: u16 = 4408;

/// Websocket limits.
#[derive(Clone, Copy, Debug)]
pub struct SocketLimits {
    /// Websockets open at once on this instance (each also holds one of the server's
    /// connection slots, `OAUTHLINK_MAX_CONNECTIONS`).
    pub max_sockets: usize,
    /// Subscriptions running at once on one websocket.
    pub max_subscriptions: usize,
    /// Time a new websocket has to send an accepted `connection_init` (graphql-ws closes with
    /// 4408 beyond; its reference server's default is 3 s): an anonymous client cannot hold
    /// a websocket it never authenticates.
    pub init_timeout: Duration,
    /// Largest message (and frame) a client may send: a document over the socket is bounded
    /// like an HTTP body.
    pub max_message_bytes: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        SocketLimits {
            max_sockets: 256,
            max_subscriptions: 16,
            init_timeout: Duration::from_secs(3),
            max_message_bytes: 64 * 1024,
        }
    }
}

/// The websockets of an instance.
#[derive(Clone)]
pub(crate) struct Sockets {
    open: Arc<Semaphore>,
    pub(crate) limits: SocketLimits,
}

impl Default for Sockets {
    fn default() -> Self {
        Sockets::new(SocketLimits::default())
    }
}

impl Sockets {
    pub(crate) fn new(limits: SocketLimits) -> Self {
        Sockets {
            open: Arc::new(Semaphore::new(limits.max_sockets)),
            limits,
        }
    }
}

/// The socket's session, in the data of each of its operations.
#[derive(Clone)]
pub(crate) struct SessionHandle(Arc<OnceLock<Session>>);

impl SessionHandle {
    pub(crate) fn get(&self) -> Option<&Session> {
        self.0.get()
    }
}

/// What `connection_init` established, for the socket's operations.
pub(crate) struct Session {
    /// The presented credentials, to resolve the principal again (revocation).
    authorization: SecretString,
    client: Option<IpAddr>,
    subscriptions: Arc<Semaphore>,
}

impl Session {
    /// The principal now (the principal cache's staleness bound applies); `Err` once the
    /// credentials are refused.
    pub(crate) async fn principal(
        &self,
        state: &AppState,
    ) -> Result<Principal, crate::domain::Error> {
        let value = self.authorization.expose_secret();
        match crate::auth::authenticate_value(state, Some(Ok(value)), self.client).await? {
            Some(p) => Ok(p),
            None => Err(crate::domain::Error::Unauthenticated),
        }
    }

    /// A subscription slot of this socket; `None` when all are taken.
    pub(crate) fn subscription_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.subscriptions.clone().try_acquire_owned().ok()
    }
}

pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    Refused::new(status, message, ErrorCode::BadRequest).into_response()
}

/// GET /graphql with `Upgrade: websocket`.
pub async fn upgrade(state: AppState, request: HttpRequest) -> HttpResponse {
    let (mut parts, _) = request.into_parts();
    let offered = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // graphql-transport-ws only: its close codes are the refusals this server gives.
    if !offered
        .split(',')
        .any(|p| WebSocketProtocols::from_str(p.trim()) == Ok(WebSocketProtocols::GraphQLWS))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Use the graphql-transport-ws websocket subprotocol.",
        );
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let Ok(permit) = state.graphql.sockets.open.clone().try_acquire_owned() else {
        let mut response = Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many websockets are open; retry later.",
            ErrorCode::QueryLimitExceeded,
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(1));
        return response;
    };
    let client = crate::auth::client_ip(&parts, &state.trusted_proxies);
    // The TCP connection's slot stays taken while the websocket lives.
    let slot = parts.extensions.remove::<ConnectionSlot>();
    let limits = state.graphql.sockets.limits;
    upgrade
        .protocols(["graphql-transport-ws"])
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_upgrade(move |socket| async move {
            serve(state, socket, client, slot).await;
            drop(permit);
        })
}

/// Every operation of the socket, run with the session's caller through `prepare`.
#[derive(Clone)]
struct SocketExecutor {
    state: AppState,
    session: Arc<OnceLock<Session>>,
}

impl SocketExecutor {
    /// The request ready to run, and whether it is a query (which gets the deadline).
    async fn prepared(&self, request: Request) -> Result<(Request, bool), Refused> {
        let Some(session) = self.session.get() else {
            return Err(Refused::Domain(crate::domain::Error::Unauthenticated));
        };
        let principal = session
            .principal(&self.state)
            .await
            .map_err(Refused::Domain)?;
        let prepared = prepare(
            &self.state,
            Caller(Some(principal)),
            request,
            None,
            Transport::WebSocket,
        )?;
        let request = prepared.request.data(SessionHandle(self.session.clone()));
        Ok((request, prepared.is_query))
    }
}

impl Executor for SocketExecutor {
    async fn execute(&self, request: Request) -> Response {
        // The library runs every websocket operation as a stream; this is not reached.
        match self.prepared(request).await {
            Ok((request, _)) => self.state.graphql.schema.execute(request).await,
            Err(refused) => refused.into_graphql(),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> stream::BoxStream<'static, Response> {
        let this = self.clone();
        stream::once(async move {
            match this.prepared(request).await {
                // A query gets the deadline it gets over HTTP.
                Ok((request, true)) => {
                    let api = this.state.graphql.clone();
                    stream::once(async move {
                        let run = Box::pin(api.schema.execute(request));
                        match tokio::time::timeout(api.deadline, run).await {
                            Ok(response) => response,
                            Err(_) => api.past_deadline(),
                        }
                    })
                    .boxed()
                }
                Ok((request, false)) => this
                    .state
                    .graphql
                    .schema
                    .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                    .boxed(),
                Err(refused) => stream::once(async move { refused.into_graphql() }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// The `Authorization` value of a `connection_init` payload, in the spellings clients use.
fn authorization_of(payload: &serde_json::Value) -> Option<&str> {
    let object = payload.as_object()?;
    let direct = ["Authorization", "authorization", "authToken", "token"]
        .iter()
        .find_map(|k| object.get(*k));
    let nested = || {
        object
            .get("headers")
            .and_then(|h| h.as_object())
            .and_then(|h| h.get("Authorization").or_else(|| h.get("authorization")))
    };
    direct.or_else(nested)?.as_str()
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    client: Option<IpAddr>,
    mut slot: Option<ConnectionSlot>,
) {
    let session = Arc::new(OnceLock::new());
    let executor = SocketExecutor {
        state: state.clone(),
        session: session.clone(),
    };
    let initialised = session.clone();
    let init_timeout = state.graphql.sockets.limits.init_timeout;
    // Set when connection_init was refused: the library closes with 1002, graphql-ws says 4403.
    let refused = Arc::new(AtomicU16::new(0));
    let on_init = {
        let refused = refused.clone();
        let max_subscriptions = state.graphql.sockets.limits.max_subscriptions;
        move |payload: serde_json::Value| async move {
            let value = authorization_of(&payload).map(|v| {
                // A bare key is accepted as `Bearer <key>`.
                if v.contains(' ') {
                    v.to_owned()
                } else {
                    format!("Bearer {v}")
                }
            });
            let outcome =
                crate::auth::authenticate_value(&state, value.as_deref().map(Ok), client).await;
            match (outcome, value) {
                (Ok(Some(_)), Some(value)) => {
                    let _ = session.set(Session {
                        authorization: SecretString::from(value),
                        client,
                        subscriptions: Arc::new(Semaphore::new(max_subscriptions)),
                    });
                    Ok(Data::default())
                }
                (Ok(_), _) => {
                    refused.store(CLOSE_FORBIDDEN, Ordering::SeqCst);
                    Err(async_graphql::Error::new(
                        "Authentication credentials were not provided.",
                    ))
                }
                (Err(e), _) => {
                    refused.store(CLOSE_FORBIDDEN, Ordering::SeqCst);
                    Err(super::render(e))
                }
            }
        }
    };
    let (mut sink, input) = socket.split();
    let input = input
        .take_while(|m| std::future::ready(m.is_ok()))
        .filter_map(|m| {
            std::future::ready(match m {
                Ok(Message::Text(t)) => Some(axum::body::Bytes::from(t)),
                Ok(Message::Binary(b)) => Some(b),
                _ => None,
            })
        });
    let messages =
        async_graphql::http::WebSocket::new(executor, input, WebSocketProtocols::GraphQLWS)
            .on_connection_init(on_init)
            .keepalive_timeout(None);
    tokio::pin!(messages);
    let init_deadline = tokio::time::sleep(init_timeout);
    tokio::pin!(init_deadline);
    loop {
        let message = tokio::select! {
            message = messages.next() => match message {
                Some(message) => message,
                None => break,
            },
            // Shutdown: the client is told to go (1001) and reconnects elsewhere, instead of
            // the socket holding the server for the whole grace period.
            () = async {
                match slot.as_mut() {
                    Some(slot) => slot.shutting_down().await,
                    None => std::future::pending().await,
                }
            } => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: "Server shutting down".into(),
                    })))
                    .await;
                break;
            }
            // Never acknowledged in time (the session is set by an accepted init).
            () = &mut init_deadline, if initialised.get().is_none() => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CLOSE_INIT_TIMEOUT,
                        reason: "Connection initialisation timeout".into(),
                    })))
                    .await;
                break;
            }
        };
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => {
                let code = match (code, refused.load(Ordering::SeqCst)) {
                    (1002, CLOSE_FORBIDDEN) => CLOSE_FORBIDDEN,
                    // "Subscribe" before the acknowledgement.
                    (1011, _) => CLOSE_UNAUTHORIZED,
                    (code, _) => code,
                };
                let reason = if code == CLOSE_FORBIDDEN {
                    "Forbidden".to_owned()
                } else {
                    reason
                };
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                break;
            }
        };
        if sink.send(message).await.is_err() {
            break;
        }
    }
}
