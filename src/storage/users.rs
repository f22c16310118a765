use chrono::Utc;
use entity::{user, user_permission};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::{Store, db_error};
use crate::domain::error::Error;
use crate::domain::permission::Permission;

pub struct NewUser<'a> {
    pub username: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub is_superuser: bool,
}

impl Store {
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<i32, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let id = insert_user(&txn, &new).await?;
        super::commit(txn).await?;
        Ok(id)
    }

    pub async fn user_id_by_username(&self, username: &str) -> Result<Option<i32>, Error> {
        let found = user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        Ok(found.map(|u| u.id))
    }

    pub async fn user_exists(&self, id: i32) -> Result<bool, Error> {
        let n = user::Entity::find_by_id(id)
            .count(&self.db)
            .await
            .map_err(db_error)?;
        Ok(n > 0)
    }

    pub async fn set_user_active(&self, id: i32, active: bool) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        user::Entity::update_many()
            .col_expr(user::Column::IsActive, active.into())
            .filter(user::Column::Id.eq(id))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        super::commit(txn).await
    }

    pub async fn grant(&self, user_id: i32, permissions: &[Permission]) -> Result<(), Error> {
        if permissions.is_empty() {
            return Ok(());
        }
        let (_gate, txn) = self.write_txn().await?;
        let rows = permissions.iter().map(|p| user_permission::ActiveModel {
            user_id: Set(user_id),
            codename: Set(p.codename().to_owned()),
        });
        user_permission::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    user_permission::Column::UserId,
                    user_permission::Column::Codename,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(db_error)?;
        super::commit(txn).await
    }

    pub async fn revoke(&self, user_id: i32, permissions: &[Permission]) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        user_permission::Entity::delete_many()
            .filter(user_permission::Column::UserId.eq(user_id))
            .filter(
                user_permission::Column::Codename.is_in(permissions.iter().map(|p| p.codename())),
            )
            .exec(&txn)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    /// Creates the first superuser and its token when the database has no user yet. Returns
    /// whether it did. Safe when several instances start at once (PostgreSQL advisory lock;
    /// SQLite's single writer).
    pub async fn bootstrap(
        &self,
        username: &str,
        token: super::NewToken<'_>,
    ) -> anyhow::Result<bool> {
        let mut attempt = 0;
        loop {
            match self.try_bootstrap(username, &token).await {
                // Another process sharing this SQLite file holds the write lock: SQLite fails
                // a lock upgrade at once instead of waiting, so wait here and look again.
                Err(e) if self.backend() == super::Backend::Sqlite && attempt < 10 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "bootstrap raced another process; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                result => return result,
            }
        }
    }

    async fn try_bootstrap(
        &self,
        username: &str,
        token: &super::NewToken<'_>,
    ) -> anyhow::Result<bool> {
        let (_gate, txn) = self.write_txn().await?;
        self.lock_for_setup(&txn).await?;
        if user::Entity::find().count(&txn).await? > 0 {
            return Ok(false);
        }
        let id = insert_user(
            &txn,
            &NewUser {
                username,
                name: "authentik Default Admin",
                email: "root@example.com",
                is_superuser: true,
            },
        )
        .await?;
        super::tokens::insert_token(&txn, id, token).await?;
        txn.commit().await?;
        Ok(true)
    }
}

async fn insert_user(txn: &sea_orm::DatabaseTransaction, new: &NewUser<'_>) -> Result<i32, Error> {
    let model = user::ActiveModel {
        uuid: Set(Uuid::new_v4()),
        username: Set(new.username.to_owned()),
        name: Set(new.name.to_owned()),
        email: Set(new.email.to_owned()),
        is_active: Set(true),
        is_superuser: Set(new.is_superuser),
        date_joined: Set(Utc::now()),
        path: Set("users".to_owned()),
        ..Default::default()
    };
    let inserted = user::Entity::insert(model)
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(inserted.last_insert_id)
}
