//! Global ids (Relay's Global Object Identification): base64 of `<Type>:<key>`, the type tag
//! telling which table the key belongs to. Decoding is strict: anything that does not
//! re-encode to the very same text is no id at all, so there is exactly one id per object.
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uuid::Uuid;

/// Ids one `nodes(ids:)` call resolves at most.
pub const MAX_NODES: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GlobalId {
    Connection(i32),
    Source(Uuid),
    User(i32),
}

impl GlobalId {
    fn raw(self) -> String {
        match self {
            GlobalId::Connection(pk) => format!("UserOAuthSourceConnection:{pk}"),
            GlobalId::Source(pk) => format!("Source:{pk}"),
            GlobalId::User(pk) => format!("User:{pk}"),
        }
    }

    pub fn encode(self) -> String {
        STANDARD.encode(self.raw())
    }

    /// `None` for anything that is not an id this API issued.
    pub fn decode(id: &str) -> Option<GlobalId> {
        // The longest id is a source's: 7 + 36 characters, 60 in base64.
        if id.len() > 64 {
            return None;
        }
        let raw = String::from_utf8(STANDARD.decode(id).ok()?).ok()?;
        let (tag, key) = raw.split_once(':')?;
        let decoded = match tag {
            "UserOAuthSourceConnection" => GlobalId::Connection(key.parse().ok()?),
            "Source" => GlobalId::Source(key.parse().ok()?),
            "User" => GlobalId::User(key.parse().ok()?),
            _ => return None,
        };
        // `+1`, `01`, an upper-case uuid or other padding: not the id we issue.
        (decoded.encode() == id).then_some(decoded)
    }
}

impl From<GlobalId> for ID {
    fn from(id: GlobalId) -> ID {
        ID(id.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_only_canonical_text_decodes() {
        let ids = [
            GlobalId::Connection(7),
            GlobalId::Connection(-3),
            GlobalId::Source(Uuid::new_v4()),
            GlobalId::User(1),
        ];
        for id in ids {
            assert_eq!(GlobalId::decode(&id.encode()), Some(id));
        }
        assert_eq!(
            GlobalId::Connection(1).encode(),
            "VXNlck9BdXRoU291cmNlQ29ubmVjdGlvbjox"
        );
        for bad in [
            "",
            "1",
            "not base64!",
            &STANDARD.encode("UserOAuthSourceConnection:+1"),
            &STANDARD.encode("UserOAuthSourceConnection:01"),
            &STANDARD.encode("UserOAuthSourceConnection:1 "),
            &STANDARD.encode("Audit:1"),
            &STANDARD.encode("Source:1"),
            &STANDARD.encode(format!(
                "Source:{}",
                Uuid::nil().to_string().to_uppercase().replace('0', "A")
            )),
            &STANDARD.encode([0xff, 0xfe]),
        ] {
            assert_eq!(GlobalId::decode(bad), None, "{bad:?}");
        }
    }
}
