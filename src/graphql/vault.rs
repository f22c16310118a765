//! The token vault's GraphQL operations. Tokens have a type of their own, returned only by
//! these two fields: no field of the ordinary connection type carries one, so a list of
//! connections can never hold a token.
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::errors::render;
use super::mutation::target;
use super::{caller, service};
use crate::domain::vault::TokenAnswer;

/// A connection's access token, as stored or just refreshed at its source.
#[derive(SimpleObject)]
#[graphql(name = "UserOAuthConnectionToken")]
pub struct ConnectionToken {
    /// The access token; null when none is stored.
    pub access_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// When the access token expires, if known.
    pub expires: Option<DateTime<Utc>>,
}

impl From<TokenAnswer> for ConnectionToken {
    fn from(t: TokenAnswer) -> Self {
        ConnectionToken {
            access_token: t.access_token.map(|s| s.expose_secret().to_owned()),
            token_type: t.token_type.to_owned(),
            expires: t.expires,
        }
    }
}

/// The token of the connection named by `pk` or `id`, refreshed first when `force`.
async fn connection_token(
    ctx: &Context<'_>,
    pk: Option<i32>,
    id: Option<ID>,
    force: bool,
) -> Result<ConnectionToken> {
    let p = caller(ctx).await?;
    let pk = target(pk, id)?;
    let token = service(ctx)
        .connection_token(&p, pk, force)
        .await
        .map_err(render)?;
    Ok(token.into())
}

#[derive(Default)]
pub struct VaultQuery;

#[Object]
impl VaultQuery {
    /// The access token of a connection, refreshed at its source first when it expires
    /// within the margin. The connection by `pk` or global `id` (exactly one). Needs `read_useroauthsourceconnection_token` (own connections;
    /// anyone's with `view_useroauthsourceconnection` too). Audited.
    #[graphql(name = "userOAuthConnectionToken")]
    async fn user_oauth_connection_token(
        &self,
        ctx: &Context<'_>,
        pk: Option<i32>,
        id: Option<ID>,
    ) -> Result<ConnectionToken> {
        connection_token(ctx, pk, id, false).await
    }
}

#[derive(Default)]
pub struct VaultMutation;

#[Object]
impl VaultMutation {
    /// Refreshes a connection's token at its source now (unless another refresh of it just
    /// finished: then that result) and returns it; `pk` or `id` as the query. Same
    /// permission as the query.
    #[graphql(name = "refreshUserOAuthConnectionToken")]
    async fn refresh_user_oauth_connection_token(
        &self,
        ctx: &Context<'_>,
        pk: Option<i32>,
        id: Option<ID>,
    ) -> Result<ConnectionToken> {
        connection_token(ctx, pk, id, true).await
    }
}
