//! The `redis` key-value backend (`[key_value_store.<label>] type = "redis"`), with Spin's
//! semantics: a label is the server's whole keyspace (labels on one URL share it, as on
//! Spin), `increment` is `INCRBY` (atomic on the server, so counters stay exact however many
//! host processes share it). A compare-and-swap applies only if the key still holds the value
//! read, checked and set in one Lua script on the server; Spin's Redis store fails the swap
//! on any write in between (`WATCH`), so where another writer puts back the same value, the
//! swap succeeds here and fails there. Both are atomic; the guard only increments.
//!
//! Calls are synchronous and run on the blocking pool; connections are pooled. After a
//! failure the idle ones are dropped too (a restarted server has closed them all), and a
//! call that is safe to repeat (not `INCRBY` nor a swap, which may have applied) is tried
//! once more on a fresh connection, so a restarted server costs no failed reads.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{Backend, KvError, KvResult};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A command that takes longer fails rather than holding a blocking thread.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 32;
/// Keys fetched per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// `KEYS[1]` = key; `ARGV[1]` = "1" if a value is expected ("0": absence is), `ARGV[2]` the
/// expected value, `ARGV[3]` the new one. Returns `{1, false}` when swapped, else `{0,
/// current}`.
const COMPARE_AND_SWAP: &str = r"
local current = redis.call('GET', KEYS[1])
local expected
if ARGV[1] == '1' then expected = ARGV[2] else expected = false end
if current == expected then
    redis.call('SET', KEYS[1], ARGV[3])
    return {1, false}
end
return {0, current}
";

pub struct RedisKeyValue {
    client: redis::Client,
    /// `host:port` or the socket path: for messages, never the URL (it may hold a password).
    address: String,
    idle: Mutex<Vec<redis::Connection>>,
}

impl RedisKeyValue {
    /// Checks a URL as the runtime config gives it, without connecting.
    pub fn check_url(url: &str) -> Result<()> {
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        match scheme {
            "redis" | "redis+unix" | "unix" => {}
            "rediss" => bail!(
                "`{}`: TLS to Redis (`rediss://`) is not built into this host; reach the \
                 server over `redis://` (a local network or a tunnel) or use `spin up`",
                redact(url)
            ),
            _ => bail!(
                "`{}` is not a Redis URL (`redis://host:port[/db]` or `redis+unix:///path`)",
                redact(url)
            ),
        }
        redis::Client::open(url)
            .map(drop)
            .with_context(|| format!("`{}` is not a valid Redis URL", redact(url)))
    }

    /// A backend for the server at `url`. Connects on first use.
    pub fn new(url: &str) -> Result<Self> {
        Self::check_url(url)?;
        let client = redis::Client::open(url)
            .with_context(|| format!("`{}` is not a valid Redis URL", redact(url)))?;
        let address = client.get_connection_info().addr().to_string();
        Ok(Self {
            client,
            address,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `Redis at 127.0.0.1:6379`, as Spin summarises it.
    pub fn summary(&self) -> String {
        format!("Redis at {}", self.address)
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection; a connection that failed is not reused. With
    /// `repeatable`, a failure on a pooled connection is tried again on a fresh one.
    fn with<T>(
        &self,
        what: &str,
        repeatable: bool,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> KvResult<T> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let fresh = pooled.is_none();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect().map_err(|err| self.error(what, &err))?,
        };
        match f(&mut conn) {
            Ok(value) => {
                self.put_back(conn);
                Ok(value)
            }
            // An error the server answered (a wrong type, say) leaves the connection usable.
            Err(err) if matches!(err.kind(), redis::ErrorKind::Server(_)) => {
                self.put_back(conn);
                Err(self.error(what, &err))
            }
            // Anything else: the connection may be mid-reply or gone, and so may the others.
            Err(err) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.clear();
                }
                if fresh || !repeatable {
                    return Err(self.error(what, &err));
                }
                let mut conn = self.connect().map_err(|err| self.error(what, &err))?;
                let value = f(&mut conn).map_err(|err| self.error(what, &err))?;
                self.put_back(conn);
                Ok(value)
            }
        }
    }

    fn put_back(&self, conn: redis::Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }

    fn error(&self, what: &str, err: &redis::RedisError) -> KvError {
        KvError::Other(format!("{what} on Redis at {}: {err}", self.address))
    }
}

impl Backend for RedisKeyValue {
    fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.with("GET", true, |conn| redis::cmd("GET").arg(key).query(conn))
    }

    fn set(&self, key: &str, value: &[u8]) -> KvResult<()> {
        self.with("SET", true, |conn| {
            redis::cmd("SET").arg(key).arg(value).query(conn)
        })
    }

    fn delete(&self, key: &str) -> KvResult<()> {
        self.with("DEL", true, |conn| {
            redis::cmd("DEL").arg(key).query::<i64>(conn).map(drop)
        })
    }

    fn exists(&self, key: &str) -> KvResult<bool> {
        self.with("EXISTS", true, |conn| {
            redis::cmd("EXISTS").arg(key).query(conn)
        })
    }

    fn keys(&self) -> KvResult<Vec<String>> {
        self.with("SCAN", true, |conn| {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query(conn)?;
                keys.extend(batch);
                if next == 0 {
                    // SCAN may return a key twice (while the server rehashes, say).
                    keys.sort_unstable();
                    keys.dedup();
                    return Ok(keys);
                }
                cursor = next;
            }
        })
    }

    fn increment(&self, key: &str, delta: i64) -> KvResult<i64> {
        self.with("INCRBY", false, |conn| {
            redis::cmd("INCRBY").arg(key).arg(delta).query(conn)
        })
    }

    fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> KvResult<Result<(), Option<Vec<u8>>>> {
        let (swapped, current): (i64, Option<Vec<u8>>) =
            self.with("compare-and-swap", false, |conn| {
                redis::cmd("EVAL")
                    .arg(COMPARE_AND_SWAP)
                    .arg(1)
                    .arg(key)
                    .arg(if expected.is_some() { "1" } else { "0" })
                    .arg(expected.unwrap_or_default())
                    .arg(value)
                    .query(conn)
            })?;
        Ok(if swapped == 1 { Ok(()) } else { Err(current) })
    }
}

/// A URL with any password replaced, for messages: the user info, and the query string
/// (`redis+unix:///s.sock?pass=...`).
fn redact(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, _)) => (url, "?***"),
        None => (url, ""),
    };
    let url = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    format!("{url}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    /// A real `redis-server` (Debian's `redis-server` package) on a free loopback port,
    /// killed when dropped.
    struct Server {
        child: Child,
        url: String,
        _dir: tempfile::TempDir,
    }

    impl Server {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            Self {
                child: Self::spawn(port, dir.path()),
                url: format!("redis://127.0.0.1:{port}"),
                _dir: dir,
            }
        }

        /// Kills the server (if it runs) and starts a new, empty one on `port`.
        fn restart(&mut self, port: u16) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.child = Self::spawn(port, self._dir.path());
        }

        /// Starts `redis-server` on `port` and waits until it answers a client of its own.
        fn spawn(port: u16, dir: &std::path::Path) -> Child {
            let mut child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--port", &port.to_string()])
                .current_dir(dir)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| {
                    panic!("these tests need redis-server (apt-get install redis-server): {err}")
                });
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            for _ in 0..200 {
                if let Ok(mut conn) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                        return child;
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-server did not answer on port {port}");
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn the_backend_keeps_spins_semantics() {
        let server = Server::start();
        let kv = RedisKeyValue::new(&server.url).unwrap();
        assert_eq!(kv.get("k").unwrap(), None);
        kv.set("k", b"v").unwrap();
        assert_eq!(kv.get("k").unwrap(), Some(b"v".to_vec()));
        assert!(kv.exists("k").unwrap());
        assert_eq!(kv.increment("n", 5).unwrap(), 5);
        assert_eq!(kv.increment("n", -2).unwrap(), 3);
        let mut keys = kv.keys().unwrap();
        keys.sort();
        assert_eq!(keys, ["k", "n"]);
        // A counter is INCRBY's text on Redis, as on Spin's Redis store.
        assert_eq!(kv.get("n").unwrap(), Some(b"3".to_vec()));
        // Incrementing a value that is not a counter is an error, and the pool goes on.
        assert!(kv.increment("k", 1).is_err());
        kv.delete("k").unwrap();
        kv.delete("k").unwrap();
        assert!(!kv.exists("k").unwrap());
    }

    #[test]
    fn compare_and_swap_applies_only_to_the_value_read() {
        let server = Server::start();
        let kv = RedisKeyValue::new(&server.url).unwrap();
        assert_eq!(kv.swap("c", None, b"1").unwrap(), Ok(()));
        assert_eq!(kv.swap("c", None, b"2").unwrap(), Err(Some(b"1".to_vec())));
        assert_eq!(
            kv.swap("c", Some(b"0"), b"2").unwrap(),
            Err(Some(b"1".to_vec()))
        );
        assert_eq!(kv.swap("c", Some(b"1"), b"2").unwrap(), Ok(()));
        kv.delete("c").unwrap();
        assert_eq!(kv.swap("c", Some(b"2"), b"3").unwrap(), Err(None));
    }

    #[test]
    fn concurrent_increments_are_exact_and_a_restarted_server_is_picked_up() {
        let mut server = Server::start();
        let kv = std::sync::Arc::new(RedisKeyValue::new(&server.url).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let kv = std::sync::Arc::clone(&kv);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        kv.increment("hits", 1).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(kv.increment("hits", 0).unwrap(), 2000);
        // A restart closes every pooled connection: the next read is tried again on a fresh
        // one, and the stale ones are dropped, so nothing fails.
        let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
        server.restart(port);
        assert_eq!(kv.get("hits").unwrap(), None, "a fresh server, no data");
        assert_eq!(kv.increment("hits", 1).unwrap(), 1);
        // While it is down, calls fail naming the server; then they work again.
        let _ = server.child.kill();
        let _ = server.child.wait();
        let err = kv.get("hits").unwrap_err();
        assert!(
            matches!(&err, KvError::Other(m) if m.contains("127.0.0.1")),
            "{err:?}"
        );
        server.restart(port);
        assert_eq!(kv.increment("hits", 2).unwrap(), 2);
    }

    #[test]
    fn urls_are_checked_without_connecting() {
        assert!(RedisKeyValue::check_url("redis://127.0.0.1:6379").is_ok());
        assert!(RedisKeyValue::check_url("redis://:pw@cache:6380/3").is_ok());
        assert!(RedisKeyValue::check_url("redis+unix:///run/redis.sock").is_ok());
        let tls = RedisKeyValue::check_url("rediss://user:secret@cache:6380")
            .unwrap_err()
            .to_string();
        assert!(tls.contains("TLS") && !tls.contains("secret"), "{tls}");
        assert!(RedisKeyValue::check_url("http://cache").is_err());
    }

    #[test]
    fn messages_never_show_a_password() {
        assert_eq!(
            redact("redis://:hunter2@cache:6379/0"),
            "redis://***@cache:6379/0"
        );
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact("redis://u:p@ss@cache"), "redis://***@cache");
        assert_eq!(
            redact("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
            "redis+unix:///run/redis.sock?***"
        );
    }
}
