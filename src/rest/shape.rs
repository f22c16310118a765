//! Response bodies in the two generations of authentik's schema.
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::RestShape;
use crate::domain::model::{Connection, ConnectionWithSource, Source};

/// DRF's datetime rendering: microseconds, UTC, `Z`.
pub fn datetime(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn source(s: &Source, shape: RestShape) -> Value {
    let mut v = json!({
        "pk": s.pk,
        "name": s.name,
        "slug": s.slug,
        "enabled": s.enabled,
        "authentication_flow": s.authentication_flow,
        "enrollment_flow": s.enrollment_flow,
        "user_property_mappings": s.user_property_mappings,
        "group_property_mappings": s.group_property_mappings,
        "component": s.kind.component(),
        "verbose_name": s.kind.verbose_name(),
        "verbose_name_plural": s.kind.verbose_name_plural(),
        "meta_model_name": s.kind.meta_model_name(),
        "policy_engine_mode": s.policy_engine_mode.as_str(),
        "user_matching_mode": s.user_matching_mode.as_str(),
        "managed": s.managed,
        "user_path_template": s.user_path_template,
        "icon": s.icon,
    });
    if shape == RestShape::Current {
        let obj = v.as_object_mut().expect("object literal");
        obj.insert("promoted".into(), s.promoted.into());
        // The current schema types `icon` as a non-null string.
        obj.insert("icon".into(), s.icon.clone().unwrap_or_default().into());
        obj.insert("icon_url".into(), s.icon.clone().into());
        obj.insert("icon_themed_urls".into(), Value::Null);
    }
    v
}

pub fn connection(c: &Connection, s: &Source, shape: RestShape) -> Value {
    match shape {
        RestShape::Documented => json!({
            "pk": c.pk,
            "user": c.user,
            "source": source(s, shape),
            "created": datetime(&c.created),
            "identifier": c.identifier,
        }),
        RestShape::Current => {
            let mut v = json!({
                "pk": c.pk,
                "user": c.user,
                "source": c.source,
                "source_obj": source(s, shape),
                "identifier": c.identifier,
                "created": datetime(&c.created),
                "last_updated": datetime(&c.last_updated),
            });
            // `expires` is not nullable in the schema: absent when unset.
            if let Some(e) = &c.expires {
                v["expires"] = datetime(e).into();
            }
            v
        }
    }
}

pub fn with_source(c: &ConnectionWithSource, shape: RestShape) -> Value {
    connection(&c.connection, &c.source, shape)
}
