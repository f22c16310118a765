//! Secrets at rest: API keys are stored as SHA-256 hashes; OAuth access tokens and consumer
//! secrets are sealed with XChaCha20-Poly1305 under the configured secret key.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Format byte in front of every sealed value, so the scheme can change later.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// The column a sealed value belongs to; bound in as associated data, so a ciphertext copied
/// into another column does not open.
#[derive(Clone, Copy, Debug)]
pub enum SealedColumn {
    AccessToken,
    ConsumerSecret,
}

impl SealedColumn {
    fn aad(self) -> &'static [u8] {
        match self {
            SealedColumn::AccessToken => b"user_oauth_source_connections.access_token",
            SealedColumn::ConsumerSecret => b"sources.consumer_secret",
        }
    }
}

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Accepts the key as 64 hex characters (32 bytes).
    pub fn from_hex(key: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(key.trim())
            .map_err(|_| anyhow::anyhow!("the secret key must be 64 hex characters"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the secret key must be 64 hex characters (32 bytes)"))?;
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    pub fn generate_key_hex() -> String {
        hex::encode(rand::rng().random::<[u8; 32]>())
    }

    pub fn seal(&self, column: SealedColumn, plaintext: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: column.aad(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, column: SealedColumn, sealed: &[u8]) -> Option<String> {
        let (&version, rest) = sealed.split_first()?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: column.aad(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
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

    #[test]
    fn sealed_values_open_only_in_their_column_and_with_their_key() {
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex()).unwrap();
        let sealed = sealer.seal(SealedColumn::AccessToken, "gho_secret");
        assert!(!sealed.windows(10).any(|w| w == b"gho_secret"));
        assert_eq!(
            sealer.open(SealedColumn::AccessToken, &sealed).as_deref(),
            Some("gho_secret")
        );
        assert_eq!(sealer.open(SealedColumn::ConsumerSecret, &sealed), None);
        let other = Sealer::from_hex(&Sealer::generate_key_hex()).unwrap();
        assert_eq!(other.open(SealedColumn::AccessToken, &sealed), None);
        // Two seals of one value differ (fresh nonce).
        assert_ne!(sealed, sealer.seal(SealedColumn::AccessToken, "gho_secret"));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Sealer::from_hex("abc").is_err());
        assert!(Sealer::from_hex(&"zz".repeat(32)).is_err());
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
