//! `token`: a signed access token for the app, from the app's own JWT variables, so a local
//! deployment can be called with curl. The token is exactly what the guard verifies.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use jwt_simple::prelude::*;

use crate::variables::AppVariables;

#[derive(clap::Args)]
pub struct TokenArgs {
    /// The manifest, or a directory holding `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// The subject (`sub`): who the token speaks for.
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Space-separated scopes.
    #[arg(long, default_value = "inventory:read inventory:write stock:deduct")]
    pub scope: String,
    /// Seconds until the token expires.
    #[arg(long = "ttl", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub ttl_secs: u64,
    /// Set an application variable, as `up --variable` does.
    #[arg(long = "variable", value_name = "KEY=VALUE", value_parser = crate::parse_variable)]
    pub variables: Vec<(String, String)>,
    /// The PEM private key to sign with, when the app verifies with `jwt_public_key`.
    #[arg(long = "private-key", value_name = "PEM_FILE")]
    pub private_key: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct AccessClaims {
    scope: String,
}

/// The guard's floor for an HS256 secret.
const MIN_SECRET_BYTES: usize = 32;

/// Signs a token the app accepts, with its configured issuer, audience and key. Values are
/// used exactly as the guard reads them: only the algorithm and the public key are trimmed.
pub fn sign(args: &TokenArgs, variables: &AppVariables) -> Result<String> {
    let var = |name: &str| {
        variables
            .get(name)
            .with_context(|| format!("the manifest declares no variable `{name}`"))
    };
    let claims = Claims::with_custom_claims(
        AccessClaims {
            scope: args.scope.clone(),
        },
        Duration::from_secs(args.ttl_secs),
    )
    .with_issuer(var("jwt_issuer")?)
    .with_audience(var("jwt_audience")?)
    .with_subject(&args.sub);
    let algorithm = var("jwt_algorithm")?.trim();
    if var("jwt_public_key")?.trim().is_empty() {
        if algorithm != "HS256" {
            bail!("`jwt_algorithm` is {algorithm:?} but `jwt_public_key` is empty");
        }
        let secret = var("jwt_secret")?;
        if secret.len() < MIN_SECRET_BYTES {
            bail!("`jwt_secret` must be at least {MIN_SECRET_BYTES} bytes, or the app refuses every token");
        }
        return HS256Key::from_bytes(secret.as_bytes())
            .authenticate(claims)
            .map_err(|err| anyhow::anyhow!("cannot sign the token: {err}"));
    }
    let Some(path) = &args.private_key else {
        bail!(
            "the app verifies tokens with `jwt_public_key`: pass the matching private key with \
             --private-key FILE"
        );
    };
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the private key {}", path.display()))?;
    // As in the guard, the key's type decides when `jwt_algorithm` is left at HS256.
    let signed = match algorithm {
        "ES256" => ES256KeyPair::from_pem(&pem)?.sign(claims),
        "RS256" => RS256KeyPair::from_pem(&pem)?.sign(claims),
        "EdDSA" => Ed25519KeyPair::from_pem(&pem)?.sign(claims),
        "HS256" => {
            if let Ok(key) = ES256KeyPair::from_pem(&pem) {
                key.sign(claims)
            } else if let Ok(key) = Ed25519KeyPair::from_pem(&pem) {
                key.sign(claims)
            } else {
                RS256KeyPair::from_pem(&pem)?.sign(claims)
            }
        }
        other => bail!("`jwt_algorithm` must be HS256, ES256, RS256 or EdDSA, not {other:?}"),
    };
    signed.map_err(|err| anyhow::anyhow!("cannot sign the token: {err}"))
}
