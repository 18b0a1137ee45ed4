//! The model server behind `lab serve`: a trained image run over HTTP, monitored while it
//! serves.
//!
//! - `POST /predict` — a PNG or JPEG file (any size; converted and resized as the
//!   image-folder reader trains) or a JSON batch `{"pixels": [[…]], "top_k": 3}` → the
//!   top classes with probabilities, the model version and the latency;
//! - `POST /explain` — an image → its Grad-CAM overlay (PNG, base64) and class;
//! - `GET /` — a demo page (no external resources): pick, drop or click a sample image,
//!   see the top-k bars and the Grad-CAM overlay;
//! - `GET /metrics` — Prometheus text format; `GET /health`; `GET /alerts`;
//!   `GET /samples` and `/samples/{i}` — held-out test images for the page.
//!
//! Inside: handlers decode and validate ([`decode`]), queue jobs for the one model thread
//! that batches them ([`batcher`]), which logs every prediction before answering and feeds
//! the drift window ([`monitoring`]); a watcher swaps in a promoted model ([`swap`]).
//! Inference runs in ONNX Runtime on the network exported in memory, or in tch
//! ([`model::Engine`]). The server binds loopback unless told otherwise.
pub mod batcher;
pub mod client;
pub mod decode;
pub mod demo;
pub mod metrics;
pub mod model;
pub mod monitoring;
mod routes;
pub mod swap;

pub use batcher::BatchOptions;
pub use model::{Engine, ServedModel};
pub use monitoring::MonitorOptions;
pub use swap::Loader;

use crate::{Error, Result};
use batcher::Batcher;
use metrics::Metrics;
use monitoring::Monitor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Everything `lab serve` can be told.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to bind; port 0 picks a free one ([`RunningServer::addr`] tells which).
    pub addr: SocketAddr,
    pub batch: BatchOptions,
    pub monitor: MonitorOptions,
    /// Largest request body accepted, bytes (larger → 413).
    pub max_body: usize,
    /// The `deployed.json` to watch for promotions (`None`: never swap).
    pub watch: Option<PathBuf>,
    /// The CLI's mode: stop on Ctrl-C and SIGTERM, and print swaps and failures of the
    /// background threads to stderr. Off inside a notebook or a test, whose process keeps
    /// its own signal handling and output ([`RunningServer::stop`] stops the server;
    /// `/health` shows the last swap error).
    pub stop_on_signals: bool,
}

/// Default largest body: 8 MiB (a large JPEG; a JSON batch of 256 Fashion-MNIST images is ~1 MB).
pub const MAX_BODY: usize = 8 << 20;

/// The state every handler and thread shares.
pub struct Shared {
    current: RwLock<Arc<ServedModel>>,
    pub metrics: Metrics,
    pub monitor: Monitor,
    batcher: Batcher,
    /// Why the last change of `deployed.json` was not loaded, until a swap succeeds.
    pub swap_error: Mutex<Option<String>>,
    started: Instant,
    max_body: usize,
    announce: bool,
}

impl Shared {
    /// The model serving now.
    pub fn model(&self) -> Arc<ServedModel> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tells the operator (stderr) what a background thread did, in the CLI's mode.
    fn notice(&self, message: &str) {
        if self.announce {
            eprintln!("lab serve: {message}");
        }
    }

    /// Serves `next` from the next batch on; returns the model it replaces.
    fn replace(&self, next: Arc<ServedModel>) -> Arc<ServedModel> {
        std::mem::replace(
            &mut *self.current.write().unwrap_or_else(|e| e.into_inner()),
            next,
        )
    }
}

/// A server running on its own threads.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Blocks until the server ends (Ctrl-C or SIGTERM: it stops accepting, lets open
    /// requests finish, and returns).
    pub fn wait(self) {
        self.finish(false)
    }

    /// Stops the server as a signal would, and waits for it.
    pub fn stop(self) {
        self.finish(true)
    }

    /// Lets go of this handle's state first, so that the server's own thread drops the
    /// last reference: in a notebook each cell is a library with its own copy of ONNX
    /// Runtime's bindings, and a session must be freed by the copy that created it.
    fn finish(self, signal: bool) {
        let RunningServer {
            shared,
            mut stop,
            thread,
            ..
        } = self;
        drop(shared);
        if signal {
            if let Some(tx) = stop.take() {
                let _ = tx.send(());
            }
        }
        if let Some(t) = thread {
            let _ = t.join();
        }
        // Only now: a dropped sender also ends the server (see `shutdown`).
        drop(stop);
    }
}

/// Binds `options.addr` and serves `model` until stopped; `loader` loads promoted runs.
pub fn start(model: ServedModel, loader: Loader, options: ServeOptions) -> Result<RunningServer> {
    let (batcher, worker) = Batcher::new(options.batch);
    let (monitor, windows) = Monitor::new(options.monitor.clone())?;
    let shared = Arc::new(Shared {
        current: RwLock::new(Arc::new(model)),
        metrics: Metrics::default(),
        monitor,
        batcher,
        swap_error: Mutex::new(None),
        started: Instant::now(),
        max_body: options.max_body,
        announce: options.stop_on_signals,
    });
    let thread_err = |e| Error::io(std::path::Path::new("lab serve threads"), e);
    worker.spawn(Arc::downgrade(&shared)).map_err(thread_err)?;
    monitoring::spawn_tester(windows, Arc::downgrade(&shared)).map_err(thread_err)?;
    if let Some(pointer) = &options.watch {
        swap::watch(pointer.clone(), loader, Arc::downgrade(&shared)).map_err(thread_err)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lab-serve-http")
        .build()
        .map_err(thread_err)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.addr))
        .map_err(|e| Error::Argument {
            name: "port".into(),
            reason: format!("cannot listen on {}: {e} (is another server on that port? pick another with --port)", options.addr),
        })?;
    let addr = listener.local_addr().map_err(thread_err)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let app = routes::router(shared.clone());
    let signals = options.stop_on_signals;
    let thread = std::thread::Builder::new()
        .name("lab-serve".into())
        .spawn(move || {
            runtime.block_on(async move {
                let served =
                    axum::serve(listener, app).with_graceful_shutdown(shutdown(stop_rx, signals));
                if let Err(e) = served.await {
                    eprintln!("lab serve: {e}");
                }
            })
        })
        .map_err(thread_err)?;
    Ok(RunningServer {
        addr,
        shared,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Resolves on the stop channel, or (with `signals`) on Ctrl-C or SIGTERM.
async fn shutdown(stop: tokio::sync::oneshot::Receiver<()>, signals: bool) {
    if !signals {
        let _ = stop.await;
        return;
    }
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
        _ = stop => {},
    }
}
