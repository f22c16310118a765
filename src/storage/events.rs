use chrono::Utc;
use entity::{audit_event, user_oauth_source_connection as conn};
use sea_orm::{
    ActiveValue::Set, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryOrder,
    QuerySelect,
};

use super::{Store, db_error};
use crate::domain::error::Error;
use crate::domain::model::AuditEvent;

/// Writes the audit event of a connection write inside the write's own transaction, and the
/// matching log line. Never records a token.
pub(super) async fn record(
    txn: &DatabaseTransaction,
    actor: i32,
    action: &'static str,
    row: &conn::Model,
) -> Result<(), Error> {
    insert_event(txn, actor, action, row)
        .await
        .map_err(db_error)?;
    audit_log(actor, action, row);
    Ok(())
}

/// The audit event row alone (the SQLite writer logs only once its batch has committed).
pub(super) async fn insert_event(
    txn: &DatabaseTransaction,
    actor: i32,
    action: &'static str,
    row: &conn::Model,
) -> Result<(), DbErr> {
    let event = audit_event::ActiveModel {
        created: Set(Utc::now()),
        actor_id: Set(Some(actor)),
        action: Set(action.to_owned()),
        connection_id: Set(row.id),
        source_id: Set(Some(row.source_id)),
        identifier: Set(Some(row.identifier.clone())),
        owner_id: Set(Some(row.user_id)),
        ..Default::default()
    };
    audit_event::Entity::insert(event)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// The log line of an audit event (never the access token).
pub(super) fn audit_log(actor: i32, action: &'static str, row: &conn::Model) {
    tracing::info!(
        target: "oauthlink::audit",
        actor,
        action,
        connection = row.id,
        user = row.user_id,
        source = %row.source_id,
        identifier = ?crate::telemetry::clip(&row.identifier),
        "connection {action}"
    );
}

impl Store {
    /// Newest first.
    pub async fn audit_events(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEvent>, u64), Error> {
        let total = audit_event::Entity::find()
            .count(&self.db)
            .await
            .map_err(db_error)?;
        let rows = audit_event::Entity::find()
            .order_by_desc(audit_event::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let events = rows
            .into_iter()
            .map(|r| AuditEvent {
                id: r.id,
                created: r.created,
                actor: r.actor_id,
                action: r.action,
                connection: r.connection_id,
                source: r.source_id,
                identifier: r.identifier,
                owner: r.owner_id,
            })
            .collect();
        Ok((events, total))
    }
}
