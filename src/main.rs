//! The `acs-media-gateway` binary: command line → configuration → logging → [`app::start`] →
//! wait for SIGTERM / ctrl-c → graceful drain → exit.

use acs_media_gateway::app;
use acs_media_gateway::config::{Config, Overrides};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Media gateway between Azure Communication Services media streaming and your back ends.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (keys as in `--print-config`).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, e.g. 0.0.0.0:8080 (overrides server.listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Folder of every wav sink (overrides sinks[].dir).
    #[arg(long, value_name = "DIR")]
    recordings_dir: Option<PathBuf>,
    /// Log filter, e.g. info or acs_media_gateway=debug (overrides log.level).
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
