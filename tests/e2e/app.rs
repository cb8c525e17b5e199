//! `spawn_app()`: builds the components once per test run (as `spin build` would, through
//! the host's own `build`), then starts the app on port 0 with a fresh state directory, on
//! a [`Target`]: this project's host, or real Spin where `SPIN_BIN` names one. Both serve
//! the same wasm files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const HOST: &str = env!("CARGO_BIN_EXE_inventory-host");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The manifest of the build the tests that run on one build use (`Build::chosen`).
pub fn manifest() -> PathBuf {
    Build::chosen().manifest()
}

/// The compiled-component cache of test runs: under `target/`, never the user's own.
pub fn cache_dir() -> PathBuf {
    repo_root().join("target/test-compile-cache")
}

/// The runtime that serves a test's app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This project's host, `inventory-host up`.
    Host,
    /// Real Spin, `spin up`: the binary `SPIN_BIN` names.
    Spin,
}

/// A build of the app: a manifest and the wasm files it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `spin.toml`: the components on spin-sdk 7 (WASI 0.3, instances reused).
    Wasip3,
    /// `spin.wasip2.toml`: the same source on spin-sdk 5 (WASI 0.2, an instance a request).
    Wasip2,
}

impl Build {
    pub fn manifest(self) -> PathBuf {
        match self {
            Self::Wasip3 => repo_root().join("spin.toml"),
            Self::Wasip2 => repo_root().join("spin.wasip2.toml"),
        }
    }

    /// Where the build's components are (`source` and dependency paths).
    pub fn wasm_dir(self) -> PathBuf {
        match self {
            Self::Wasip3 => repo_root().join("target/wasm32-wasip2/release"),
            Self::Wasip2 => repo_root().join("target/wasip2/wasm32-wasip2/release"),
        }
    }

    /// The build the tests that run on one build use: `spin.toml`'s, or the WASI 0.2 one
    /// where `INVENTORY_E2E_BUILD=wasip2` (CI runs them on both).
    pub fn chosen() -> Self {
        match std::env::var("INVENTORY_E2E_BUILD").as_deref() {
            Ok("wasip2") => Self::Wasip2,
            Ok("wasip3") | Ok("") | Err(_) => Self::Wasip3,
            Ok(other) => panic!("INVENTORY_E2E_BUILD={other}: wasip3 or wasip2"),
        }
    }
}

/// What a test's app runs on: a runtime serving a build. The tests that speak only HTTP to
/// the app take one and run on each (`on_every_target!`); the rest run on the host alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub runtime: Runtime,
    pub build: Build,
}

impl Target {
    pub fn host() -> Self {
        Self {
            runtime: Runtime::Host,
            build: Build::chosen(),
        }
    }

    /// Runs `test` on this target, or, for Spin where `SPIN_BIN` is unset, skips it (the
    /// first skip says so on the terminal).
    pub fn run(self, test: fn(Self)) {
        if self.runtime == Runtime::Host || spin_bin().is_some() {
            test(self);
        }
    }

    pub fn manifest(self) -> PathBuf {
        self.build.manifest()
    }

    /// The app of this target's build, as the README starts it.
    pub fn spawn_app(self) -> TestApp {
        self.spawn_app_with(&[])
    }

    /// The app of this target's build, with more `up` arguments (`--variable`, `--sqlite`,
    /// `--state-dir`...: those both runtimes take).
    pub fn spawn_app_with(self, extra_args: &[&str]) -> TestApp {
        self.spawn_app_from(&self.manifest(), extra_args)
    }

    /// Another app (`manifest`) on this target's runtime.
    pub fn spawn_app_from(self, manifest: &Path, extra_args: &[&str]) -> TestApp {
        spawn(self.runtime, manifest, extra_args)
    }

    /// `spawn_app_with`, or what the runtime printed when it did not start (an address
    /// another process took first, say).
    pub fn try_spawn_app_with(self, extra_args: &[&str]) -> Result<TestApp, String> {
        try_spawn(self.runtime, &self.manifest(), extra_args)
    }
}

/// Runs each named test function (`fn(Target)`) on every target: `on_host::<name>` on this
/// project's host and `on_spin::<name>` on real Spin (`SPIN_BIN`), both serving the WASI 0.3
/// build (`spin.toml`), and `on_host_wasip2::<name>` and `on_spin_wasip2::<name>` serving the
/// WASI 0.2 one (`spin.wasip2.toml`). A function left out of the list is dead code, which the
/// lints refuse.
macro_rules! on_every_target {
    ($($test:ident),+ $(,)?) => {
        $crate::app::on_every_target!(@runtime on_host, Host, Wasip3; $($test),+);
        $crate::app::on_every_target!(@runtime on_spin, Spin, Wasip3; $($test),+);
        $crate::app::on_every_target!(@runtime on_host_wasip2, Host, Wasip2; $($test),+);
        $crate::app::on_every_target!(@runtime on_spin_wasip2, Spin, Wasip2; $($test),+);
    };
    (@runtime $module:ident, $runtime:ident, $build:ident; $($test:ident),+) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    $crate::app::Target {
                        runtime: $crate::app::Runtime::$runtime,
                        build: $crate::app::Build::$build,
                    }
                    .run(super::$test)
                }
            )+
        }
    };
}
pub(crate) use on_every_target;

/// The spin binary `SPIN_BIN` names (relative to the repository root, since cargo runs the
/// tests from their crate's folder), checked once: `None` when it is unset, which the first
/// caller reports. Set but not a runnable spin, every Spin test fails.
pub fn spin_bin() -> Option<&'static Path> {
    static SPIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    SPIN.get_or_init(|| {
        let Some(named) = std::env::var_os("SPIN_BIN").filter(|v| !v.is_empty()) else {
            // Straight to the terminal: libtest captures only what the print macros write.
            let _ = std::io::stderr().write_all(
                b"e2e: the Spin runs are skipped: SPIN_BIN is not set (SPIN_BIN=<path to spin> \
                  runs the API tests on real Spin too)\n",
            );
            return None;
        };
        let path = repo_root().join(&named);
        let version = Command::new(&path).arg("--version").output();
        match version {
            Ok(out) if out.status.success() && out.stdout.starts_with(b"spin ") => Some(path),
            Ok(out) => panic!(
                "SPIN_BIN={} is not a runnable spin: `--version` said {:?} {:?}",
                named.to_string_lossy(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => panic!(
                "SPIN_BIN={} is not a runnable spin: {err}",
                named.to_string_lossy()
            ),
        }
    })
    .as_deref()
}

/// Spin's compiled-module cache for test runs (a Wasmtime cache configuration naming a
/// folder under `target/`), so Spin, like the host, compiles each component once.
fn spin_cache_config() -> PathBuf {
    static CONFIG: OnceLock<PathBuf> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let dir = repo_root().join("target/test-spin-cache");
            std::fs::create_dir_all(&dir).expect("create the Spin cache folder");
            let config = dir.join("wasmtime-cache.toml");
            let dir = dir.canonicalize().expect("the Spin cache folder");
            std::fs::write(
                &config,
                format!("[cache]\ndirectory = {:?}\n", dir.join("modules")),
            )
            .expect("write the Spin cache configuration");
            config
        })
        .clone()
}

/// An address of this machine that is not loopback, so a client using it is "remote" to the
/// app: the source address of the route out (no packet is sent).
pub fn non_loopback_ip() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("203.0.113.1:9")
        .expect("this test needs a network interface with an address other than loopback");
    let ip = socket.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no non-loopback address: {ip}"
    );
    ip
}

/// Builds the wasm components of both builds once for the whole test run, one after the
/// other (never two cargo builds at once).
pub fn build_components() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        for build in [Build::Wasip3, Build::Wasip2] {
            let output = Command::new(HOST)
                .args(["build", "-f"])
                .arg(build.manifest())
                .output()
                .expect("run the host's build command");
            assert!(
                output.status.success(),
                "building the components of {build:?} failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    });
}

/// The manifest of the test fixture `tests/fixtures/<name>`, its components built once for
/// the whole test run (as `spin build` builds them, through the host's `build`).
pub fn built_fixture(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let manifest = repo_root().join(format!("tests/fixtures/{name}/spin.toml"));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let out = Command::new(HOST)
            .arg("build")
            .arg("-f")
            .arg(&manifest)
            .output()
            .expect("run the host's build command");
        assert!(
            out.status.success(),
            "building the fixture {name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        built.push(name.to_owned());
    }
    manifest
}

/// A running app. Killed when dropped.
pub struct TestApp {
    pub addr: String,
    /// Where the host serves its own metrics, when started with `--metrics-listen`.
    pub metrics_addr: Option<String>,
    /// The bearer token sent with every request that names no `authorization` of its own:
    /// every scope, subject `tester`, from the host's `token` command. `None` sends none.
    pub auth: Option<String>,
    child: Child,
    pub state_dir: tempfile::TempDir,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// The app on the host: for the tests of what only the host has.
pub fn spawn_app() -> TestApp {
    Target::host().spawn_app()
}

/// An app (`manifest`) on the host, with more `up` arguments.
pub fn spawn_app_with(manifest: &Path, extra_args: &[&str]) -> TestApp {
    Target::host().spawn_app_from(manifest, extra_args)
}

/// A token from the app's dev tool (`inventory-dev-token`) for `manifest`, with its
/// command-line `args` (`--sub`, `--scope`, the app's `--variable`s...).
pub fn cli_token(manifest: &Path, args: &[&str]) -> Result<String, String> {
    use clap::Parser;
    let argv = ["inventory-dev-token", "-f"]
        .into_iter()
        .map(std::ffi::OsString::from)
        .chain([manifest.as_os_str().to_owned()])
        .chain(args.iter().map(std::ffi::OsString::from));
    let args = inventory_dev_token::TokenArgs::try_parse_from(argv).map_err(|e| e.to_string())?;
    inventory_dev_token::sign(&args).map_err(|err| format!("{err:#}"))
}

/// `up` on `runtime`: port 0 and a fresh state directory unless `extra_args` name their own.
fn spawn(runtime: Runtime, manifest: &Path, extra_args: &[&str]) -> TestApp {
    try_spawn(runtime, manifest, extra_args)
        .unwrap_or_else(|stderr| panic!("{runtime:?} did not start:\n{stderr}"))
}

fn try_spawn(runtime: Runtime, manifest: &Path, extra_args: &[&str]) -> Result<TestApp, String> {
    build_components();
    let variables: Vec<&str> = extra_args
        .windows(2)
        .filter(|w| w[0] == "--variable")
        .flat_map(|w| w.iter().copied())
        .collect();
    let mut token_args = vec!["--sub", "tester"];
    token_args.extend(variables);
    let auth = cli_token(manifest, &token_args).ok();
    let state_dir = tempfile::tempdir().expect("temp dir");
    let mut command = match runtime {
        Runtime::Host => {
            let mut command = Command::new(HOST);
            command.arg("up").arg("-f").arg(manifest);
            command.arg("--cache-dir").arg(cache_dir());
            command
        }
        Runtime::Spin => {
            let spin = spin_bin().expect("a Spin test runs only where SPIN_BIN is set");
            let mut command = Command::new(spin);
            command.arg("up").arg("-f").arg(manifest);
            command.arg("--cache").arg(spin_cache_config());
            command
        }
    };
    // A test may name its own address, for apps that must know each other's.
    if !extra_args.contains(&"--listen") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    // A test may name its own state directory, to restart an app on the same state.
    if !extra_args.contains(&"--state-dir") {
        command.arg("--state-dir").arg(state_dir.path());
    }
    // A group of its own: `spin up` serves from a child process (`spin trigger http`), and
    // the whole group is what a test stops.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .args(extra_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {runtime:?}: {err}"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut addr = None;
    let mut metrics_addr = None;
    for line in lines.by_ref() {
        let line = line.expect("read the app's stdout");
        if let Some(rest) = line.strip_prefix("Serving metrics on http://") {
            metrics_addr = rest.trim().strip_suffix("/metrics").map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("Serving http://") {
            addr = Some(rest.trim().to_owned());
        }
        if line.starts_with("Available Routes:") {
            break;
        }
    }
    let Some(addr) = addr else {
        let _ = child.wait();
        let stderr = stderr.lock().unwrap().clone();
        return Err(stderr);
    };
    let stdout = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stdout);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut out = sink.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
    Ok(TestApp {
        addr,
        metrics_addr,
        auth,
        child,
        state_dir,
        stdout,
        stderr,
    })
}

fn drain(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&buffer);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut out = sink.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
    buffer
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts a problem+json response with this status and slug, and returns its body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, slug: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(
            body["type"],
            format!("https://inventory.example/problems/{slug}"),
            "{body}"
        );
        assert_eq!(body["status"], status);
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        assert_eq!(
            body["request_id"].as_str(),
            self.header("x-request-id"),
            "{body}"
        );
        body
    }
}

impl TestResponse {
    /// Asserts a 422 `validation` problem and returns the fields its `errors` name, in order.
    #[track_caller]
    pub fn validation_fields(&self) -> Vec<String> {
        let body = self.assert_problem(422, "validation");
        body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {body}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl TestApp {
    /// Sends a request with the given headers and body over a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> TestResponse {
        self.request_to(&self.addr, method, path, headers, body)
    }

    /// `request`, to another address of the app (it listens on several).
    pub fn request_to(
        &self,
        addr: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> TestResponse {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let names_auth = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if let (false, Some(token)) = (names_auth, &self.auth) {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .build()
            .into();
        let mut response = match body {
            Some(body) => agent.run(builder.body(body.to_vec()).expect("request")),
            None => agent.run(builder.body(()).expect("request")),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .expect("read body");
        TestResponse {
            status: response.status().as_u16(),
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str) -> TestResponse {
        self.request("GET", path, &[], None)
    }

    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> TestResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request(
            method,
            path,
            &[("content-type", "application/json")],
            Some(&bytes),
        )
    }

    pub fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send_json("POST", path, body)
    }

    /// Creates a product and returns its JSON.
    pub fn create_product(&self, body: &Value) -> Value {
        let response = self.post_json("/product", body);
        assert_eq!(
            response.status,
            201,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        response.json()
    }

    /// Sends raw bytes and returns the raw response head and body, for requests a client
    /// library would refuse to send.
    pub fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request).expect("write");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The access-log lines printed so far, parsed. Waits briefly for the line of the last
    /// request to arrive. Both runtimes copy the components' output to their stderr.
    pub fn access_log(&self, at_least: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<Value> = self
                .stderr
                .lock()
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if lines.len() >= at_least || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Sends `signal` (`TERM`, `KILL`...) to every process of the app: the runtime and any
    /// process it serves from.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([
                &format!("-{signal}"),
                "--",
                &format!("-{}", self.child.id()),
            ])
            .stderr(Stdio::null())
            .status();
    }

    /// Waits for every process of the app to exit and returns the runtime's exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let mut code = None;
        while Instant::now() < deadline {
            if code.is_none() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    code = Some(status.code());
                }
            }
            let group_alive = Command::new("kill")
                .args(["-0", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if let (Some(code), false) = (code, group_alive) {
                return code;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
