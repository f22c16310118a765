//! Parses request bodies the way Django REST framework's serializer fields do, so that every
//! wrong type gets DRF's message. Parse failures become field errors for the domain to report
//! together with its own.
#![allow(clippy::result_large_err)]
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::errors::{RestError, detail, non_field};
use crate::config::RestShape;
use crate::domain::model::{ConnectionChanges, IdentifierLimit, NewConnection, Patch};
use crate::domain::validation::{self, Errors};

/// The JSON object of a request, or the response refusing it (413, 415, 400).
pub fn json_object(
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, Response> {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            if let Some(error) = crate::server::body_error(rejection) {
                return Err(RestError(error).into_response());
            }
            return Err(detail(
                StatusCode::BAD_REQUEST,
                format!("The request body could not be read: {rejection}"),
            ));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if body.is_empty() && media.is_empty() {
        return Ok(Map::new());
    }
    if media != "application/json"
        && !(media.starts_with("application/") && media.ends_with("+json"))
    {
        return Err(detail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported media type \"{content_type}\" in request."),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value = crate::strict_json::from_slice(body)
        .map_err(|e| detail(StatusCode::BAD_REQUEST, format!("JSON parse error - {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Err(non_field("No data provided")),
        other => Err(non_field(format!(
            "Invalid data. Expected a dictionary, but got {}.",
            python_type(&other)
        ))),
    }
}

fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn present<'a>(map: &'a Map<String, Value>, field: &str) -> Patch<&'a Value> {
    match map.get(field) {
        None => Patch::Absent,
        Some(Value::Null) => Patch::Null,
        Some(v) => Patch::Value(v),
    }
}

/// CharField: strings, and numbers as their text.
fn char_field(map: &Map<String, Value>, field: &'static str, errors: &mut Errors) -> Patch<String> {
    match present(map, field) {
        Patch::Absent => Patch::Absent,
        Patch::Null => Patch::Null,
        Patch::Value(Value::String(s)) => Patch::Value(s.clone()),
        Patch::Value(Value::Number(n)) => Patch::Value(n.to_string()),
        Patch::Value(_) => {
            errors.push(validation::not_a_string(field));
            Patch::Absent
        }
    }
}

/// PrimaryKeyRelatedField to a uuid-keyed model.
fn uuid_pk(map: &Map<String, Value>, field: &'static str, errors: &mut Errors) -> Patch<Uuid> {
    match present(map, field) {
        Patch::Absent => Patch::Absent,
        Patch::Null => Patch::Null,
        Patch::Value(Value::String(s)) => match Uuid::parse_str(s.trim()) {
            Ok(u) => Patch::Value(u),
            Err(_) => {
                errors.push(validation::invalid_uuid(field, s));
                Patch::Absent
            }
        },
        Patch::Value(Value::Number(n)) => {
            errors.push(validation::does_not_exist(field, n));
            Patch::Absent
        }
        Patch::Value(other) => {
            errors.push(validation::wrong_pk_type(field, python_type(other)));
            Patch::Absent
        }
    }
}

/// PrimaryKeyRelatedField to an integer-keyed model.
fn int_pk(map: &Map<String, Value>, field: &'static str, errors: &mut Errors) -> Patch<i32> {
    let parsed = match present(map, field) {
        Patch::Absent => return Patch::Absent,
        Patch::Null => return Patch::Null,
        Patch::Value(Value::Number(n)) => n.as_i64().ok_or_else(|| n.to_string()),
        Patch::Value(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| {
            errors.push(validation::wrong_pk_type(field, "str"));
            String::new()
        }),
        Patch::Value(other) => {
            errors.push(validation::wrong_pk_type(field, python_type(other)));
            return Patch::Absent;
        }
    };
    match parsed {
        Ok(n) => match i32::try_from(n) {
            Ok(n) => Patch::Value(n),
            Err(_) => {
                errors.push(validation::does_not_exist(field, n));
                Patch::Absent
            }
        },
        Err(text) if !text.is_empty() => {
            errors.push(validation::does_not_exist(field, text));
            Patch::Absent
        }
        Err(_) => Patch::Absent,
    }
}

/// DateTimeField: ISO 8601 with an offset, or without one (taken as UTC).
fn datetime(
    map: &Map<String, Value>,
    field: &'static str,
    errors: &mut Errors,
) -> Patch<DateTime<Utc>> {
    match present(map, field) {
        Patch::Absent => Patch::Absent,
        Patch::Null => Patch::Null,
        Patch::Value(Value::String(s)) => match parse_datetime(s.trim()) {
            Some(d) => Patch::Value(d),
            None => {
                errors.push(validation::invalid_datetime(field));
                Patch::Absent
            }
        },
        Patch::Value(_) => {
            errors.push(validation::invalid_datetime(field));
            Patch::Absent
        }
    }
}

fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(d) = DateTime::parse_from_str(s, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, format) {
            return Some(d.and_utc());
        }
    }
    None
}

/// How long an identifier each generation accepts (authentik's limit was lifted in 2025.4).
fn identifier_limit(shape: RestShape) -> IdentifierLimit {
    match shape {
        RestShape::Documented => IdentifierLimit::Classic,
        RestShape::Current => IdentifierLimit::Long,
    }
}

pub fn new_connection(map: &Map<String, Value>, shape: RestShape) -> (NewConnection, Errors) {
    let mut errors = Errors::default();
    let input = NewConnection {
        user: int_pk(map, "user", &mut errors),
        source: uuid_pk(map, "source", &mut errors),
        identifier: char_field(map, "identifier", &mut errors),
        access_token: char_field(map, "access_token", &mut errors),
        refresh_token: char_field(map, "refresh_token", &mut errors),
        expires: datetime(map, "expires", &mut errors),
        identifier_limit: identifier_limit(shape),
    };
    (input, errors)
}

pub fn changes(map: &Map<String, Value>, shape: RestShape) -> (ConnectionChanges, Errors) {
    let mut errors = Errors::default();
    let changes = ConnectionChanges {
        source: uuid_pk(map, "source", &mut errors),
        identifier: char_field(map, "identifier", &mut errors),
        access_token: char_field(map, "access_token", &mut errors),
        refresh_token: char_field(map, "refresh_token", &mut errors),
        expires: datetime(map, "expires", &mut errors),
        identifier_limit: identifier_limit(shape),
    };
    (changes, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_connection_documented(map: &Map<String, Value>) -> (NewConnection, Errors) {
        new_connection(map, RestShape::Documented)
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn numbers_are_identifiers_and_objects_are_not() {
        let (input, errors) = new_connection_documented(&obj(json!({"identifier": 123})));
        assert_eq!(input.identifier, Patch::Value("123".into()));
        assert!(errors.is_empty());
        let (_, errors) = new_connection_documented(&obj(json!({"identifier": {"a": 1}})));
        let Err(crate::domain::Error::Validation(list)) = errors.into_result() else {
            panic!()
        };
        assert_eq!(list[0].message, "Not a valid string.");
    }

    #[test]
    fn source_and_user_types_get_drf_messages() {
        let (_, errors) = new_connection_documented(&obj(json!({"source": "nope", "user": "abc"})));
        let Err(crate::domain::Error::Validation(list)) = errors.into_result() else {
            panic!()
        };
        assert_eq!(list[0].field, "user");
        assert_eq!(
            list[0].message,
            "Incorrect type. Expected pk value, received str."
        );
        assert_eq!(list[1].message, "\u{201c}nope\u{201d} is not a valid UUID.");
    }

    #[test]
    fn datetimes_with_and_without_offsets() {
        assert!(parse_datetime("2026-01-02T03:04:05Z").is_some());
        assert!(parse_datetime("2026-01-02T03:04:05.123456+02:00").is_some());
        assert_eq!(
            parse_datetime("2026-01-02T03:04").unwrap().to_rfc3339(),
            "2026-01-02T03:04:00+00:00"
        );
        assert!(parse_datetime("tomorrow").is_none());
    }
}
