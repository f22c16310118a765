//! Secrets at rest: API keys are stored as SHA-256 hashes; OAuth access tokens and consumer
//! secrets are sealed with XChaCha20-Poly1305 under a keyring (one current key that seals,
//! older keys that still open until `oauthlink rekey` has re-sealed their values).
//!
//! A sealed value (version 2) is `0x02 | key id (8 bytes) | nonce (24) | ciphertext+tag`. The
//! key id names the key that sealed it, so a keyring of several keys opens it without trying
//! each, and the database can be asked which keys its values need. Version 1 values
//! (`0x01 | nonce | ciphertext`, from before the keyring; their associated data named only the
//! column) still open with any key of the ring; `rekey` rewrites them as version 2.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const SEALED_V1: u8 = 1;
const SEALED_V2: u8 = 2;
const NONCE_LEN: usize = 24;
pub const KEY_ID_LEN: usize = 8;
/// Where the key id sits in a version 2 value (1-based, as SQL's `substr` counts).
pub const KEY_ID_SQL_OFFSET: usize = 2;

/// Where a sealed value lives; bound in as associated data, so a ciphertext copied into
/// another column, table or row does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A connection's access token. The row identity is the connection's `row_key`, a random
    /// uuid chosen before the INSERT (the integer pk is only known after it, and sealing after
    /// it would cost the create a second write), together with its user, which no API changes.
    /// The source is left out (an update may change it without a new token): a database
    /// writer who moves a token together with its row key can move it only between two rows
    /// of the same user.
    AccessToken { row_key: Uuid, user: i32 },
    /// A connection's refresh token, bound as its access token is (its own column name keeps
    /// one from opening as the other).
    RefreshToken { row_key: Uuid, user: i32 },
    /// A source's consumer secret; the source's uuid pk is chosen before its INSERT.
    ConsumerSecret { source: Uuid },
}

impl Slot {
    fn aad_v2(self) -> String {
        match self {
            Slot::AccessToken { row_key, user } => {
                format!("oauthlink:v2:user_oauth_source_connections:access_token:{row_key}:{user}")
            }
            Slot::RefreshToken { row_key, user } => {
                format!("oauthlink:v2:user_oauth_source_connections:refresh_token:{row_key}:{user}")
            }
            Slot::ConsumerSecret { source } => {
                format!("oauthlink:v2:sources:consumer_secret:{source}")
            }
        }
    }

    /// Version 1 bound the column only.
    fn aad_v1(self) -> &'static [u8] {
        match self {
            Slot::AccessToken { .. } => b"user_oauth_source_connections.access_token",
            Slot::RefreshToken { .. } => b"user_oauth_source_connections.refresh_token",
            Slot::ConsumerSecret { .. } => b"sources.consumer_secret",
        }
    }
}

/// One secret key, with what may be said about it in public: its id and fingerprint.
struct Key {
    id: [u8; KEY_ID_LEN],
    fingerprint: [u8; 32],
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn from_hex(hex_key: &str) -> anyhow::Result<Key> {
        let bytes = hex::decode(hex_key.trim())
            .map_err(|_| anyhow::anyhow!("a secret key must be 64 hex characters"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("a secret key must be 64 hex characters (32 bytes)"))?;
        // The fingerprint is a keyed hash: it identifies the key and reveals nothing of it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(b"oauthlink key fingerprint v1");
        let fingerprint: [u8; 32] = mac.finalize().into_bytes().into();
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&fingerprint[..KEY_ID_LEN]);
        Ok(Key {
            id,
            fingerprint,
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }
}

/// The public description of a key of the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// 16 hex characters, as in every value the key sealed.
    pub id: String,
    /// 64 hex characters; what the database records.
    pub fingerprint: String,
    pub current: bool,
}

/// Which key sealed a value, read from its header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedBy {
    /// Version 1: no key id; any key of the ring may open it.
    Legacy,
    Key([u8; KEY_ID_LEN]),
    Malformed,
}

/// Why a sealed value did not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not a sealed value")]
    Malformed,
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("does not open: tampered, moved from another row, or another key")]
    Refused,
}

/// A value that opened, and whether it is sealed the way `seal` would seal it now.
#[derive(Debug)]
pub struct Opened {
    pub plaintext: String,
    pub current: bool,
}

#[derive(Clone)]
pub struct Keyring {
    keys: std::sync::Arc<Vec<Key>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// The current key first, then older keys that only open. Duplicates are dropped.
    pub fn from_hex<'a>(
        current: &str,
        old: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Self> {
        let mut keys = vec![Key::from_hex(current)?];
        for k in old {
            let key = Key::from_hex(k)?;
            if keys.iter().all(|have| have.id != key.id) {
                keys.push(key);
            }
        }
        Ok(Keyring {
            keys: std::sync::Arc::new(keys),
        })
    }

    /// A ring of one key.
    pub fn single(key: &str) -> anyhow::Result<Self> {
        Self::from_hex(key, [])
    }

    pub fn generate_key_hex() -> String {
        hex::encode(rand::rng().random::<[u8; 32]>())
    }

    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyInfo {
                id: hex::encode(k.id),
                fingerprint: hex::encode(k.fingerprint),
                current: i == 0,
            })
            .collect()
    }

    pub fn current(&self) -> KeyInfo {
        self.keys().swap_remove(0)
    }

    /// The key with this id (16 hex characters), if configured.
    pub fn key(&self, id: &str) -> Option<KeyInfo> {
        self.keys().into_iter().find(|k| k.id == id)
    }

    pub fn seal(&self, slot: Slot, plaintext: &str) -> Vec<u8> {
        let key = &self.keys[0];
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let aad = slot.aad_v2();
        let ciphertext = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        out.push(SEALED_V2);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn sealed_by(sealed: &[u8]) -> SealedBy {
        match sealed.split_first() {
            Some((&SEALED_V1, rest)) if rest.len() >= NONCE_LEN => SealedBy::Legacy,
            Some((&SEALED_V2, rest)) if rest.len() >= KEY_ID_LEN + NONCE_LEN => {
                let mut id = [0; KEY_ID_LEN];
                id.copy_from_slice(&rest[..KEY_ID_LEN]);
                SealedBy::Key(id)
            }
            _ => SealedBy::Malformed,
        }
    }

    pub fn open(&self, slot: Slot, sealed: &[u8]) -> Result<Opened, OpenError> {
        match Self::sealed_by(sealed) {
            SealedBy::Malformed => Err(OpenError::Malformed),
            SealedBy::Legacy => self
                .keys
                .iter()
                .find_map(|k| decrypt(k, &sealed[1..], slot.aad_v1()))
                .map(|plaintext| Opened {
                    plaintext,
                    current: false,
                })
                .ok_or(OpenError::Refused),
            SealedBy::Key(id) => {
                let (index, key) = self
                    .keys
                    .iter()
                    .enumerate()
                    .find(|(_, k)| k.id == id)
                    .ok_or_else(|| OpenError::UnknownKey(hex::encode(id)))?;
                decrypt(key, &sealed[1 + KEY_ID_LEN..], slot.aad_v2().as_bytes())
                    .map(|plaintext| Opened {
                        plaintext,
                        current: index == 0,
                    })
                    .ok_or(OpenError::Refused)
            }
        }
    }

    /// Which key of the ring opens a version 1 value (they carry no key id).
    pub fn legacy_key(&self, slot: Slot, sealed: &[u8]) -> Option<KeyInfo> {
        if Self::sealed_by(sealed) != SealedBy::Legacy {
            return None;
        }
        let found = self
            .keys
            .iter()
            .position(|k| decrypt(k, &sealed[1..], slot.aad_v1()).is_some())?;
        Some(self.keys().swap_remove(found))
    }
}

/// `body` is `nonce | ciphertext` (at least a nonce long, as `sealed_by` checked).
fn decrypt(key: &Key, body: &[u8], aad: &[u8]) -> Option<String> {
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let plain = key
        .cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

/// A new API key: 64 alphanumeric characters (~381 bits).
pub fn generate_api_key() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(64)
        .map(char::from)
        .collect()
}

/// How API keys are stored and looked up.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_slot(user: i32) -> Slot {
        Slot::AccessToken {
            row_key: Uuid::new_v4(),
            user,
        }
    }

    #[test]
    fn sealed_values_open_only_in_their_slot_and_with_their_key() {
        let ring = Keyring::single(&Keyring::generate_key_hex()).unwrap();
        let slot = token_slot(7);
        let sealed = ring.seal(slot, "gho_secret");
        assert!(!sealed.windows(10).any(|w| w == b"gho_secret"));
        let opened = ring.open(slot, &sealed).unwrap();
        assert_eq!(
            (opened.plaintext.as_str(), opened.current),
            ("gho_secret", true)
        );
        // Another row, another user of the same row, another column: refused.
        assert_eq!(
            ring.open(token_slot(7), &sealed).unwrap_err(),
            OpenError::Refused
        );
        let Slot::AccessToken { row_key, .. } = slot else {
            unreachable!()
        };
        let moved = Slot::AccessToken { row_key, user: 8 };
        assert_eq!(ring.open(moved, &sealed).unwrap_err(), OpenError::Refused);
        let column = Slot::ConsumerSecret { source: row_key };
        assert_eq!(ring.open(column, &sealed).unwrap_err(), OpenError::Refused);
        // Another key: named as unknown, not tried.
        let other = Keyring::single(&Keyring::generate_key_hex()).unwrap();
        assert!(
            matches!(other.open(slot, &sealed), Err(OpenError::UnknownKey(id)) if id == ring.current().id)
        );
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, ring.seal(slot, "gho_secret"));
    }

    #[test]
    fn old_keys_open_and_only_the_current_one_seals() {
        let (old, new) = (Keyring::generate_key_hex(), Keyring::generate_key_hex());
        let before = Keyring::single(&old).unwrap();
        let slot = token_slot(1);
        let sealed = before.seal(slot, "t");
        let ring = Keyring::from_hex(&new, [old.as_str()]).unwrap();
        let opened = ring.open(slot, &sealed).unwrap();
        assert_eq!((opened.plaintext.as_str(), opened.current), ("t", false));
        let resealed = ring.seal(slot, "t");
        assert_eq!(
            Keyring::sealed_by(&resealed),
            SealedBy::Key(hex::decode(ring.current().id).unwrap().try_into().unwrap())
        );
        assert!(ring.open(slot, &resealed).unwrap().current);
        // The new key alone no longer opens the old value.
        let only_new = Keyring::single(&new).unwrap();
        assert!(matches!(
            only_new.open(slot, &sealed),
            Err(OpenError::UnknownKey(_))
        ));
    }

    #[test]
    fn version_1_values_still_open() {
        let hex_key = Keyring::generate_key_hex();
        let ring = Keyring::single(&hex_key).unwrap();
        // A value as the version 1 code sealed it.
        let cipher = XChaCha20Poly1305::new_from_slice(&hex::decode(&hex_key).unwrap()).unwrap();
        let nonce = [3u8; NONCE_LEN];
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: b"legacy",
                    aad: b"sources.consumer_secret",
                },
            )
            .unwrap();
        let sealed = [&[SEALED_V1][..], &nonce, &ct].concat();
        let slot = Slot::ConsumerSecret {
            source: Uuid::new_v4(),
        };
        assert_eq!(Keyring::sealed_by(&sealed), SealedBy::Legacy);
        let opened = ring.open(slot, &sealed).unwrap();
        assert_eq!(
            (opened.plaintext.as_str(), opened.current),
            ("legacy", false)
        );
        assert_eq!(ring.legacy_key(slot, &sealed), Some(ring.current()));
        let other = Keyring::single(&Keyring::generate_key_hex()).unwrap();
        assert_eq!(other.open(slot, &sealed).unwrap_err(), OpenError::Refused);
    }

    #[test]
    fn fingerprints_are_stable_and_do_not_reveal_the_key() {
        let key = "00".repeat(32);
        let info = Keyring::single(&key).unwrap().current();
        assert_eq!(info.fingerprint.len(), 64);
        assert_eq!(&info.fingerprint[..16], info.id);
        assert_ne!(info.fingerprint, key);
        assert_eq!(Keyring::single(&key).unwrap().current(), info);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Keyring::single("abc").is_err());
        assert!(Keyring::single(&"zz".repeat(32)).is_err());
        assert!(Keyring::from_hex(&"00".repeat(32), ["abc"]).is_err());
        assert!(Keyring::single("").is_err());
    }

    #[test]
    fn api_keys_are_hashed_with_sha256() {
        let key = generate_api_key();
        assert_eq!(key.len(), 64);
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
