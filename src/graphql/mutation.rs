use async_graphql::{Context, MaybeUndefined, Object, Result};

use super::errors::render;
use super::types::{
    CreateUserOAuthConnectionInput, UpdateUserOAuthSourceConnectionInput, UserOAuthSourceConnection,
};
use super::{caller, service};
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

    /// Changes a connection. Needs `change_useroauthsourceconnection`.
    #[graphql(name = "updateUserOAuthSourceConnection")]
    async fn update_user_oauth_source_connection(
        &self,
        ctx: &Context<'_>,
        pk: i32,
        input: UpdateUserOAuthSourceConnectionInput,
    ) -> Result<UserOAuthSourceConnection> {
        let p = caller(ctx).await?;
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

    /// Deletes a connection; returns its pk. Own connections need no permission.
    #[graphql(name = "deleteUserOAuthSourceConnection")]
    async fn delete_user_oauth_source_connection(&self, ctx: &Context<'_>, pk: i32) -> Result<i32> {
        let p = caller(ctx).await?;
        service(ctx)
            .delete_connection(&p, pk)
            .await
            .map_err(render)?;
        Ok(pk)
    }
}
