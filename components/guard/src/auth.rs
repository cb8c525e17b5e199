//! Bearer-token verification with jwt-simple.
//!
//! The configured key fixes the algorithm: an HS256 secret verifies only HS256 tokens, a
//! public key only its own algorithm, so a token cannot choose how it is checked (`alg: none`
//! and HS256-signed-with-the-public-key both fail as a mismatch).

use std::collections::HashSet;

use jwt_simple::prelude::*;
use jwt_simple::JWTError;

use crate::config;
use crate::exports::inventory::guard::auth::{AuthError, Principal};

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 60;
/// An HS256 secret shorter than this is a configuration error, not a key.
const MIN_SECRET_BYTES: usize = 32;

/// The claims beyond the registered ones that the service reads.
#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    /// Space-separated scopes (RFC 8693 `scope`).
    #[serde(default)]
    scope: Option<String>,
}

// Built once per request and used once; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Key {
    Hs256(HS256Key),
    Es256(ES256PublicKey),
    Rs256(RS256PublicKey),
    EdDsa(Ed25519PublicKey),
}

pub fn verify(token: &str) -> Result<Principal, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge);
    }
    let metadata = Token::decode_metadata(token).map_err(|err| classify(&err))?;
    if let Some(typ) = metadata.signature_type() {
        if !is_access_token_type(typ) {
            return Err(AuthError::WrongType(typ.to_owned()));
        }
    }
    let key = configured_key()?;
    let issuer = config::get("jwt_issuer").map_err(AuthError::Misconfigured)?;
    let audience = config::get("jwt_audience").map_err(AuthError::Misconfigured)?;
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([issuer])),
        allowed_audiences: Some(HashSet::from([audience])),
        time_tolerance: Some(Duration::from_secs(LEEWAY_SECONDS)),
        max_token_length: Some(MAX_TOKEN_BYTES),
        ..VerificationOptions::default()
    };
    let claims = match &key {
        Key::Hs256(key) => key.verify_token::<AccessClaims>(token, Some(options)),
        Key::Es256(key) => key.verify_token::<AccessClaims>(token, Some(options)),
        Key::Rs256(key) => key.verify_token::<AccessClaims>(token, Some(options)),
        Key::EdDsa(key) => key.verify_token::<AccessClaims>(token, Some(options)),
    }
    .map_err(|err| classify(&err))?;
    // jwt-simple checks `exp` only when present; a token that never expires is refused.
    if claims.expires_at.is_none() {
        return Err(AuthError::MissingClaim("exp".into()));
    }
    let subject = claims
        .subject
        .filter(|sub| !sub.is_empty())
        .ok_or_else(|| AuthError::MissingClaim("sub".into()))?;
    let scopes = claims
        .custom
        .scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Principal { subject, scopes })
}

/// A JOSE `typ` naming an access token: absent, `JWT`, or `at+jwt` (RFC 9068). Anything
/// else (`refresh+jwt`, `id_token`...) is a token for another purpose.
fn is_access_token_type(typ: &str) -> bool {
    ["JWT", "at+jwt", "application/at+jwt"]
        .iter()
        .any(|t| typ.eq_ignore_ascii_case(t))
}

fn configured_key() -> Result<Key, AuthError> {
    let misconfigured = AuthError::Misconfigured;
    let algorithm = config::get("jwt_algorithm").map_err(misconfigured)?;
    // A PEM in an environment variable often arrives with `\n` escapes for its newlines.
    let public_key = config::get("jwt_public_key")
        .map_err(misconfigured)?
        .replace("\\n", "\n");
    let public_key = public_key.trim();
    let key = match (algorithm.trim(), public_key.is_empty()) {
        ("HS256", true) => {
            let secret = config::get("jwt_secret").map_err(misconfigured)?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(misconfigured(format!(
                    "`jwt_secret` must be at least {MIN_SECRET_BYTES} bytes"
                )));
            }
            Ok(Key::Hs256(HS256Key::from_bytes(secret.as_bytes())))
        }
        // A public key with `jwt_algorithm` left at its default: the key's own type fixes
        // the algorithm (API.md: "when set, used instead of the secret").
        ("HS256", false) => ES256PublicKey::from_pem(public_key)
            .map(Key::Es256)
            .or_else(|_| Ed25519PublicKey::from_pem(public_key).map(Key::EdDsa))
            .or_else(|_| RS256PublicKey::from_pem(public_key).map(Key::Rs256)),
        ("ES256", false) => ES256PublicKey::from_pem(public_key).map(Key::Es256),
        ("RS256", false) => RS256PublicKey::from_pem(public_key).map(Key::Rs256),
        ("EdDSA", false) => Ed25519PublicKey::from_pem(public_key).map(Key::EdDsa),
        (alg @ ("ES256" | "RS256" | "EdDSA"), true) => {
            return Err(misconfigured(format!(
                "`jwt_algorithm` is {alg} but `jwt_public_key` is empty"
            )))
        }
        (other, _) => {
            return Err(misconfigured(format!(
                "`jwt_algorithm` must be HS256, ES256, RS256 or EdDSA, not {other:?}"
            )))
        }
    };
    key.map_err(|err| misconfigured(format!("`jwt_public_key` is not a usable key: {err}")))
}

fn classify(err: &jwt_simple::Error) -> AuthError {
    match err.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => AuthError::Expired,
        Some(JWTError::TokenNotValidYet | JWTError::ClockDrift) => AuthError::NotYetValid,
        Some(JWTError::RequiredIssuerMismatch) => AuthError::WrongIssuer,
        Some(JWTError::RequiredIssuerMissing) => AuthError::MissingClaim("iss".into()),
        Some(JWTError::RequiredAudienceMismatch) => AuthError::WrongAudience,
        Some(JWTError::RequiredAudienceMissing) => AuthError::MissingClaim("aud".into()),
        Some(JWTError::TokenTooLong) => AuthError::TooLarge,
        Some(e @ (JWTError::InvalidSignature | JWTError::AlgorithmMismatch)) => {
            AuthError::BadSignature(e.to_string())
        }
        _ => AuthError::Malformed(err.to_string()),
    }
}
