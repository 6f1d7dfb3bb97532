//! Wiring: builds the metrics, sinks, pipeline and listener from a [`Config`], and runs the
//! shutdown order of docs/ARCHITECTURE.md: stop accepting → every media connection finishes its current
//! message and closes with 1001 → the call pipelines close their streams → each sink drains its
//! queue, finalises its outputs and stops → the recordings uploader finishes the call folders
//! queued → done. All under `server.shutdown_grace_ms`.

use crate::config::{Config, ConfigError};
use crate::control::{ControlError, ControlPlane};
use crate::ingress::playback::PlaybackHub;
use crate::ingress::{self, IngressConfig, IngressState};
use crate::metrics::Metrics;
use crate::pipeline::sink::SinkWorkers;
use crate::pipeline::{FanOut, Pipeline, PipelineConfig};
use crate::shutdown::{Phase, Shutdown, Step};
use crate::upload::{UploadError, Uploader};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The control plane could not be built.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The recordings uploader could not start.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// Cluster mode could not start (NATS unreachable, JetStream off).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// A sink could not start.
    #[error("sink {kind} cannot start: {source}")]
    Sink {
        /// The sink kind.
        kind: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// What the shutdown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Media connections still open when the grace period ended.
    pub connections_left: usize,
    /// Sink workers that did not finish in time.
    pub sinks_unfinished: usize,
    /// Call folders the uploader left for the next start (0 without uploads).
    pub uploads_left: usize,
    /// The recorded steps, in order.
    pub steps: Vec<Step>,
}

impl ShutdownReport {
    /// True when everything closed and finalised in time.
    pub fn clean(&self) -> bool {
        self.connections_left == 0 && self.sinks_unfinished == 0 && self.uploads_left == 0
    }
}

/// A running gateway.
pub struct AppHandle {
    addr: SocketAddr,
    state: Arc<IngressState>,
    control: Arc<ControlPlane>,
    sinks: Vec<SinkWorkers>,
    uploader: Option<Uploader>,
    cluster: Option<crate::cluster::ClusterHandle>,
    server: JoinHandle<()>,
    grace: Duration,
}

impl std::fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Validates `cfg`, starts the sinks, binds the listener and starts serving.
///
/// # Example
///
/// A gateway on a free loopback port with a null sink, asked for its health, then shut down:
///
/// ```
/// use acs_media_gateway::{app, config::Config};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # #[tokio::main]
/// # async fn main() {
/// let cfg: Config = toml::from_str(
///     r#"
///     [server]
///     listen = "127.0.0.1:0"
///
///     [[sinks]]
///     type = "null"
///     "#,
/// )
/// .unwrap();
/// let gw = app::start(cfg).await.unwrap();
///
/// let mut http = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
/// http.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
///     .await
///     .unwrap();
/// let mut answer = String::new();
/// http.read_to_string(&mut answer).await.unwrap();
/// assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
///
/// let report = gw.shutdown().await;
/// assert!(report.clean(), "{report:?}");
/// # }
/// ```
pub async fn start(cfg: Config) -> Result<AppHandle, AppError> {
    cfg.validate()?;
    let addr = cfg.server.listen_addr()?;
    let metrics = Metrics::new();
    let shutdown = Shutdown::new();
    let playback = PlaybackHub::new(metrics.clone());
    // sinks that play audio back (forward) reach calls through the same hub the ingress uses
    let mut sink_ctx =
        crate::sinks::SinkContext::new(metrics.clone(), tokio::runtime::Handle::current())
            .with_playback(playback.clone());
    // finalised call folders of the WAV sinks go to the uploader (when on)
    let uploader = if cfg.upload.enabled {
        let roots = cfg
            .sinks
            .iter()
            .filter_map(|s| s.recordings_dir().map(Into::into))
            .collect();
        let u = Uploader::start(&cfg.upload, roots, &metrics)?;
        sink_ctx = sink_ctx.with_folder_hook(u.hook());
        Some(u)
    } else {
        None
    };
    let mut sinks = Vec::with_capacity(cfg.sinks.len());
    for s in &cfg.sinks {
        let w = s.start_with(&sink_ctx).map_err(|source| AppError::Sink {
            kind: s.kind(),
            source,
        })?;
        sinks.push(w);
    }
    let fanout = FanOut::new(sinks.iter().map(|w| w.handle.clone()).collect());
    let pipeline = Pipeline::new(PipelineConfig::from(&cfg), fanout, metrics.clone());
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(source) => {
            stop_sinks(sinks, &shutdown, Instant::now() + Duration::from_secs(2)).await;
            return Err(AppError::Bind { addr, source });
        }
    };
    let addr = listener
        .local_addr()
        .map_err(|source| AppError::Bind { addr, source })?;
    // the control plane first (it needs the bound address for its public URLs), then the
    // listener's state that routes to it
    let control = match ControlPlane::from_config(&cfg.control_plane(), metrics.clone(), addr) {
        Ok(cp) => {
            // operator playback reaches the media connections through the same hub
            cp.set_player(playback.clone());
            cp
        }
        Err(e) => {
            stop_sinks(sinks, &shutdown, Instant::now() + Duration::from_secs(2)).await;
            return Err(e.into());
        }
    };
    // cluster mode: shared call state on NATS JetStream before any request is served
    let cluster = if cfg.cluster.enabled() {
        match crate::cluster::start(&cfg.cluster, &control, addr).await {
            Ok(c) => Some(c),
            Err(e) => {
                stop_sinks(sinks, &shutdown, Instant::now() + Duration::from_secs(2)).await;
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let state = IngressState::new(
        IngressConfig {
            max_connections: cfg.server.max_connections,
            max_frame_bytes: cfg.server.max_frame_bytes,
            handshake_timeout: Duration::from_millis(cfg.server.handshake_timeout_ms),
            max_body_bytes: cfg.server.max_body_bytes,
            body_timeout: Duration::from_millis(cfg.server.body_timeout_ms),
            idle_timeout: Duration::from_millis(cfg.server.idle_timeout_ms),
            bidirectional: cfg.media.bidirectional,
            headroom: ingress::headroom::HeadroomConfig {
                shed_lag: Duration::from_millis(cfg.server.shed_lag_ms),
                shed_queue_fill: cfg.server.shed_queue_fill,
            },
        },
        pipeline,
        metrics.clone(),
        shutdown.clone(),
        playback,
        Some(control.clone()),
    );
    tokio::spawn(ingress::headroom::monitor(
        state.headroom.clone(),
        state.cfg.headroom,
        state.pipeline.fanout().clone(),
        state.metrics.clone(),
        shutdown.clone(),
    ));
    let server = tokio::spawn(ingress::serve(listener, state.clone()));
    shutdown.set(Phase::Running);
    for (what, line) in banner(&cfg, addr, &control) {
        tracing::info!("{what:<10} {line}");
    }
    Ok(AppHandle {
        addr,
        state,
        control,
        sinks,
        uploader,
        cluster,
        server,
        grace: Duration::from_millis(cfg.server.shutdown_grace_ms),
    })
}

/// The startup banner: what a new user needs to find everything, one `(what, line)` pair per
/// log line — version and commit, the URLs of media, metrics, health and the API (the bound
/// address; `127.0.0.1` for an unspecified one), the recordings folders, the sinks, whether the
/// control plane is on, how media is admitted, and uploads.
pub fn banner(cfg: &Config, addr: SocketAddr, cp: &ControlPlane) -> Vec<(&'static str, String)> {
    use crate::metrics::process::{COMMIT, VERSION};
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let http = format!("http://{host}");
    let dirs: Vec<String> = cfg
        .sinks
        .iter()
        .filter_map(|s| s.recordings_dir())
        .map(|d| match std::path::absolute(d) {
            Ok(a) if a != d => format!("{} ({})", d.display(), a.display()),
            _ => d.display().to_string(),
        })
        .collect();
    let sinks: Vec<&str> = cfg.sinks.iter().map(|s| s.kind()).collect();
    let control = if cp.acs.is_some() {
        format!(
            "on: answering IncomingCall at {http}/api/incomingCall; callbacks to {}, media to {}",
            cp.urls.base, cp.urls.media
        )
    } else {
        "off (no acs.connection_string): /api/incomingCall only validates Event Grid subscriptions"
            .to_string()
    };
    let admission = match (cp.require_call_token, cp.jwt.is_some()) {
        (true, true) => "call token (/ws/{token}) and ACS JWT required",
        (true, false) => "call token (/ws/{token}) required; ACS JWT not checked",
        (false, true) => "ACS JWT required; no call token needed",
        (false, false) => "open: every /ws connection is recorded (no call token, no ACS JWT)",
    };
    let operator = if cp.operator_api_key.is_some() {
        format!("{http}/api/calls (bearer control.operator_api_key)")
    } else {
        "off (set control.operator_api_key)".to_string()
    };
    vec![
        (
            "gateway",
            format!("acs-media-gateway {VERSION} (commit {COMMIT}) listening on {addr}"),
        ),
        (
            "media",
            format!("ws://{host}/ws/{{token}} and ws://{host}/ws"),
        ),
        ("metrics", format!("{http}/metrics")),
        ("health", format!("{http}/healthz, {http}/readyz")),
        ("api", format!("{http}/api/ (operator API: {operator})")),
        (
            "recordings",
            if dirs.is_empty() {
                "none (no wav sink)".to_string()
            } else {
                dirs.join(", ")
            },
        ),
        ("sinks", sinks.join(", ")),
        ("control", control),
        ("admission", admission.to_string()),
        (
            "upload",
            if cfg.upload.enabled {
                format!("on: Azure Blob container {}", cfg.upload.container)
            } else {
                "off".to_string()
            },
        ),
    ]
}

async fn stop_sinks(sinks: Vec<SinkWorkers>, shutdown: &Shutdown, deadline: Instant) -> usize {
    let mut unfinished = 0;
    for w in sinks {
        let kind = w.handle.kind();
        let left = tokio::task::spawn_blocking(move || w.finish_and_join(deadline))
            .await
            .unwrap_or(1);
        if left == 0 {
            shutdown.record(Step::SinkFinalised { kind });
        }
        unfinished += left;
    }
    shutdown.record(Step::SinksDone { unfinished });
    unfinished
}

impl AppHandle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// The shutdown token (phase and step log).
    pub fn shutdown_token(&self) -> &Shutdown {
        &self.state.shutdown
    }

    /// The bidirectional playback hub (audio into calls).
    pub fn playback(&self) -> &Arc<PlaybackHub> {
        &self.state.playback
    }

    /// The Call Automation control plane (call registry, ACS client, policy).
    pub fn control(&self) -> &Arc<ControlPlane> {
        &self.control
    }

    /// Open media connections.
    pub fn media_connections(&self) -> usize {
        self.state.media_connections()
    }

    /// Graceful shutdown in the documented order; returns what happened.
    pub async fn shutdown(self) -> ShutdownReport {
        let started = Instant::now();
        let sd = self.state.shutdown.clone();
        sd.set(Phase::Draining);
        let _ = self.server.await;
        let connections_left = self.state.wait_idle(self.grace).await;
        sd.record(Step::ConnectionsDone {
            remaining: connections_left,
        });
        let remaining = self
            .grace
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let sinks_unfinished = stop_sinks(self.sinks, &sd, Instant::now() + remaining).await;
        // the folders the sinks finalised while draining are queued by now
        let mut uploads_left = 0;
        if let Some(u) = self.uploader {
            let remaining = self
                .grace
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1));
            uploads_left = u.drain(tokio::time::Instant::now() + remaining).await;
            sd.record(Step::UploadsDone { left: uploads_left });
        }
        if let Some(c) = self.cluster {
            c.stop().await;
        }
        sd.set(Phase::Stopped);
        let report = ShutdownReport {
            connections_left,
            sinks_unfinished,
            uploads_left,
            steps: sd.steps(),
        };
        tracing::info!(
            connections_left,
            sinks_unfinished,
            uploads_left,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shutdown complete"
        );
        report
    }
}
