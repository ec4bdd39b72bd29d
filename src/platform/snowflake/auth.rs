//! Key-pair JWTs for the SQL API and ingress (SNOWFLAKE.md §3, §7): RS256, `iss =
//! <ACCOUNT>.<USER>.SHA256:<base64 sha256 of the public key's DER>`, `sub = <ACCOUNT>.<USER>`, a
//! lifetime under an hour. Signed with aws-lc-rs (already in the TLS stack), not the `rsa` crate
//! (RUSTSEC-2023-0071). Encrypted PKCS#8 keys are decrypted with the passphrase first.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use pkcs8::der::Decode;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "{path}: the private key is encrypted: set private_key_passphrase in the connection (or PRIVATE_KEY_PASSPHRASE)"
    )]
    NeedsPassphrase { path: String },
    #[error("{path}: {detail}")]
    Bad { path: String, detail: String },
}

/// A loaded RSA key and its public-key fingerprint.
pub struct Signer {
    key: RsaKeyPair,
    /// `SHA256:<base64>` of the SubjectPublicKeyInfo DER.
    pub fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// DER length bytes.
fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(body.len()));
    out.extend_from_slice(body);
    out
}

/// SubjectPublicKeyInfo for an RSA public key given as PKCS#1 `RSAPublicKey` DER — what
/// `openssl rsa -pubout -outform DER` writes, and what Snowflake fingerprints.
pub fn spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    let alg = der(
        0x30,
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ],
    );
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = alg;
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

impl Signer {
    pub fn load(path: &Path, passphrase: Option<&Secret>) -> Result<Signer, KeyError> {
        let shown = path.display().to_string();
        let text = crate::paths::read_user_text(path, crate::paths::SMALL_FILE).map_err(|e| {
            KeyError::Read {
                path: shown.clone(),
                detail: e.to_string(),
            }
        })?;
        let bad = |detail: String| KeyError::Bad {
            path: shown.clone(),
            detail,
        };
        let (label, der_bytes) = pkcs8::der::pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| bad(format!("not a PEM private key: {e}")))?;
        let key = match label {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der_bytes)
                .map_err(|e| bad(format!("not an RSA PKCS#8 key: {e}")))?,
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der_bytes)
                .map_err(|e| bad(format!("not an RSA PKCS#1 key: {e}")))?,
            "ENCRYPTED PRIVATE KEY" => {
                let pass = passphrase.ok_or_else(|| KeyError::NeedsPassphrase {
                    path: shown.clone(),
                })?;
                let enc = pkcs8::EncryptedPrivateKeyInfo::from_der(&der_bytes)
                    .map_err(|e| bad(format!("not an encrypted PKCS#8 key: {e}")))?;
                let doc = enc.decrypt(pass.expose().as_bytes()).map_err(|_| {
                    bad("cannot decrypt the key: wrong passphrase, or an unsupported cipher".into())
                })?;
                RsaKeyPair::from_pkcs8(doc.as_bytes())
                    .map_err(|e| bad(format!("not an RSA key: {e}")))?
            }
            other => return Err(bad(format!("a `{other}` PEM block, not a private key"))),
        };
        let spki = spki_from_pkcs1(key.public_key().as_ref());
        let fingerprint = format!("SHA256:{}", STANDARD.encode(Sha256::digest(&spki)));
        Ok(Signer { key, fingerprint })
    }

    /// A JWT for `account`/`user`, issued at `now` (seconds), valid for 59 minutes.
    pub fn jwt(&self, account: &str, user: &str, now: i64) -> Result<Secret, KeyError> {
        let account = jwt_account(account);
        let user = user.to_ascii_uppercase();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iss": format!("{account}.{user}.{}", self.fingerprint),
            "sub": format!("{account}.{user}"),
            "iat": now,
            "exp": now + 59 * 60,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|e| KeyError::Bad {
                path: String::new(),
                detail: format!("signing failed: {e}"),
            })?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig)
        )))
    }
}

/// The account part of JWT claims, as the connector's `auth/keypair.py` (and snowflake-ml-python's
/// `jwt_generator.py`) cut it: for a `.global` account identifier, everything before the first
/// `-`; otherwise everything before the first `.` (a locator with a region suffix keeps only the
/// locator); upper-cased.
pub fn jwt_account(account: &str) -> String {
    let cut = if account.contains(".global") {
        account.split('-').next()
    } else {
        account.split('.').next()
    };
    cut.unwrap_or(account).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_cut_and_upper_cased() {
        assert_eq!(jwt_account("myorg-myacct"), "MYORG-MYACCT");
        assert_eq!(jwt_account("xy12345.us-east-2.aws"), "XY12345");
        assert_eq!(jwt_account("xy12345-abcdef.global"), "XY12345");
        assert_eq!(jwt_account("myorg-myacct.privatelink"), "MYORG-MYACCT");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_len(5), vec![5]);
        assert_eq!(der_len(0x80), vec![0x81, 0x80]);
        assert_eq!(der_len(270), vec![0x82, 0x01, 0x0e]);
    }
}
