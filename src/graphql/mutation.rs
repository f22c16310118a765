use async_graphql::{Context, ID, MaybeUndefined, Object, Result};

use super::errors::render;
use super::node::GlobalId;
use super::types::{
    CreateUserOAuthConnectionInput, RemovePayload, UpdateUserOAuthSourceConnectionInput,
    UserOAuthSourceConnection,
};
use super::{caller, service};
use crate::domain::Error;
use crate::domain::error::FieldCode;
use crate::domain::model::{ConnectionChanges, IdentifierLimit, NewConnection, Patch};
use crate::domain::service::UpdateKind;
use crate::domain::validation::Errors;

#[derive(Default)]
pub struct Mutation;

fn patch<T>(value: MaybeUndefined<T>) -> Patch<T> {
    match value {
        MaybeUndefined::Undefined => Patch::Absent,
        MaybeUndefined::Null => Patch::Null,
        MaybeUndefined::Value(v) => Patch::Value(v),
    }
}

/// The connection a mutation names by `pk` or by global `id` (exactly one). An id that is not
/// a connection's is answered like a pk nobody can see: `NOT_FOUND`.
pub(super) fn target(pk: Option<i32>, id: Option<ID>) -> Result<i32> {
    match (pk, id) {
        (Some(pk), None) => Ok(pk),
        (None, Some(id)) => match GlobalId::decode(&id) {
            Some(GlobalId::Connection(pk)) => Ok(pk),
            _ => Err(render(Error::NotFound)),
        },
        (Some(_), Some(_)) => Err(render(Error::field(
            "pk",
            FieldCode::Invalid,
            "Give pk or id, not both.",
        ))),
        (None, None) => Err(render(Error::field(
            "pk",
            FieldCode::Required,
            "Give pk or id.",
        ))),
    }
}

// Merged into the root type (graphql/mod.rs); its own name never shows.
#[Object(name = "ConnectionMutation")]
impl Mutation {
    /// Links a user (default: the caller) to an external identity at a source. Needs the
    /// `add_useroauthsourceconnection` permission; another user's link needs a superuser.
    #[graphql(name = "createUserOAuthConnection")]
    async fn create_user_oauth_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateUserOAuthConnectionInput,
    ) -> Result<UserOAuthSourceConnection> {
        let p = caller(ctx).await?;
        let new = NewConnection {
            source: Patch::Value(input.source),
            user: patch(input.user),
            identifier: Patch::Value(input.identifier),
            access_token: patch(input.access_token),
            refresh_token: patch(input.refresh_token),
            expires: patch(input.expires),
            // GraphQL keeps 255 characters in every generation (domain/model.rs).
            identifier_limit: IdentifierLimit::Classic,
        };
        let created = service(ctx)
            .create_connection(&p, new, Errors::default())
            .await
            .map_err(render)?;
        Ok(created.into())
    }

    /// Changes a connection, named by `pk` or global `id` (exactly one). Needs
    /// `change_useroauthsourceconnection`.
    #[graphql(name = "updateUserOAuthSourceConnection")]
    async fn update_user_oauth_source_connection(
        &self,
        ctx: &Context<'_>,
        pk: Option<i32>,
        id: Option<ID>,
        input: UpdateUserOAuthSourceConnectionInput,
    ) -> Result<UserOAuthSourceConnection> {
        let p = caller(ctx).await?;
        let pk = target(pk, id)?;
        let changes = ConnectionChanges {
            source: Patch::Absent,
            identifier: patch(input.identifier),
            access_token: patch(input.access_token),
            refresh_token: patch(input.refresh_token),
            expires: patch(input.expires),
            identifier_limit: IdentifierLimit::Classic,
        };
        let updated = service(ctx)
            .update_connection(&p, pk, changes, UpdateKind::Partial, Errors::default())
            .await
            .map_err(render)?;
        Ok(updated.into())
    }

    /// Deletes a connection, named by `pk` or global `id` (exactly one); returns its pk. Own
    /// connections need no permission.
    #[graphql(name = "deleteUserOAuthSourceConnection")]
    async fn delete_user_oauth_source_connection(
        &self,
        ctx: &Context<'_>,
        pk: Option<i32>,
        id: Option<ID>,
    ) -> Result<i32> {
        let p = caller(ctx).await?;
        let pk = target(pk, id)?;
        service(ctx)
            .delete_connection(&p, pk)
            .await
            .map_err(render)?;
        Ok(pk)
    }

    /// `deleteUserOAuthSourceConnection` in Relay's shape: the payload carries the deleted
    /// object's global id (`deletedId`, for `@deleteRecord`).
    #[graphql(name = "removeUserOAuthSourceConnection")]
    async fn remove_user_oauth_source_connection(
        &self,
        ctx: &Context<'_>,
        pk: Option<i32>,
        id: Option<ID>,
    ) -> Result<RemovePayload> {
        let pk = self
            .delete_user_oauth_source_connection(ctx, pk, id)
            .await?;
        Ok(RemovePayload {
            deleted_id: GlobalId::Connection(pk).into(),
            pk,
        })
    }
}
