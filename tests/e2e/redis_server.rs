//! A real Redis for the tests: Debian's `redis-server`, started on a free loopback port in a
//! temporary directory, nothing persisted, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            child: spawn(port, dir.path()),
            url: format!("redis://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// Kills the server: what clients see when Redis goes down.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new server on the same port, empty (as a restarted Redis without persistence).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        self.child = spawn(port, self._dir.path());
    }
}

/// Starts `redis-server` on `port` and waits until it listens.
fn spawn(port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--port", &port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("this test needs redis-server (Debian: apt-get install redis-server): {err}")
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
