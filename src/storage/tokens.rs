use chrono::{DateTime, Utc};
use entity::{api_token, user, user_permission};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

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
        txn.commit().await.map_err(db_error)
    }

    /// Resolves a key hash to the caller: one query for token and user, one for permissions.
    pub async fn principal_by_key_hash(
        &self,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Principal, CredentialProblem>, Error> {
        let found = api_token::Entity::find()
            .filter(api_token::Column::KeyHash.eq(key_hash))
            .find_also_related(user::Entity)
            .one(&self.db)
            .await
            .map_err(db_error)?;
        let Some((token, Some(user))) = found else {
            return Ok(Err(CredentialProblem::Unknown));
        };
        if token.expires.is_some_and(|e| e <= now) {
            return Ok(Err(CredentialProblem::Expired));
        }
        if !user.is_active {
            return Ok(Err(CredentialProblem::InactiveUser));
        }
        let permissions = user_permission::Entity::find()
            .filter(user_permission::Column::UserId.eq(user.id))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            // Codenames outside the closed set (written by hand) grant nothing.
            .filter_map(|p| p.codename.parse::<Permission>().ok())
            .collect();
        Ok(Ok(Principal {
            user_id: user.id,
            username: user.username,
            is_superuser: user.is_superuser,
            permissions,
        }))
    }
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
