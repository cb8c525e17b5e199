//! Bearer-token verification, by the rules of `inventory-jwt` (shared with the host's `token`
//! command): the configured key fixes the algorithm, so a token cannot choose how it is
//! checked (`alg: none` and HS256-signed-with-the-public-key both fail as a mismatch).

use inventory_jwt::{check_type, KeySettings, Refusal, VerifyingKey};

use crate::config;
use crate::exports::inventory::guard::auth::{AuthError, Principal};

pub fn verify(token: &str) -> Result<Principal, AuthError> {
    // A token that is not even an access token is refused before the key is built.
    check_type(token).map_err(refused)?;
    let misconfigured = AuthError::Misconfigured;
    let algorithm = config::get("jwt_algorithm").map_err(misconfigured)?;
    let public_key = config::get("jwt_public_key").map_err(misconfigured)?;
    // The secret is read only when it is the key (a public-key deployment may not set it).
    let secret = if public_key.trim().is_empty() {
        config::get("jwt_secret").map_err(misconfigured)?
    } else {
        String::new()
    };
    let settings = KeySettings {
        algorithm: &algorithm,
        public_key: &public_key,
        secret: &secret,
    };
    let development_key = settings.is_development();
    let key = settings
        .choose()
        .and_then(|choice| VerifyingKey::new(&choice))
        .map_err(misconfigured)?;
    let issuer = config::get("jwt_issuer").map_err(misconfigured)?;
    let audience = config::get("jwt_audience").map_err(misconfigured)?;
    let verified = key.verify(token, &issuer, &audience).map_err(refused)?;
    Ok(Principal {
        subject: verified.subject,
        scopes: verified.scopes,
        development_key,
    })
}

fn refused(refusal: Refusal) -> AuthError {
    match refusal {
        Refusal::TooLarge => AuthError::TooLarge,
        Refusal::Malformed(text) => AuthError::Malformed(text),
        Refusal::BadSignature(text) => AuthError::BadSignature(text),
        Refusal::Expired => AuthError::Expired,
        Refusal::NotYetValid => AuthError::NotYetValid,
        Refusal::MissingClaim(claim) => AuthError::MissingClaim(claim.to_owned()),
        Refusal::WrongIssuer => AuthError::WrongIssuer,
        Refusal::WrongAudience => AuthError::WrongAudience,
        Refusal::WrongType(typ) => AuthError::WrongType(typ),
    }
}
