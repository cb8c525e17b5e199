//! The service's access tokens, in one place for the guard (which verifies them) and the
//! host's `token` command (which signs them):
//!
//! - the key rule: which key the `jwt_*` variables name, and so which algorithm a token must
//!   use (the configured key fixes it, never the token's header);
//! - verification: required claims, issuer, audience, leeway, size, JOSE `typ`;
//! - signing: the same claims, for local use.

use std::collections::HashSet;
use std::fmt;

use jwt_simple::prelude::*;
use jwt_simple::JWTError;

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 60;
/// An HS256 secret shorter than this is a configuration error, not a key.
pub const MIN_SECRET_BYTES: usize = 32;
/// The `jwt_secret` the app ships with (`spin.toml`): public, so tokens it signs are honoured
/// only for the developer's own machine (loopback clients).
pub const DEV_SECRET: &str = "dev-only-insecure-jwt-secret-change-me-0123456789";

/// The claims beyond the registered ones that the service reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Space-separated scopes (RFC 8693 `scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The `jwt_*` variables, as the app reads them.
#[derive(Debug, Clone, Copy)]
pub struct KeySettings<'a> {
    /// `jwt_algorithm`: `HS256` (the default), `ES256`, `RS256` or `EdDSA`.
    pub algorithm: &'a str,
    /// `jwt_public_key`: a PEM, possibly with `\n` escapes; empty for a shared secret.
    pub public_key: &'a str,
    /// `jwt_secret`: the HS256 key when there is no public key.
    pub secret: &'a str,
}

/// The asymmetric algorithms, in the order a key of unnamed type is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Es256,
    EdDsa,
    Rs256,
}

const BY_KEY_TYPE: [Algorithm; 3] = [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256];

/// The key the settings name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChoice {
    /// An HS256 shared secret (at least [`MIN_SECRET_BYTES`]).
    Secret(Vec<u8>),
    /// A PEM public key, for this algorithm, or (`None`, `jwt_algorithm` left at its
    /// default) for whichever algorithm the key's own type names.
    PublicKey {
        pem: String,
        algorithm: Option<Algorithm>,
    },
}

impl KeySettings<'_> {
    /// Whether the key is the shipped development secret.
    pub fn is_development(&self) -> bool {
        self.public_key.trim().is_empty() && self.secret == DEV_SECRET
    }

    /// The key rule. A public key, when set, is used instead of the secret; the algorithm
    /// must agree with it.
    pub fn choose(&self) -> Result<KeyChoice, String> {
        // A PEM in an environment variable often arrives with `\n` escapes for its newlines.
        let pem = self.public_key.replace("\\n", "\n");
        let pem = pem.trim();
        let algorithm = match (self.algorithm.trim(), pem.is_empty()) {
            ("HS256", true) => {
                if self.secret.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "`jwt_secret` must be at least {MIN_SECRET_BYTES} bytes"
                    ));
                }
                return Ok(KeyChoice::Secret(self.secret.as_bytes().to_vec()));
            }
            ("HS256", false) => None,
            ("ES256", false) => Some(Algorithm::Es256),
            ("RS256", false) => Some(Algorithm::Rs256),
            ("EdDSA", false) => Some(Algorithm::EdDsa),
            (alg @ ("ES256" | "RS256" | "EdDSA"), true) => {
                return Err(format!(
                    "`jwt_algorithm` is {alg} but `jwt_public_key` is empty"
                ))
            }
            (other, _) => {
                return Err(format!(
                    "`jwt_algorithm` must be HS256, ES256, RS256 or EdDSA, not {other:?}"
                ))
            }
        };
        Ok(KeyChoice::PublicKey {
            pem: pem.to_owned(),
            algorithm,
        })
    }
}

/// Parses a PEM as the key of `algorithm`, or of the first algorithm whose type it is.
fn from_pem<K>(
    pem: &str,
    algorithm: Option<Algorithm>,
    parse: impl Fn(Algorithm, &str) -> Result<K, jwt_simple::Error>,
) -> Result<K, jwt_simple::Error> {
    match algorithm {
        Some(algorithm) => parse(algorithm, pem),
        None => {
            let mut last = None;
            for algorithm in BY_KEY_TYPE {
                match parse(algorithm, pem) {
                    Ok(key) => return Ok(key),
                    Err(err) => last = Some(err),
                }
            }
            Err(last.unwrap_or_else(|| jwt_simple::Error::msg("no algorithm to try")))
        }
    }
}

/// A key that verifies tokens.
// Built once per request and used once; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum VerifyingKey {
    Hs256(HS256Key),
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
    Rs256(RS256PublicKey),
}

impl VerifyingKey {
    pub fn new(choice: &KeyChoice) -> Result<Self, String> {
        match choice {
            KeyChoice::Secret(secret) => Ok(Self::Hs256(HS256Key::from_bytes(secret))),
            KeyChoice::PublicKey { pem, algorithm } => {
                from_pem(pem, *algorithm, |algorithm, pem| match algorithm {
                    Algorithm::Es256 => ES256PublicKey::from_pem(pem).map(Self::Es256),
                    Algorithm::EdDsa => Ed25519PublicKey::from_pem(pem).map(Self::EdDsa),
                    Algorithm::Rs256 => RS256PublicKey::from_pem(pem).map(Self::Rs256),
                })
                .map_err(|err| format!("`jwt_public_key` is not a usable key: {err}"))
            }
        }
    }
}

/// A key that signs tokens: the secret, or the private half of the configured public key.
// Built once per command and used once.
#[allow(clippy::large_enum_variant)]
pub enum SigningKey {
    Hs256(HS256Key),
    Es256(ES256KeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RS256KeyPair),
}

impl SigningKey {
    /// `private_pem` is needed when the settings name a public key.
    pub fn new(choice: &KeyChoice, private_pem: Option<&str>) -> Result<Self, String> {
        match choice {
            KeyChoice::Secret(secret) => Ok(Self::Hs256(HS256Key::from_bytes(secret))),
            KeyChoice::PublicKey { algorithm, .. } => {
                let pem = private_pem.ok_or(
                    "the app verifies tokens with `jwt_public_key`: the matching private key is \
                     needed to sign",
                )?;
                from_pem(pem, *algorithm, |algorithm, pem| match algorithm {
                    Algorithm::Es256 => ES256KeyPair::from_pem(pem).map(Self::Es256),
                    Algorithm::EdDsa => Ed25519KeyPair::from_pem(pem).map(Self::EdDsa),
                    Algorithm::Rs256 => RS256KeyPair::from_pem(pem).map(Self::Rs256),
                })
                .map_err(|err| format!("the private key is not a usable key: {err}"))
            }
        }
    }

    /// A token for `subject` with `scope`, valid for `ttl`.
    pub fn sign(
        &self,
        issuer: &str,
        audience: &str,
        subject: &str,
        scope: &str,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let claims = Claims::with_custom_claims(
            AccessClaims {
                scope: Some(scope.to_owned()),
            },
            Duration::from_secs(ttl.as_secs()),
        )
        .with_issuer(issuer)
        .with_audience(audience)
        .with_subject(subject);
        match self {
            Self::Hs256(key) => key.authenticate(claims),
            Self::Es256(key) => key.sign(claims),
            Self::EdDsa(key) => key.sign(claims),
            Self::Rs256(key) => key.sign(claims),
        }
        .map_err(|err| format!("cannot sign the token: {err}"))
    }
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub subject: String,
    pub scopes: Vec<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge,
    Malformed(String),
    BadSignature(String),
    Expired,
    NotYetValid,
    MissingClaim(&'static str),
    WrongIssuer,
    WrongAudience,
    WrongType(String),
}

impl fmt::Display for Refusal {
    /// The kind only, never text that could quote a claim: this is what reaches the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => f.write_str("too large"),
            Self::Malformed(_) => f.write_str("malformed"),
            Self::BadSignature(_) => f.write_str("bad signature or algorithm"),
            Self::Expired => f.write_str("expired"),
            Self::NotYetValid => f.write_str("not yet valid"),
            Self::MissingClaim(claim) => write!(f, "missing claim {claim}"),
            Self::WrongIssuer => f.write_str("wrong issuer"),
            Self::WrongAudience => f.write_str("wrong audience"),
            Self::WrongType(_) => f.write_str("not an access token (typ)"),
        }
    }
}

/// A JOSE `typ` naming an access token: absent, `JWT`, or `at+jwt` (RFC 9068). Anything
/// else (`refresh+jwt`, `id_token`...) is a token for another purpose.
fn is_access_token_type(typ: &str) -> bool {
    ["JWT", "at+jwt", "application/at+jwt"]
        .iter()
        .any(|t| typ.eq_ignore_ascii_case(t))
}

/// The token's type, checked before the key is even built.
pub fn check_type(token: &str) -> Result<(), Refusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::TooLarge);
    }
    let metadata = Token::decode_metadata(token).map_err(|err| classify(&err))?;
    match metadata.signature_type() {
        Some(typ) if !is_access_token_type(typ) => Err(Refusal::WrongType(typ.to_owned())),
        _ => Ok(()),
    }
}

impl VerifyingKey {
    /// Verifies `token`: signature by this key only, `exp`, `sub`, `iss` and `aud` required,
    /// [`LEEWAY_SECONDS`] of clock skew.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Result<Verified, Refusal> {
        check_type(token)?;
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([issuer.to_owned()])),
            allowed_audiences: Some(HashSet::from([audience.to_owned()])),
            time_tolerance: Some(Duration::from_secs(LEEWAY_SECONDS)),
            max_token_length: Some(MAX_TOKEN_BYTES),
            ..VerificationOptions::default()
        };
        let claims = match self {
            Self::Hs256(key) => key.verify_token::<AccessClaims>(token, Some(options)),
            Self::Es256(key) => key.verify_token::<AccessClaims>(token, Some(options)),
            Self::EdDsa(key) => key.verify_token::<AccessClaims>(token, Some(options)),
            Self::Rs256(key) => key.verify_token::<AccessClaims>(token, Some(options)),
        }
        .map_err(|err| classify(&err))?;
        // jwt-simple checks `exp` only when present; a token that never expires is refused.
        if claims.expires_at.is_none() {
            return Err(Refusal::MissingClaim("exp"));
        }
        let subject = claims
            .subject
            .filter(|sub| !sub.is_empty())
            .ok_or(Refusal::MissingClaim("sub"))?;
        let scopes = claims
            .custom
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Verified { subject, scopes })
    }
}

fn classify(err: &jwt_simple::Error) -> Refusal {
    match err.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => Refusal::Expired,
        Some(JWTError::TokenNotValidYet | JWTError::ClockDrift) => Refusal::NotYetValid,
        Some(JWTError::RequiredIssuerMismatch) => Refusal::WrongIssuer,
        Some(JWTError::RequiredIssuerMissing) => Refusal::MissingClaim("iss"),
        Some(JWTError::RequiredAudienceMismatch) => Refusal::WrongAudience,
        Some(JWTError::RequiredAudienceMissing) => Refusal::MissingClaim("aud"),
        Some(JWTError::TokenTooLong) => Refusal::TooLarge,
        Some(e @ (JWTError::InvalidSignature | JWTError::AlgorithmMismatch)) => {
            Refusal::BadSignature(e.to_string())
        }
        _ => Refusal::Malformed(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings<'a>(algorithm: &'a str, public_key: &'a str, secret: &'a str) -> KeySettings<'a> {
        KeySettings {
            algorithm,
            public_key,
            secret,
        }
    }

    #[test]
    fn a_secret_must_be_32_bytes_and_is_used_only_without_a_public_key() {
        assert!(settings("HS256", "", "short").choose().is_err());
        assert_eq!(
            settings("HS256", "", SECRET).choose(),
            Ok(KeyChoice::Secret(SECRET.as_bytes().to_vec()))
        );
        assert!(settings("ES256", "", SECRET).choose().is_err());
        assert!(settings("none", "", SECRET).choose().is_err());
    }

    #[test]
    fn a_public_key_alone_is_typed_by_the_key_and_accepts_only_its_own_tokens() {
        let pair = ES256KeyPair::generate();
        let pem = pair.public_key().to_pem().unwrap().replace('\n', "\\n");
        let choice = settings("HS256", &pem, SECRET).choose().unwrap();
        assert!(matches!(
            &choice,
            KeyChoice::PublicKey {
                algorithm: None,
                ..
            }
        ));
        let key = VerifyingKey::new(&choice).unwrap();
        assert!(matches!(key, VerifyingKey::Es256(_)));
        let signer = SigningKey::new(&choice, Some(&pair.to_pem().unwrap())).unwrap();
        let token = signer
            .sign(
                "iss",
                "aud",
                "alice",
                "a b",
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        let verified = key.verify(&token, "iss", "aud").unwrap();
        assert_eq!(verified.subject, "alice");
        assert_eq!(verified.scopes, vec!["a", "b"]);
        assert_eq!(
            key.verify(&token, "other", "aud"),
            Err(Refusal::WrongIssuer)
        );
        let hs = SigningKey::new(&KeyChoice::Secret(SECRET.into()), None).unwrap();
        let forged = hs
            .sign(
                "iss",
                "aud",
                "alice",
                "a",
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert!(matches!(
            key.verify(&forged, "iss", "aud"),
            Err(Refusal::BadSignature(_))
        ));
    }

    #[test]
    fn only_the_shipped_secret_counts_as_the_development_key() {
        assert!(settings("HS256", "", DEV_SECRET).is_development());
        assert!(!settings("HS256", "", SECRET).is_development());
        let pem = Ed25519KeyPair::generate().public_key().to_pem();
        assert!(!settings("EdDSA", &pem, DEV_SECRET).is_development());
    }

    #[test]
    fn signing_for_a_public_key_needs_the_private_key() {
        let pem = Ed25519KeyPair::generate().public_key().to_pem();
        let choice = settings("EdDSA", &pem, "").choose().unwrap();
        assert!(SigningKey::new(&choice, None).is_err());
    }
}
