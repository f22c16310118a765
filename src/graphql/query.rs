use std::collections::HashMap;

use async_graphql::{Context, ID, Object, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::errors::{ErrorCode, render};
use super::node::{GlobalId, MAX_NODES};
use super::types::{
    AuditEvent, AuditEventPage, Edge, Me, Node, Order, OrderDirection, PageInfo, Source,
    UserOAuthSourceConnection,
};
use super::{caller, service};
use crate::domain::Error;
use crate::domain::model::{ConnectionFilter, ConnectionWithSource, Sort};
use crate::domain::service::Service;
use crate::domain::validation;
use crate::storage::{Cursor, KeysetPage};

#[derive(Default)]
pub struct Query;

pub const MAX_PAGE: i32 = 100;

/// A page of connections (Relay cursor connection).
pub struct ConnectionPage {
    edges: Vec<Edge>,
    page_info: PageInfo,
    filter: ConnectionFilter,
}

#[Object(name = "UserOAuthSourceConnectionConnection")]
impl ConnectionPage {
    async fn edges(&self) -> &[Edge] {
        &self.edges
    }

    async fn nodes(&self) -> Vec<&UserOAuthSourceConnection> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Rows matching the filters, over all pages (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let p = caller(ctx).await?;
        service(ctx)
            .count_connections(&p, &self.filter)
            .await
            .map_err(render)
    }
}

fn encode_cursor(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", c.pk, c.value))
}

fn decode_cursor(s: &str) -> Option<Cursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let (pk, value) = raw.split_once(':')?;
    Some(Cursor {
        pk: pk.parse().ok()?,
        value: value.to_owned(),
    })
}

fn bad_input(field: &'static str, message: &str) -> async_graphql::Error {
    render(Error::field(
        field,
        crate::domain::error::FieldCode::Invalid,
        message,
    ))
}

/// Resolves global ids with the visibility rules of the other queries, in one batch per type.
async fn resolve_nodes(ctx: &Context<'_>, ids: &[ID]) -> Result<Vec<Option<Node>>> {
    let p = caller(ctx).await?;
    let service = service(ctx);
    let decoded: Vec<Option<GlobalId>> = ids.iter().map(|id| GlobalId::decode(id)).collect();
    let connection_pks: Vec<i32> = decoded
        .iter()
        .filter_map(|d| match d {
            Some(GlobalId::Connection(pk)) => Some(*pk),
            _ => None,
        })
        .collect();
    let source_pks: Vec<Uuid> = decoded
        .iter()
        .filter_map(|d| match d {
            Some(GlobalId::Source(pk)) => Some(*pk),
            _ => None,
        })
        .collect();
    let connections = if connection_pks.is_empty() {
        HashMap::new()
    } else {
        service
            .connections_visible(&p, &connection_pks)
            .await
            .map_err(render)?
    };
    // Every authenticated caller may read every source (as `sources` and `source`).
    let sources = if source_pks.is_empty() {
        HashMap::new()
    } else {
        service.sources_of(&source_pks).await.map_err(render)?
    };
    Ok(decoded
        .into_iter()
        .map(|d| match d? {
            GlobalId::Connection(pk) => connections
                .get(&pk)
                .cloned()
                .map(|c| Node::UserOAuthSourceConnection(c.into())),
            GlobalId::Source(pk) => sources.get(&pk).cloned().map(|s| Node::Source(s.into())),
            // Users are exposed as the caller only (`me`).
            GlobalId::User(pk) => (pk == p.user_id).then(|| Node::User(Me::of(p.clone()))),
        })
        .collect())
}

// Merged into the root type (graphql/mod.rs); its own name never shows.
#[Object(name = "ConnectionQuery")]
impl Query {
    /// The caller, with their permissions.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        Ok(Me::of(caller(ctx).await?))
    }

    /// The object of a global id; null when there is none, or the caller may not see it
    /// (the two look alike), or the id is not one this API issued.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        Ok(resolve_nodes(ctx, std::slice::from_ref(&id))
            .await?
            .pop()
            .flatten())
    }

    /// The objects of global ids, in order, null where `node(id:)` would be null. At most
    /// 100 ids; they count towards the query's complexity.
    #[graphql(complexity = "ids.len().saturating_mul(child_complexity).saturating_add(1)")]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(bad_input(
                "ids",
                &format!("At most {MAX_NODES} ids are allowed."),
            ));
        }
        resolve_nodes(ctx, &ids).await
    }

    /// Every error code this API may return in `errors[].extensions.code`.
    async fn error_codes(&self) -> Vec<ErrorCode> {
        ErrorCode::ALL.to_vec()
    }

    async fn sources(&self, ctx: &Context<'_>) -> Result<Vec<Source>> {
        let p = caller(ctx).await?;
        let list = service(ctx).sources(&p).await.map_err(render)?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// A source by pk or slug; null when there is none.
    async fn source(
        &self,
        ctx: &Context<'_>,
        pk: Option<Uuid>,
        slug: Option<String>,
    ) -> Result<Option<Source>> {
        let p = caller(ctx).await?;
        if pk.is_none() && slug.is_none() {
            return Err(bad_input("pk", "Give pk or slug."));
        }
        let found = service(ctx)
            .source(&p, pk, slug.as_deref())
            .await
            .map_err(render)?;
        Ok(found.map(Into::into))
    }

    #[graphql(name = "userOAuthSourceConnection")]
    async fn user_oauth_source_connection(
        &self,
        ctx: &Context<'_>,
        pk: i32,
    ) -> Result<UserOAuthSourceConnection> {
        let p = caller(ctx).await?;
        let c = service(ctx).connection(&p, pk).await.map_err(render)?;
        Ok(c.into())
    }

    /// Connections the caller may see (their own, or all with the view permission), in
    /// cursor pages of at most 100.
    #[graphql(name = "userOAuthSourceConnections")]
    #[allow(clippy::too_many_arguments)]
    async fn user_oauth_source_connections(
        &self,
        ctx: &Context<'_>,
        source_slug: Option<String>,
        user: Option<i32>,
        order_by: Option<Order>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ConnectionPage> {
        let p = caller(ctx).await?;
        let service = service(ctx);
        if first.is_some() && last.is_some() {
            return Err(bad_input("first", "Give first or last, not both."));
        }
        let forward = last.is_none();
        let limit = first.or(last).unwrap_or(20);
        if !(0..=MAX_PAGE).contains(&limit) {
            return Err(bad_input(
                if forward { "first" } else { "last" },
                &format!("Must be between 0 and {MAX_PAGE}."),
            ));
        }
        let cursor_text = if forward { after } else { before };
        let cursor = match cursor_text.as_deref().map(decode_cursor) {
            None => None,
            Some(Some(c)) => Some(c),
            Some(None) => {
                return Err(bad_input(
                    if forward { "after" } else { "before" },
                    "Invalid cursor.",
                ));
            }
        };
        if let Some(slug) = &source_slug {
            validation::text("source_slug", slug, 50)
                .map_err(|e| render(Error::Validation(vec![e])))?;
        }
        let order = order_by.unwrap_or_default();
        let sort = Sort {
            key: order.field.into(),
            descending: order.direction == OrderDirection::Desc,
        };
        let filter = ConnectionFilter {
            source_slug,
            user,
            search: Vec::new(),
        };
        let had_cursor = cursor.is_some();
        let page = KeysetPage {
            sort,
            cursor,
            forward,
            limit: limit as u64,
        };
        let Some((rows, more)) = service
            .connections_keyset(&p, &filter, &page)
            .await
            .map_err(render)?
        else {
            return Err(bad_input(
                if forward { "after" } else { "before" },
                "Invalid cursor.",
            ));
        };
        let source_pks: Vec<Uuid> = rows.iter().map(|c| c.source).collect();
        let sources = service.sources_of(&source_pks).await.map_err(render)?;
        let mut edges = Vec::with_capacity(rows.len());
        for connection in rows {
            let source = sources
                .get(&connection.source)
                .cloned()
                .ok_or_else(|| render(Error::internal("connection without source")))?;
            let cursor = encode_cursor(&Service::cursor_for(sort, &connection));
            edges.push(Edge {
                cursor,
                node: ConnectionWithSource { connection, source }.into(),
            });
        }
        let page_info = PageInfo {
            has_next_page: if forward { more } else { had_cursor },
            has_previous_page: if forward { had_cursor } else { more },
            start_cursor: edges.first().map(|e| e.cursor.clone()),
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        };
        Ok(ConnectionPage {
            edges,
            page_info,
            filter,
        })
    }

    /// Audit events, newest first (superusers only).
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 0)] offset: i32,
        #[graphql(default = 50)] limit: i32,
    ) -> Result<AuditEventPage> {
        let p = caller(ctx).await?;
        if offset < 0 || !(0..=MAX_PAGE).contains(&limit) {
            return Err(bad_input(
                "limit",
                &format!("offset must be ≥ 0 and limit between 0 and {MAX_PAGE}."),
            ));
        }
        let (events, total) = service(ctx)
            .audit_events(&p, offset as u64, limit as u64)
            .await
            .map_err(render)?;
        Ok(AuditEventPage {
            total_count: total,
            events: events
                .into_iter()
                .map(|e| AuditEvent {
                    id: e.id,
                    created: e.created,
                    actor: e.actor,
                    action: e.action,
                    connection: e.connection,
                    source: e.source,
                    identifier: e.identifier,
                    owner: e.owner,
                })
                .collect(),
        })
    }
}
