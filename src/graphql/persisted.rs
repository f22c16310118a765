//! Persisted operations: Apollo's automatic persisted queries (a document registered once by
//! its sha256, then sent as the hash alone) and the allow-list mode, where only the documents
//! of a manifest run (`OAUTHLINK_GRAPHQL_OPERATIONS`, in the formats Apollo's
//! `generate-persisted-query-manifest` and relay-compiler's `persistConfig.file` write).
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use async_graphql::Value;
use sha2::{Digest, Sha256};

/// Query text kept by APQ, at most (keys are 64-character hashes).
const APQ_BYTES: u64 = 4 * 1024 * 1024;

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The documents an allow-list admits, by every id a client may send for them: the
/// manifest's own ids and the sha256 of each body (APQ's hash).
#[derive(Debug, Default)]
pub struct Manifest {
    by_id: HashMap<String, Arc<str>>,
    operations: usize,
    /// Unlisted documents that select only `__schema`, `__type` and `__typename` run too.
    pub allow_introspection: bool,
}

impl Manifest {
    pub fn load(path: &Path, allow_introspection: bool) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the operations manifest {}", path.display()))?;
        let mut manifest = Manifest::parse(&text)
            .with_context(|| format!("bad operations manifest {}", path.display()))?;
        manifest.allow_introspection = allow_introspection;
        Ok(manifest)
    }

    /// Apollo's `{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id",
    /// "name","type","body"}]}` or Relay's `{"<id>": "<text>"}`. Every body must parse.
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let json: serde_json::Value = serde_json::from_str(text)?;
        let object = json
            .as_object()
            .context("expected a JSON object (Apollo's or Relay's manifest)")?;
        let mut entries: Vec<(String, String)> = Vec::new();
        if object.get("format").and_then(|f| f.as_str()) == Some("apollo-persisted-query-manifest")
        {
            anyhow::ensure!(
                object.get("version").and_then(|v| v.as_u64()) == Some(1),
                "only version 1 of apollo-persisted-query-manifest is supported"
            );
            let operations = object
                .get("operations")
                .and_then(|o| o.as_array())
                .context("`operations` must be a list")?;
            for op in operations {
                let id = op
                    .get("id")
                    .and_then(|v| v.as_str())
                    .context("an operation without `id`")?;
                let body = op
                    .get("body")
                    .and_then(|v| v.as_str())
                    .context("an operation without `body`")?;
                entries.push((id.to_owned(), body.to_owned()));
            }
        } else {
            for (id, body) in object {
                let body = body
                    .as_str()
                    .with_context(|| format!("operation {id:?}: the text must be a string"))?;
                entries.push((id.clone(), body.to_owned()));
            }
        }
        let mut by_id = HashMap::new();
        let operations = entries.len();
        for (id, body) in entries {
            async_graphql::parser::parse_query(&body)
                .with_context(|| format!("operation {id:?} does not parse"))?;
            let body: Arc<str> = Arc::from(body);
            by_id.insert(sha256_hex(&body), body.clone());
            by_id.insert(id, body);
        }
        Ok(Manifest {
            by_id,
            operations,
            allow_introspection: false,
        })
    }

    /// Distinct documents listed.
    pub fn len(&self) -> usize {
        self.operations
    }

    pub fn is_empty(&self) -> bool {
        self.operations == 0
    }
}

/// APQ's registered documents, by sha256. Bounded by their bytes; only authenticated callers
/// register (an anonymous one can neither fill nor flush it).
pub struct Registered(moka::sync::Cache<String, Arc<str>>);

impl Default for Registered {
    fn default() -> Self {
        Registered(
            moka::sync::Cache::builder()
                .max_capacity(APQ_BYTES)
                .weigher(|_: &String, text: &Arc<str>| {
                    u32::try_from(text.len() + 64).unwrap_or(u32::MAX)
                })
                .build(),
        )
    }
}

/// How a request names its document, apart from its text.
#[derive(Debug, Default)]
pub struct Named {
    /// `extensions.persistedQuery.sha256Hash` (APQ, version 1).
    pub sha256: Option<String>,
    /// `documentId` / `doc_id` (GraphQL over HTTP's and Relay's persisted documents).
    pub document_id: Option<String>,
}

/// Why a request's document cannot be had.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// A hash or id this server does not hold: send the text (APQ).
    NotFound,
    /// Allow-list mode: the document is not listed.
    NotAllowed,
    /// The text's sha256 is not the hash sent with it.
    HashMismatch,
    /// `persistedQuery` that is not version 1 with a hash.
    Unsupported(String),
}

/// Reads `extensions.persistedQuery`.
pub fn apq_hash(extensions: &async_graphql::Extensions) -> Result<Option<String>, Miss> {
    let Some(pq) = extensions.0.get("persistedQuery") else {
        return Ok(None);
    };
    let Value::Object(pq) = pq else {
        return Err(Miss::Unsupported(
            "`persistedQuery` must be an object.".into(),
        ));
    };
    match pq.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => {
            return Err(Miss::Unsupported(
                "Unsupported persisted query version.".into(),
            ));
        }
    }
    match pq.get("sha256Hash") {
        Some(Value::String(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(h.to_ascii_lowercase()))
        }
        _ => Err(Miss::Unsupported(
            "`sha256Hash` must be 64 hex digits.".into(),
        )),
    }
}

impl Registered {
    /// The text to run: `text` when given (checked against the hash, and registered when
    /// `register`), else the registered text of the hash.
    pub fn resolve(
        &self,
        text: &str,
        named: &Named,
        register: bool,
    ) -> Result<Option<Arc<str>>, Miss> {
        let Some(hash) = &named.sha256 else {
            return Ok(None);
        };
        if text.is_empty() {
            return self.0.get(hash).map(Some).ok_or(Miss::NotFound);
        }
        if sha256_hex(text) != *hash {
            return Err(Miss::HashMismatch);
        }
        if register {
            self.0.insert(hash.clone(), Arc::from(text));
        }
        Ok(None)
    }
}

impl Manifest {
    /// The listed text a request names, or its own text if listed. `Err(NotAllowed)` for
    /// anything else (the caller may still admit introspection).
    pub fn resolve(&self, text: &str, named: &Named) -> Result<Arc<str>, Miss> {
        if text.is_empty() {
            let id = named.document_id.as_ref().or(named.sha256.as_ref());
            return id.and_then(|id| self.by_id.get(id).cloned()).ok_or(
                if named.sha256.is_some() && named.document_id.is_none() {
                    Miss::NotFound
                } else {
                    Miss::NotAllowed
                },
            );
        }
        let hash = sha256_hex(text);
        if named.sha256.as_ref().is_some_and(|h| *h != hash) {
            return Err(Miss::HashMismatch);
        }
        match self.by_id.get(&hash) {
            Some(listed) if **listed == *text => Ok(listed.clone()),
            _ => Err(Miss::NotAllowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_manifest_formats_are_read_and_only_listed_text_runs() {
        let apollo = r#"{"format":"apollo-persisted-query-manifest","version":1,"operations":[
            {"id":"abc","name":"Me","type":"query","body":"query Me { me { pk } }"}]}"#;
        let relay = r#"{"5f4dcc3b": "query Me { me { pk } }"}"#;
        for (m, id) in [(apollo, "abc"), (relay, "5f4dcc3b")] {
            let m = Manifest::parse(m).unwrap();
            let named = |document_id: Option<&str>, sha: Option<&str>| Named {
                document_id: document_id.map(str::to_owned),
                sha256: sha.map(str::to_owned),
            };
            let body = "query Me { me { pk } }";
            assert_eq!(&*m.resolve("", &named(Some(id), None)).unwrap(), body);
            assert_eq!(&*m.resolve(body, &named(None, None)).unwrap(), body);
            let hash = sha256_hex(body);
            assert_eq!(&*m.resolve("", &named(None, Some(&hash))).unwrap(), body);
            assert_eq!(
                m.resolve("query Me { me { pk username } }", &named(None, None)),
                Err(Miss::NotAllowed)
            );
            assert_eq!(
                m.resolve("", &named(Some("other"), None)),
                Err(Miss::NotAllowed)
            );
            assert_eq!(
                m.resolve(body, &named(None, Some(&"0".repeat(64)))),
                Err(Miss::HashMismatch)
            );
        }
        assert!(Manifest::parse(r#"{"x": "query {"}"#).is_err());
        assert!(Manifest::parse("[]").is_err());
    }
}
