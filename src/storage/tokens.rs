use chrono::{DateTime, Utc};
use entity::{api_token, user, user_permission};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter,
    QuerySelect, RelationTrait,
};

use super::{Store, db_error};
use crate::domain::error::{CredentialProblem, Error};
use crate::domain::permission::{Permission, Principal};

pub struct NewToken<'a> {
    pub identifier: &'a str,
    pub key_hash: &'a str,
    pub intent: &'a str,
    pub expires: Option<DateTime<Utc>>,
    pub description: &'a str,
}

impl Store {
    pub async fn create_token(&self, user_id: i32, token: NewToken<'_>) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        insert_token(&txn, user_id, &token).await?;
        super::commit(txn).await
    }

    /// Deletes a token by its identifier; whether there was one.
    pub async fn delete_token(&self, identifier: &str) -> Result<bool, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let deleted = api_token::Entity::delete_many()
            .filter(api_token::Column::Identifier.eq(identifier))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        Ok(deleted.rows_affected > 0)
    }

    /// Resolves a key hash to the caller and the key's expiry in one statement: token, user
    /// and permissions (one row per permission; the permission columns are null when there
    /// is none).
    pub async fn principal_by_key_hash(
        &self,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(Principal, Option<DateTime<Utc>>), CredentialProblem>, Error> {
        let rows = api_token::Entity::find()
            .select_only()
            .column(api_token::Column::Expires)
            .column(api_token::Column::UserId)
            .column(user::Column::Username)
            .column(user::Column::IsActive)
            .column(user::Column::IsSuperuser)
            .column(user_permission::Column::Codename)
            .join(JoinType::InnerJoin, api_token::Relation::User.def())
            .join(JoinType::LeftJoin, user::Relation::UserPermission.def())
            .filter(api_token::Column::KeyHash.eq(key_hash))
            .into_model::<CallerRow>()
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let Some(first) = rows.first() else {
            return Ok(Err(CredentialProblem::Unknown));
        };
        if first.expires.is_some_and(|e| e <= now) {
            return Ok(Err(CredentialProblem::Expired));
        }
        if !first.is_active {
            return Ok(Err(CredentialProblem::InactiveUser));
        }
        let (user_id, is_superuser, expires) = (first.user_id, first.is_superuser, first.expires);
        let username = first.username.clone();
        let permissions = rows
            .into_iter()
            // Codenames outside the closed set (written by hand) grant nothing.
            .filter_map(|r| r.codename?.parse::<Permission>().ok())
            .collect();
        Ok(Ok((
            Principal {
                user_id,
                username,
                is_superuser,
                permissions,
            },
            expires,
        )))
    }
}

#[derive(FromQueryResult)]
struct CallerRow {
    expires: Option<DateTime<Utc>>,
    user_id: i32,
    username: String,
    is_active: bool,
    is_superuser: bool,
    codename: Option<String>,
}

pub(super) async fn insert_token(
    txn: &sea_orm::DatabaseTransaction,
    user_id: i32,
    token: &NewToken<'_>,
) -> Result<(), Error> {
    let model = api_token::ActiveModel {
        identifier: Set(token.identifier.to_owned()),
        user_id: Set(user_id),
        key_hash: Set(token.key_hash.to_owned()),
        intent: Set(token.intent.to_owned()),
        expires: Set(token.expires),
        description: Set(token.description.to_owned()),
        created: Set(Utc::now()),
        ..Default::default()
    };
    api_token::Entity::insert(model)
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}
