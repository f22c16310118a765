//! External subjects: the user an OpenID Connect issuer's subject names.
use chrono::Utc;
use entity::{oidc_subject, user, user_permission};
use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, FromQueryResult, JoinType, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait,
};
use uuid::Uuid;

use super::{NewUser, Store, db_error};
use crate::domain::error::{CredentialProblem, Error};
use crate::domain::permission::{Permission, Principal};

/// Usernames tried for an auto-created user: the IdP's, then with a random suffix.
const USERNAME_ATTEMPTS: usize = 5;

#[derive(FromQueryResult)]
struct SubjectRow {
    user_id: i32,
    username: String,
    is_active: bool,
    is_superuser: bool,
    codename: Option<String>,
}

impl Store {
    /// The principal `subject` names at `issuer`, in one statement (subject, user and
    /// permissions; one row per permission), like `principal_by_key_hash`.
    pub async fn principal_by_subject(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Result<Principal, CredentialProblem>, Error> {
        let rows = oidc_subject::Entity::find()
            .select_only()
            .column(oidc_subject::Column::UserId)
            .column(user::Column::Username)
            .column(user::Column::IsActive)
            .column(user::Column::IsSuperuser)
            .column(user_permission::Column::Codename)
            .join(JoinType::InnerJoin, oidc_subject::Relation::User.def())
            .join(JoinType::LeftJoin, user::Relation::UserPermission.def())
            .filter(oidc_subject::Column::Issuer.eq(issuer))
            .filter(oidc_subject::Column::Subject.eq(subject))
            .into_model::<SubjectRow>()
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let Some(first) = rows.first() else {
            return Ok(Err(CredentialProblem::UnknownSubject));
        };
        if !first.is_active {
            return Ok(Err(CredentialProblem::InactiveUser));
        }
        let (user_id, is_superuser, username) =
            (first.user_id, first.is_superuser, first.username.clone());
        let permissions = rows
            .into_iter()
            .filter_map(|r| r.codename?.parse::<Permission>().ok())
            .collect();
        Ok(Ok(Principal {
            user_id,
            username,
            is_superuser,
            permissions,
        }))
    }

    /// Creates a user linked to `subject` at `issuer`, unless the subject is linked already:
    /// two first requests at once make one user (the unique (issuer, subject) constraint
    /// decides; the loser's transaction rolls back). A username already taken gets a random
    /// suffix: an IdP's user never becomes an existing local user by name.
    pub async fn create_user_for_subject(
        &self,
        issuer: &str,
        subject: &str,
        profile: NewUser<'_>,
    ) -> Result<(), Error> {
        let (_gate, txn) = self.write_txn().await?;
        let mut username = profile.username.to_owned();
        let mut user_id = None;
        for attempt in 0..USERNAME_ATTEMPTS {
            if attempt > 0 {
                let suffix: String = rand::rng()
                    .sample_iter(&Alphanumeric)
                    .take(6)
                    .map(char::from)
                    .collect();
                let base: String = profile.username.chars().take(140).collect();
                username = format!("{base}-{suffix}");
            }
            let model = user::ActiveModel {
                uuid: Set(Uuid::new_v4()),
                username: Set(username.clone()),
                name: Set(profile.name.to_owned()),
                email: Set(profile.email.to_owned()),
                is_active: Set(true),
                is_superuser: Set(false),
                date_joined: Set(Utc::now()),
                path: Set("users".to_owned()),
                ..Default::default()
            };
            let inserted = user::Entity::insert(model)
                .on_conflict(
                    OnConflict::column(user::Column::Username)
                        .do_nothing()
                        .to_owned(),
                )
                .exec(&txn)
                .await;
            match inserted {
                Ok(r) => {
                    user_id = Some(r.last_insert_id);
                    break;
                }
                Err(DbErr::RecordNotInserted) => continue,
                Err(e) => return Err(db_error(e)),
            }
        }
        let Some(user_id) = user_id else {
            return Err(Error::internal(format!(
                "no free username for a new user of issuer {issuer}"
            )));
        };
        let linked = oidc_subject::Entity::insert(oidc_subject::ActiveModel {
            issuer: Set(issuer.to_owned()),
            subject: Set(subject.to_owned()),
            user_id: Set(user_id),
            created: Set(Utc::now()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([oidc_subject::Column::Issuer, oidc_subject::Column::Subject])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
        if linked == 0 {
            // Another request linked the subject first: its user stands, this one goes.
            txn.rollback().await.map_err(db_error)?;
            return Ok(());
        }
        tracing::info!(
            issuer,
            user_id,
            username,
            "user created for a new OpenID Connect subject"
        );
        super::commit(txn).await
    }

    /// A user's subjects, as (issuer, subject), by issuer.
    pub async fn subjects_of(&self, user_id: i32) -> Result<Vec<(String, String)>, Error> {
        let rows = oidc_subject::Entity::find()
            .filter(oidc_subject::Column::UserId.eq(user_id))
            .order_by_asc(oidc_subject::Column::Issuer)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.issuer, r.subject)).collect())
    }

    /// The user `subject` at `issuer` is linked to, if any.
    pub async fn subject_owner(&self, issuer: &str, subject: &str) -> Result<Option<i32>, Error> {
        let row = oidc_subject::Entity::find()
            .filter(oidc_subject::Column::Issuer.eq(issuer))
            .filter(oidc_subject::Column::Subject.eq(subject))
            .one(&self.db)
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| r.user_id))
    }

    /// Links `user_id` to `subject` at `issuer` (replacing its previous subject there), or
    /// unlinks it (`None`). Whether anything changed.
    pub async fn set_subject(
        &self,
        user_id: i32,
        issuer: &str,
        subject: Option<&str>,
    ) -> Result<bool, Error> {
        let (_gate, txn) = self.write_txn().await?;
        let deleted = oidc_subject::Entity::delete_many()
            .filter(oidc_subject::Column::UserId.eq(user_id))
            .filter(oidc_subject::Column::Issuer.eq(issuer))
            .exec(&txn)
            .await
            .map_err(db_error)?
            .rows_affected;
        if let Some(subject) = subject {
            oidc_subject::Entity::insert(oidc_subject::ActiveModel {
                issuer: Set(issuer.to_owned()),
                subject: Set(subject.to_owned()),
                user_id: Set(user_id),
                created: Set(Utc::now()),
                ..Default::default()
            })
            .exec_without_returning(&txn)
            .await
            .map_err(db_error)?;
        }
        super::commit(txn).await?;
        Ok(deleted > 0 || subject.is_some())
    }
}
