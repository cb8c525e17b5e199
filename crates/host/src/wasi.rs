//! WASI 0.2 (`wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`, ...), as Spin's
//! `factor-wasi` gives it to a component: its `environment` from the manifest, the host's
//! stdout and stderr (the access log is the guest's stdout), and the instance's WASI
//! resource table, which `wasi:http` shares (`outbound_http`).
//!
//! The guests' stdout is written out in batches (`GuestStdout`): a line per request, each
//! its own `write` to the pipe, cost a sixth of the host's time under load.

use std::io::Write;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiView};

use crate::factor::{AppContext, ComponentContext, Factor, InstanceContext};

pub struct WasiFactor;

/// A component's environment variables.
pub struct ComponentState {
    environment: Vec<(String, String)>,
}

pub struct InstanceState {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl Factor for WasiFactor {
    type AppState = ();
    type ComponentState = ComponentState;
    type InstanceState = InstanceState;

    fn configure_app(_ctx: &AppContext<'_>, _previous: Option<&()>) -> Result<()> {
        Ok(())
    }

    fn configure_component(_app: &(), ctx: &ComponentContext<'_>) -> Result<ComponentState> {
        Ok(ComponentState {
            environment: ctx.component.environment.clone().into_iter().collect(),
        })
    }

    fn instance(component: &ComponentState, _ctx: &InstanceContext) -> InstanceState {
        InstanceState {
            ctx: WasiCtx::builder()
                .stdout(GuestStdout)
                .inherit_stderr()
                .envs(&component.environment)
                .build(),
            table: ResourceTable::new(),
        }
    }
}

/// Links WASI 0.2 for a store whose data is a `WasiView` (which projects to this state).
pub fn add_to_linker<T: WasiView + Send + 'static>(
    linker: &mut Linker<T>,
    _get: fn(&mut T) -> &mut InstanceState,
) -> Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker).map_err(anyhow::Error::from)
}

/// How long guest output may wait in the buffer before it is written out.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Output buffered past this is written out at once, by the guest's own write.
const MAX_BUFFERED: usize = 256 * 1024;

/// Every instance's stdout: its writes are appended, whole, to one buffer, which a thread of
/// its own writes to the host's stdout every `FLUSH_EVERY` (and `flush_guest_stdout` at
/// exit), so a thousand log lines cost a few `write`s rather than a thousand. What one
/// guest write holds stays together and in order; a `kill -9` may lose the last
/// `FLUSH_EVERY` of output.
pub struct GuestStdout;

struct Buffer {
    pending: Mutex<Vec<u8>>,
}

static BUFFER: LazyLock<&'static Buffer> = LazyLock::new(|| {
    let buffer: &'static Buffer = Box::leak(Box::new(Buffer {
        pending: Mutex::new(Vec::new()),
    }));
    let spawned = std::thread::Builder::new()
        .name("guest-stdout".into())
        .spawn(move || loop {
            std::thread::sleep(FLUSH_EVERY);
            write_out(buffer);
        });
    if let Err(err) = spawned {
        eprintln!("warning: guest output is written as it comes: {err}");
    }
    buffer
});

/// Writes out what the guests wrote so far.
fn write_out(buffer: &Buffer) {
    let batch = {
        let mut pending = buffer.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() {
            return;
        }
        std::mem::take(&mut *pending)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&batch);
    let _ = stdout.flush();
}

/// Writes out the guests' buffered output now (at exit).
pub fn flush_guest_stdout() {
    write_out(&BUFFER);
}

fn append(bytes: &[u8]) {
    let buffer: &Buffer = &BUFFER;
    let full = {
        let mut pending = buffer.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(bytes);
        pending.len() >= MAX_BUFFERED
    };
    if full {
        write_out(buffer);
    }
}

impl IsTerminal for GuestStdout {
    fn is_terminal(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    }
}

impl StdoutStream for GuestStdout {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestStdout)
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestStdout)
    }
}

impl OutputStream for GuestStdout {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        append(&bytes);
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
impl Pollable for GuestStdout {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestStdout {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
