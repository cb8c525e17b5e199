//! The open connections, bounded. At the cap the oldest connection that is not serving a
//! request is closed to make room: idle keep-alive connections, and connections that never
//! sent a whole request head, cannot crowd out real clients. Only when every connection is
//! busy do new ones wait in the listen backlog. A request being served always finishes
//! first.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};

/// The connections of a server.
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    open: Mutex<BTreeMap<u64, Entry>>,
    next_id: AtomicUsize,
    /// Set once, when the server stops: every connection closes gracefully.
    stopping: watch::Sender<bool>,
}

struct Entry {
    busy: Arc<AtomicUsize>,
    close: Option<oneshot::Sender<()>>,
}

/// One open connection: its slot, and what tells it to close.
pub struct Admitted {
    id: u64,
    _slot: OwnedSemaphorePermit,
    /// Requests this connection is serving.
    pub busy: Arc<AtomicUsize>,
    close: oneshot::Receiver<()>,
    stopping: watch::Receiver<bool>,
}

impl Connections {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicUsize::new(0),
            stopping: watch::channel(false).0,
        })
    }

    /// A slot for the next connection. At the cap the oldest idle connection is told to
    /// close; if every connection is busy, this waits for one to end.
    pub async fn slot(self: &Arc<Self>) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(slot);
        }
        if !self.evict_oldest_idle() {
            eprintln!(
                "{} connections are open and busy, the most allowed (--max-connections): new \
                 ones wait until one closes",
                self.max
            );
        }
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// Registers an accepted connection holding `slot`.
    pub fn admit(self: &Arc<Self>, slot: OwnedSemaphorePermit) -> Admitted {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        let busy = Arc::new(AtomicUsize::new(0));
        let (close_tx, close_rx) = oneshot::channel();
        if let Ok(mut open) = self.open.lock() {
            open.insert(
                id,
                Entry {
                    busy: Arc::clone(&busy),
                    close: Some(close_tx),
                },
            );
        }
        Admitted {
            id,
            _slot: slot,
            busy,
            close: close_rx,
            stopping: self.stopping.subscribe(),
        }
    }

    /// Tells the oldest connection serving no request to close. `false` if there is none.
    fn evict_oldest_idle(&self) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let victim = open
            .iter_mut()
            .find(|(_, e)| e.close.is_some() && e.busy.load(Ordering::Acquire) == 0);
        match victim.and_then(|(_, e)| e.close.take()) {
            Some(close) => {
                let _ = close.send(());
                crate::metrics::get().connection_evicted();
                true
            }
            None => false,
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// Closes every connection gracefully and waits up to `timeout` for them to end.
    /// `false` if some did not.
    pub async fn close_all(&self, timeout: Duration) -> bool {
        let _ = self.stopping.send(true);
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        tokio::time::timeout(timeout, self.slots.acquire_many(all))
            .await
            .is_ok()
    }
}

/// What a connection's serving future must offer to be closed gracefully.
pub trait GracefulConnection: Future {
    fn close_gracefully(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn close_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl Admitted {
    /// Serves `conn` until it ends. When it is evicted or the server stops, a connection
    /// serving no request is dropped at once (at most an unfinished request head is lost:
    /// hyper would otherwise keep it until its head timeout), and one serving a request is
    /// closed gracefully, after its response. `None` if it was dropped. The slot is given
    /// back when this returns.
    pub async fn serve<C: GracefulConnection>(
        mut self,
        connections: Arc<Connections>,
        conn: C,
    ) -> Option<C::Output> {
        tokio::pin!(conn);
        let output = tokio::select! {
            output = &mut conn => Some(output),
            () = close_signal(&mut self.close, &mut self.stopping) => {
                if self.busy.load(Ordering::Acquire) == 0 {
                    None
                } else {
                    conn.as_mut().close_gracefully();
                    Some(conn.await)
                }
            }
        };
        connections.forget(self.id);
        output
    }
}

/// Resolves when the connection is evicted or the server stops.
async fn close_signal(close: &mut oneshot::Receiver<()>, stopping: &mut watch::Receiver<bool>) {
    tokio::select! {
        Ok(()) = close => {}
        () = stopped(stopping) => {}
        else => std::future::pending().await,
    }
}

/// Resolves once the server is stopping (never, if it outlives this connection).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        if stopping.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_is_asked_to_close() {
        let connections = Connections::new(2);
        let first = connections.admit(connections.slot().await.unwrap());
        let mut second = connections.admit(connections.slot().await.unwrap());
        second.busy.store(1, Ordering::Release);
        // Both slots taken: the idle first one is evicted, the busy second one kept.
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.slot().await.is_some() }
        });
        let mut first_close = first.close;
        tokio::time::timeout(Duration::from_secs(1), &mut first_close)
            .await
            .unwrap()
            .unwrap();
        assert!(second.close.try_recv().is_err());
        drop(first._slot);
        assert!(waiting.await.unwrap());
    }
}
