//! A real HTTP server on loopback that receives webhooks, for the event tests: it records
//! every request it gets, and answers as a test tells it (fail a few times, fail always,
//! never answer).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request as it arrived, and what it was answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When it was answered (just before the answer was written).
    pub at: Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub answered: u16,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn id(&self) -> &str {
        self.header("webhook-id").unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the event body is JSON")
    }

    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.answered)
    }

    /// Verifies the Standard Webhooks signature with the `standardwebhooks` crate.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &self.headers {
            let name = http::HeaderName::try_from(name.as_str()).map_err(|e| e.to_string())?;
            let value = http::HeaderValue::try_from(value.as_str()).map_err(|e| e.to_string())?;
            headers.append(name, value);
        }
        standardwebhooks::Webhook::new(secret)
            .map_err(|e| e.to_string())?
            .verify(&self.body, &headers)
            .map_err(|e| e.to_string())
    }
}

/// How the receiver answers the next requests.
#[derive(Debug, Clone)]
struct Behaviour {
    /// Statuses for the next requests, in order; then `otherwise`.
    next: Vec<u16>,
    otherwise: u16,
    /// Read the request, then never answer (until the connection is dropped).
    hang: bool,
    /// How long to take over each answer.
    delay: Duration,
}

#[derive(Default)]
struct Log {
    deliveries: Vec<Delivery>,
    /// Requests read, answered or not.
    arrivals: usize,
}

pub struct Receiver {
    pub ip: std::net::IpAddr,
    pub port: u16,
    behaviour: Arc<Mutex<Behaviour>>,
    log: Arc<(Mutex<Log>, Condvar)>,
}

impl Receiver {
    /// Listens on a free loopback port and answers 204 until told otherwise.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1".parse().unwrap())
    }

    /// Listens on a free port of `ip`.
    pub fn start_on(ip: std::net::IpAddr) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let behaviour = Arc::new(Mutex::new(Behaviour {
            next: Vec::new(),
            otherwise: 204,
            hang: false,
            delay: Duration::ZERO,
        }));
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let (b, l) = (Arc::clone(&behaviour), Arc::clone(&log));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (b, l) = (Arc::clone(&b), Arc::clone(&l));
                std::thread::spawn(move || serve(stream, &b, &l));
            }
        });
        Self {
            ip,
            port,
            behaviour,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.port)
    }

    /// The next `count` requests are answered `status`.
    pub fn fail_next(&self, count: usize, status: u16) {
        self.behaviour.lock().unwrap().next = vec![status; count];
    }

    /// Every request from now on is answered `status`.
    pub fn answer_always(&self, status: u16) {
        let mut b = self.behaviour.lock().unwrap();
        b.next.clear();
        b.otherwise = status;
    }

    /// Requests read so far, answered or not.
    pub fn arrivals(&self) -> usize {
        self.log.0.lock().unwrap().arrivals
    }

    pub fn set_hang(&self, hang: bool) {
        self.behaviour.lock().unwrap().hang = hang;
    }

    /// Every answer from now on takes `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay = delay;
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.0.lock().unwrap().deliveries.clone()
    }

    /// The successful deliveries, once `done` holds for them, or panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.log;
        let mut log = lock.lock().unwrap();
        loop {
            let ok: Vec<Delivery> = log
                .deliveries
                .iter()
                .filter(|d| d.succeeded())
                .cloned()
                .collect();
            if done(&ok) {
                return ok;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "the receiver did not get what was expected within {timeout:?}; it got {:#?}",
                    log.deliveries
                        .iter()
                        .map(|d| (
                            d.answered,
                            d.id().to_owned(),
                            String::from_utf8_lossy(&d.body).into_owned()
                        ))
                        .collect::<Vec<_>>()
                );
            }
            log = ready.wait_timeout(log, deadline - now).unwrap().0;
        }
    }

    /// The successful deliveries' bodies, once there are at least `count`.
    pub fn wait_for_events(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        self.wait_for(timeout, |ok| distinct_ids(ok) >= count)
    }
}

/// How many different events (`webhook-id`) arrived.
pub fn distinct_ids(deliveries: &[Delivery]) -> usize {
    let mut ids: Vec<&str> = deliveries.iter().map(Delivery::id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

fn serve(stream: TcpStream, behaviour: &Mutex<Behaviour>, log: &(Mutex<Log>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        match read_chunked(&mut reader) {
            Some(body) => body,
            None => return,
        }
    } else {
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        body
    };
    {
        let (lock, ready) = log;
        lock.lock().unwrap().arrivals += 1;
        ready.notify_all();
    }
    let (status, hang, delay) = {
        let mut b = behaviour.lock().unwrap();
        let status = if b.next.is_empty() {
            b.otherwise
        } else {
            b.next.remove(0)
        };
        (status, b.hang, b.delay)
    };
    std::thread::sleep(delay);
    if hang {
        // Hold the connection open and say nothing, until the other side gives up.
        let _ = reader.read_to_end(&mut Vec::new());
        return;
    }
    // Recorded before it is answered: once answered, the sender may send the next event at
    // once, on another connection whose thread must not record it first.
    let (lock, ready) = log;
    lock.lock().unwrap().deliveries.push(Delivery {
        at: Instant::now(),
        path,
        headers,
        body,
        answered: status,
    });
    ready.notify_all();
    let mut stream = stream;
    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(answer.as_bytes());
}

/// A chunked request body (RFC 9112, 7.1), without trailers.
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
