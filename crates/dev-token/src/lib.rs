//! A development tool of the inventory app, not of the host: an access token signed with the
//! app's own `jwt_*` variables, resolved as a Spin host resolves them (`--variable`, then
//! `SPIN_VARIABLE_<NAME>`, then the `.env` beside the manifest, then the manifest's default).
//! The key rule and the claims are `inventory-jwt`'s, the same the guard verifies with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use inventory_jwt::{KeySettings, SigningKey};

/// Every scope of the app (`api/openapi.json`, `components.securitySchemes`).
const ALL_SCOPES: &str = "inventory:read inventory:write stock:deduct events:admin metrics:read";

#[derive(clap::Parser, Debug)]
#[command(
    version,
    about = "Print an access token the inventory app accepts (for local use)"
)]
pub struct TokenArgs {
    /// The app's manifest, or a directory holding `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub manifest: PathBuf,
    /// The subject (`sub`): who the token speaks for.
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Space-separated scopes (default: every scope of the app).
    #[arg(long, default_value = ALL_SCOPES)]
    pub scope: String,
    /// Seconds until the token expires.
    #[arg(long = "ttl", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub ttl_secs: u64,
    /// Set an application variable, as `spin up --variable` does.
    #[arg(long = "variable", value_name = "KEY=VALUE", value_parser = parse_variable)]
    pub variables: Vec<(String, String)>,
    /// The PEM private key to sign with, when the app verifies with `jwt_public_key`.
    #[arg(long = "private-key", value_name = "PEM_FILE")]
    pub private_key: Option<PathBuf>,
}

fn parse_variable(text: &str) -> Result<(String, String)> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| anyhow!("expected KEY=VALUE, found `{text}`"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// Signs a token the app accepts, with its configured issuer, audience and key.
pub fn sign(args: &TokenArgs) -> Result<String> {
    let variables = Variables::resolve(&args.manifest, &args.variables)?;
    let settings = KeySettings {
        algorithm: variables.get("jwt_algorithm")?,
        public_key: variables.get("jwt_public_key")?,
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
        variables.get("jwt_issuer")?,
        variables.get("jwt_audience")?,
        &args.sub,
        &args.scope,
        Duration::from_secs(args.ttl_secs),
    )
    .map_err(|err| anyhow!(err))
}

/// The app's variables that have a value.
struct Variables(BTreeMap<String, String>);

impl Variables {
    fn resolve(manifest: &Path, cli: &[(String, String)]) -> Result<Self> {
        let manifest = if manifest.is_dir() {
            manifest.join("spin.toml")
        } else {
            manifest.to_path_buf()
        };
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read the manifest {}", manifest.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid manifest {}", manifest.display()))?;
        let declared = table
            .get("variables")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for (name, _) in cli {
            if !declared.contains_key(name) {
                bail!("`--variable {name}=...`: the manifest declares no variable `{name}`");
            }
        }
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let dotenv: BTreeMap<String, String> = match dotenvy::from_path_iter(dir.join(".env")) {
            Ok(lines) => lines
                .collect::<Result<_, _>>()
                .context("cannot read .env")?,
            Err(_) => BTreeMap::new(),
        };
        let mut values = BTreeMap::new();
        for (name, decl) in &declared {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            let value = cli
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .or_else(|| std::env::var(&env_name).ok())
                .or_else(|| dotenv.get(&env_name).cloned())
                .or_else(|| {
                    decl.get("default")
                        .and_then(toml::Value::as_str)
                        .map(str::to_owned)
                });
            if let Some(value) = value {
                values.insert(name.clone(), value);
            }
        }
        Ok(Self(values))
    }

    fn get(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("the manifest declares no variable `{name}` with a value"))
    }
}
