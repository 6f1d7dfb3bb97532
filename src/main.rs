//! The `acs-media-gateway` binary: command line → configuration → logging → [`app::start`] →
//! wait for SIGTERM / ctrl-c → graceful drain → exit.

use acs_media_gateway::app;
use acs_media_gateway::config::{Config, Overrides};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the allocator is not called per frame, but the per-call
/// state it places is touched by every frame, and with mimalloc the same load costs 30-45 % less
/// CPU (README "Performance"). Off with `--no-default-features`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// At most this often a runtime worker returns freed memory to the OS when it parks.
#[cfg(feature = "mimalloc")]
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs when a runtime worker parks: at most once per [`COLLECT_EVERY`] per worker, asks
/// mimalloc to return the memory freed into this thread's heap to the OS (`mi_collect(false)`).
///
/// A call's frames and per-call state are allocated by the runtime worker that reads its socket
/// and freed by the sink threads; mimalloc keeps memory freed that way for reuse until its
/// owner next allocates, so after a burst (connection churn that filled the sink queues) RSS
/// stayed at the burst's peak: 26 → 86 → 36 → 89 MB over successive runs of 10,000 churn
/// cycles against one gateway. With this, RSS two seconds after each run: 33 → 34 → 37 → 36 MB.
/// Returning memory on every free (`MIMALLOC_PURGE_DELAY=0`) kept RSS as low but cost 0.5 µs
/// per real-time frame in paired runs; once a second per worker was within this VM's noise
/// (README "Performance").
#[cfg(feature = "mimalloc")]
fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    let now = Instant::now();
    let due = LAST.with(|last| match last.get() {
        Some(t) if now.duration_since(t) < COLLECT_EVERY => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        #[allow(unsafe_code)]
        // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
        unsafe {
            libmimalloc_sys::mi_collect(false)
        };
    }
}

/// Media gateway between Azure Communication Services media streaming and your back ends.
///
/// Configuration: defaults ← TOML file (--config) ← environment (ACS_GATEWAY_<SECTION>__<KEY>,
/// e.g. ACS_GATEWAY_SERVER__MAX_CONNECTIONS=2000) ← these flags. Every key, its default and its
/// variable: README "Configuration", or --print-config for the effective values.
#[derive(Parser, Debug)]
#[command(version = VERSION_LINE, about, long_about, after_help = AFTER_HELP)]
struct Cli {
    /// TOML configuration file (keys as in --print-config) [default: none, embedded defaults]
    #[arg(long, short = 'c', value_name = "FILE", env = "ACS_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address of HTTP and the media WebSocket (server.listen)
    /// [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "ACS_GATEWAY_SERVER__LISTEN")]
    listen: Option<String>,
    /// Folder of every wav sink (sinks[].dir) [default: ./recordings]
    #[arg(long, value_name = "DIR", env = "ACS_GATEWAY_RECORDINGS_DIR")]
    recordings_dir: Option<PathBuf>,
    /// Log filter, e.g. info or acs_media_gateway=debug (log.level) [default: info]
    #[arg(long, value_name = "FILTER", env = "ACS_GATEWAY_LOG__LEVEL")]
    log_level: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Validate the configuration and exit (status 2 on an error).
    #[arg(long)]
    check_config: bool,
}

/// `--version`: the crate version and the commit it was built from.
const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ACS_MEDIA_GATEWAY_GIT_COMMIT"),
    ")"
);

const AFTER_HELP: &str = "\
Endpoints (on --listen): media ws://ADDR/ws/{token} and /ws, metrics /metrics, health /healthz
and /readyz, API /api/ (Event Grid webhook /api/incomingCall, callbacks, operator /api/calls).
The startup log lists them with the recordings folder, the sinks, the control plane and the
admission mode. Docs: README.md, docs/ARCHITECTURE.md, docs/PROTOCOL.md.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        recordings_dir: cli.recordings_dir,
        log_level: cli.log_level,
    };
    let cfg = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("acs-media-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", cfg.to_toml());
        return ExitCode::SUCCESS;
    }
    if cli.check_config {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    init_logging(&cfg.log.level, &cfg.log.format);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(feature = "mimalloc")]
    builder.on_thread_park(collect_when_idle);
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("acs-media-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let handle = match app::start(cfg).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("acs-media-gateway: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        tracing::info!("shutdown signal received; draining");
        let report = handle.shutdown().await;
        if report.clean() {
            ExitCode::SUCCESS
        } else {
            tracing::warn!(
                ?report,
                "shutdown grace period expired before everything finished"
            );
            ExitCode::FAILURE
        }
    })
}

fn init_logging(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| "info".into());
    // colours only on a terminal: log files and collectors get plain text
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acs_media_gateway::config::Config;
    use clap::CommandFactory;

    #[test]
    fn help_shows_every_option_with_its_default_and_variable() {
        let help = Cli::command().render_long_help().to_string();
        let d = Config::default();
        for (flag, env, default) in [
            ("--config", "ACS_GATEWAY_CONFIG", "none".to_string()),
            (
                "--listen",
                "ACS_GATEWAY_SERVER__LISTEN",
                d.server.listen.clone(),
            ),
            (
                "--recordings-dir",
                "ACS_GATEWAY_RECORDINGS_DIR",
                d.sinks[0].recordings_dir().unwrap().display().to_string(),
            ),
            ("--log-level", "ACS_GATEWAY_LOG__LEVEL", d.log.level.clone()),
        ] {
            // the option's entry: from `--flag <VALUE>` to the blank line after it
            let at = help
                .find(&format!("{flag} <"))
                .unwrap_or_else(|| panic!("{flag}: {help}"));
            let end = help[at..].find("\n\n").map_or(help.len(), |e| at + e);
            let entry = &help[at..end];
            assert!(entry.contains(&format!("[env: {env}")), "{flag}: {entry}");
            assert!(
                entry.contains(&format!("[default: {default}")),
                "{flag} default {default}: {entry}"
            );
        }
        assert!(help.contains("ACS_GATEWAY_<SECTION>__<KEY>"), "{help}");
    }
}
