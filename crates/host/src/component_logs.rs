//! The components' stdout and stderr, where `spin up` puts them: copied to the host's
//! stderr for the components it follows (every one by default; `--follow ID` names some,
//! `--quiet` none), and appended to `<component>_stdout.txt` and `<component>_stderr.txt`
//! in the log directory (`--log-dir`, else the runtime config's `log_dir`, else
//! `<state dir>/logs`; `""`: no files).
//!
//! Written in batches: a guest's write is appended, whole, to a buffer per destination, and
//! a thread of its own writes each buffer out every `FLUSH_EVERY` (and at exit), so a
//! thousand access-log lines cost a few `write`s rather than a thousand (a line per request,
//! each its own `write`, cost a sixth of the host's time under load). What one guest write
//! holds stays together and in order; a `kill -9` may lose the last `FLUSH_EVERY`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How long output may wait in a buffer before it is written out.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Output buffered past this is written out at once, by the guest's own write.
const MAX_BUFFERED: usize = 256 * 1024;

/// Which components' output is copied to the host's stderr (`spin up --follow`, `--quiet`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Follow {
    #[default]
    All,
    Named(Vec<String>),
    None,
}

impl Follow {
    fn follows(&self, component: &str) -> bool {
        match self {
            Self::All => true,
            Self::Named(ids) => ids.iter().any(|id| id == component),
            Self::None => false,
        }
    }
}

/// Where the app's components log: `dir` resolved as `spin up` resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentLogs {
    pub dir: Option<PathBuf>,
    pub follow: Follow,
}

impl ComponentLogs {
    /// Makes the log directory; says where it is, as `spin up` does, on a first load.
    pub fn prepare(&self, announce: bool) -> Result<()> {
        if let Some(dir) = &self.dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
            if announce {
                eprintln!(
                    "Logging component stdio to {:?}",
                    format!("{}/", dir.display())
                );
            }
        }
        Ok(())
    }

    /// The stdout and stderr of component `id`'s instances.
    pub fn streams(&self, id: &str) -> Result<(GuestOutput, GuestOutput)> {
        let terminal = self.follow.follows(id);
        let open = |suffix: &str| -> Result<Option<Arc<Sink>>> {
            let Some(dir) = &self.dir else {
                return Ok(None);
            };
            Ok(Some(Sink::file(&dir.join(format!("{id}_{suffix}.txt")))?))
        };
        Ok((
            GuestOutput {
                terminal,
                file: open("stdout")?,
            },
            GuestOutput {
                terminal,
                file: open("stderr")?,
            },
        ))
    }
}

/// One stream of a component's instances (its stdout, or its stderr).
#[derive(Clone)]
pub struct GuestOutput {
    terminal: bool,
    file: Option<Arc<Sink>>,
}

impl GuestOutput {
    fn append(&self, bytes: &[u8]) {
        if self.terminal {
            TERMINAL.append(bytes);
        }
        if let Some(file) = &self.file {
            file.append(bytes);
        }
    }
}

/// A destination, and what is waiting to be written to it.
struct Sink {
    pending: Mutex<Vec<u8>>,
    out: Mutex<Box<dyn Write + Send>>,
}

/// The host's stderr.
static TERMINAL: LazyLock<Arc<Sink>> = LazyLock::new(|| {
    let sink = Arc::new(Sink {
        pending: Mutex::new(Vec::new()),
        out: Mutex::new(Box::new(std::io::stderr())),
    });
    let writer = Arc::downgrade(&sink);
    let spawned = std::thread::Builder::new()
        .name("guest-output".into())
        .spawn(move || loop {
            std::thread::sleep(FLUSH_EVERY);
            if let Some(terminal) = writer.upgrade() {
                terminal.write_out();
            }
            write_out_files();
        });
    if let Err(err) = spawned {
        eprintln!("warning: guest output is written only when a buffer fills: {err}");
    }
    sink
});

/// The log files open now, which the writer thread writes out.
static FILES: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

impl Sink {
    fn file(path: &Path) -> Result<Arc<Self>> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the log file {}", path.display()))?;
        let sink = Arc::new(Self {
            pending: Mutex::new(Vec::new()),
            out: Mutex::new(Box::new(file)),
        });
        let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
        files.retain(|file| file.strong_count() > 0);
        files.push(Arc::downgrade(&sink));
        // The writer thread starts with the terminal's buffer.
        LazyLock::force(&TERMINAL);
        Ok(sink)
    }

    fn append(&self, bytes: &[u8]) {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend_from_slice(bytes);
            pending.len() >= MAX_BUFFERED
        };
        if full {
            self.write_out();
        }
    }

    fn write_out(&self) {
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.is_empty() {
                return;
            }
            std::mem::take(&mut *pending)
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(&batch);
        let _ = out.flush();
    }
}

fn write_out_files() {
    let files: Vec<Arc<Sink>> = FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for file in files {
        file.write_out();
    }
}

/// Writes out everything the guests wrote so far (at exit).
pub fn flush() {
    TERMINAL.write_out();
    write_out_files();
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    /// The bytes are the host's from here on: nothing a guest could wait for.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_BUFFERED)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_logs_to_its_two_files_in_the_log_directory() {
        let dir = tempfile::tempdir().unwrap();
        let logs = ComponentLogs {
            dir: Some(dir.path().to_owned()),
            follow: Follow::None,
        };
        logs.prepare(false).unwrap();
        let (mut stdout, mut stderr) = logs.streams("products").unwrap();
        OutputStream::write(&mut stdout, Bytes::from_static(b"one\n")).unwrap();
        OutputStream::write(&mut stderr, Bytes::from_static(b"two\n")).unwrap();
        OutputStream::write(&mut stdout, Bytes::from_static(b"three\n")).unwrap();
        flush();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("products_stdout.txt"), "one\nthree\n");
        assert_eq!(read("products_stderr.txt"), "two\n");
    }

    #[test]
    fn only_the_components_followed_reach_the_terminal() {
        assert!(Follow::All.follows("a"));
        assert!(Follow::Named(vec!["a".into()]).follows("a"));
        assert!(!Follow::Named(vec!["a".into()]).follows("b"));
        assert!(!Follow::None.follows("a"));
    }
}
