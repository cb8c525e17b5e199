//! `token`: a signed access token for the app, from the app's own JWT variables, so a local
//! deployment can be called with curl. The key rule and the claims are `inventory-jwt`'s,
//! the same the guard verifies with.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use inventory_jwt::{KeySettings, SigningKey};

use crate::cli::TokenArgs;
use crate::manifest::LoadedManifest;
use crate::variables::{AppVariables, Environment};

/// Signs a token the app accepts, with its configured issuer, audience and key. Variables
/// are resolved as `up` resolves them.
pub fn sign(args: &TokenArgs) -> Result<String> {
    let loaded = LoadedManifest::load(&args.manifest())?;
    let environment = Environment::load(&loaded.dir)?;
    let variables = AppVariables::resolve(&loaded.manifest.variables, &args.variables, |name| {
        environment.get(name)
    })?;
    let var = |name: &str| {
        variables
            .get(name)
            .with_context(|| format!("the manifest declares no variable `{name}`"))
    };
    let settings = KeySettings {
        algorithm: var("jwt_algorithm")?,
        public_key: var("jwt_public_key")?,
        secret: variables.get("jwt_secret").unwrap_or_default(),
    };
    let choice = settings
        .choose()
        .map_err(|err| anyhow!("{err}, or the app refuses every token"))?;
    let private_key = args
        .private_key
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the private key {}", path.display()))
        })
        .transpose()?;
    let key =
        SigningKey::new(&choice, private_key.as_deref()).map_err(|err| match private_key {
            None => anyhow!("{err}: pass it with --private-key FILE"),
            Some(_) => anyhow!("{err}"),
        })?;
    key.sign(
        var("jwt_issuer")?,
        var("jwt_audience")?,
        &args.sub,
        &args.scope,
        Duration::from_secs(args.ttl_secs),
    )
    .map_err(|err| anyhow!(err))
}
