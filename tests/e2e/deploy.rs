//! `deploy/` read against what it must agree with: the SpinKube `SpinApp` resource's fields
//! (spin-operator's `core.spinkube.dev/v1alpha1` CRD), the variables `spin.toml` declares,
//! Spin's runtime config keys, and the routes in `api/openapi.json`. No cluster runs here;
//! this keeps the files from drifting away from the app.

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::app::repo_root;

fn yaml(file: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("deploy").join(file)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|err| panic!("deploy/{file}: {err}"))
}

fn manifest() -> toml::Table {
    let text = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("{} is not a string", path.join(".")))
}

#[test]
fn the_spinapp_sets_only_declared_variables_and_every_secret_from_a_secret() {
    let app = yaml("spinapp.yaml");
    assert_eq!(str_at(&app, &["apiVersion"]), "core.spinkube.dev/v1alpha1");
    assert_eq!(str_at(&app, &["kind"]), "SpinApp");
    assert_eq!(str_at(&app, &["spec", "executor"]), "containerd-shim-spin");
    assert!(
        app["spec"]["replicas"].as_u64() > Some(1),
        "replicas, not one pod"
    );
    assert_eq!(
        str_at(&app, &["spec", "runtimeConfig", "loadFromSecret"]),
        "inventory-runtime-config"
    );
    // The fields spin-operator's SpinAppSpec has, and no others.
    let known = [
        "executor",
        "image",
        "imagePullSecrets",
        "checks",
        "replicas",
        "enableAutoscaling",
        "runtimeConfig",
        "volumes",
        "volumeMounts",
        "variables",
        "serviceAnnotations",
        "deploymentAnnotations",
        "podAnnotations",
        "podLabels",
        "resources",
        "components",
    ];
    for key in app["spec"].as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        assert!(known.contains(&key), "SpinApp has no field spec.{key}");
    }

    let declared = manifest()["variables"].as_table().unwrap().clone();
    let variables = app["spec"]["variables"].as_sequence().unwrap();
    let mut from_secrets = Vec::new();
    for variable in variables {
        let name = str_at(variable, &["name"]);
        assert!(
            declared.contains_key(name),
            "spin.toml declares no `{name}`"
        );
        if variable["valueFrom"]["secretKeyRef"].is_mapping() {
            from_secrets.push(name.to_owned());
        } else {
            assert!(variable["value"].is_string(), "`{name}` has no value");
        }
    }
    for (name, decl) in &declared {
        if decl.get("secret").and_then(toml::Value::as_bool) == Some(true) {
            assert!(
                from_secrets.contains(name),
                "the secret variable `{name}` must come from a Kubernetes Secret"
            );
        }
    }
    // The probes hit a route that is open and documented.
    let openapi: Json = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    for probe in ["readiness", "liveness"] {
        let path = str_at(&app, &["spec", "checks", probe, "httpGet", "path"]);
        let get = &openapi["paths"][path]["get"];
        assert!(get.is_object(), "{path} is not a documented GET");
        assert!(get
            .get("security")
            .is_none_or(|s| s == &serde_json::json!([])));
    }
}

#[test]
fn the_runtime_config_shares_redis_and_libsql_with_spins_keys() {
    let text = std::fs::read_to_string(repo_root().join("deploy/runtime-config.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    let keys: Vec<&String> = config.keys().collect();
    assert_eq!(keys, ["key_value_store", "sqlite_database"]);
    let kv = config["key_value_store"]["default"].as_table().unwrap();
    assert_eq!(kv["type"].as_str(), Some("redis"));
    assert!(kv["url"].as_str().unwrap().starts_with("redis://"));
    assert_eq!(kv.len(), 2, "Spin's redis store takes `url` only");
    // Spin refuses other keys on a libSQL database (`deny_unknown_fields`).
    let db = config["sqlite_database"]["default"].as_table().unwrap();
    assert_eq!(db["type"].as_str(), Some("libsql"));
    let mut db_keys: Vec<&String> = db.keys().collect();
    db_keys.sort();
    assert_eq!(db_keys, ["token", "type", "url"]);
}

#[test]
fn the_cronjob_delivers_events_through_the_documented_route_with_its_scope() {
    let job = yaml("events-deliver-cronjob.yaml");
    assert_eq!(str_at(&job, &["kind"]), "CronJob");
    let container = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let command = container["command"].as_sequence().unwrap();
    let script = command.last().and_then(Value::as_str).unwrap();
    // The SpinApp's Service has the app's name.
    let app = yaml("spinapp.yaml");
    let url = format!(
        "http://{}/events/deliver",
        str_at(&app, &["metadata", "name"])
    );
    assert!(
        script.contains(&url) && script.contains("-X POST"),
        "{script}"
    );
    assert!(script.contains("Authorization: Bearer $TOKEN"), "{script}");
    assert_eq!(
        str_at(&container["env"][0], &["valueFrom", "secretKeyRef", "name"]),
        "inventory-events-token"
    );
    let openapi: Json = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        openapi["paths"]["/events/deliver"]["post"]["security"][0]["bearer"],
        serde_json::json!(["events:admin"])
    );
}

#[test]
fn the_podmonitor_scrapes_the_apps_pods_on_the_documented_metrics_route_with_its_scope() {
    let monitor = yaml("podmonitor.yaml");
    assert_eq!(
        str_at(&monitor, &["apiVersion"]),
        "monitoring.coreos.com/v1"
    );
    assert_eq!(str_at(&monitor, &["kind"]), "PodMonitor");
    // spin-operator labels the app's pods with its name and names their port `http-app`.
    let app = yaml("spinapp.yaml");
    assert_eq!(
        str_at(
            &monitor,
            &[
                "spec",
                "selector",
                "matchLabels",
                "core.spinkube.dev/app-name"
            ]
        ),
        str_at(&app, &["metadata", "name"])
    );
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(str_at(endpoint, &["port"]), "http-app");
    assert_eq!(str_at(endpoint, &["path"]), "/metrics");
    assert_eq!(str_at(endpoint, &["authorization", "type"]), "Bearer");
    assert_eq!(
        str_at(endpoint, &["authorization", "credentials", "name"]),
        "inventory-metrics-token"
    );
    let openapi: Json = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        openapi["paths"]["/metrics"]["get"]["security"][0]["bearer"],
        serde_json::json!(["metrics:read"])
    );
}

/// `spin.wasip2.toml` is `spin.toml` but for where its components come from: the same
/// routes, variables, stores, outbound hosts and guard, built with `--features wasip2` into a
/// target directory of their own.
#[test]
fn the_wasip2_manifest_is_spin_toml_built_on_spin_sdk_5() {
    let read = |name: &str| std::fs::read_to_string(repo_root().join(name)).unwrap();
    let (wasip3, wasip2) = (read("spin.toml"), read("spin.wasip2.toml"));
    let from = |text: &str, line: &str| -> String {
        let at = text.find(line).unwrap_or_else(|| panic!("no {line:?}"));
        text[at..].to_owned()
    };
    const FIRST: &str = "spin_manifest_version = 2\n";
    let expected = from(&wasip3, FIRST)
        .replace(
            "target/wasm32-wasip2/release/",
            "target/wasip2/wasm32-wasip2/release/",
        )
        .replace(
            "cargo build --target wasm32-wasip2 --release ",
            "cargo build --target wasm32-wasip2 --release --target-dir target/wasip2 \
             --no-default-features --features wasip2 ",
        );
    assert_eq!(from(&wasip2, FIRST), expected);
    // Every build command of each manifest builds its own kind.
    let commands = |text: &str| -> Vec<String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        table["component"]
            .as_table()
            .unwrap()
            .values()
            .map(|c| c["build"]["command"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(commands(&wasip3).len(), 5);
    assert!(commands(&wasip3).iter().all(|c| !c.contains("--features")));
    assert!(commands(&wasip2)
        .iter()
        .all(|c| c.contains("--no-default-features --features wasip2 ")));
}
