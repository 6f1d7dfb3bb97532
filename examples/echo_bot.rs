//! A WebSocket server speaking the forward sink's protocol, for trying bidirectional playback by
//! hand: it echoes every audio message back (optionally delayed), plays a WAV on request
//! (`{"type":"play"}`, a DTMF key, or at `start` with `--wav`), stops on `barge_in` (answering
//! `{"type":"stop"}`) and closes on `end`.
//!
//! ```text
//! cargo run --example echo_bot -- --listen 127.0.0.1:9100 [--wav FILE] [--delay-ms N]
//! ```
//!
//! The bot itself is `acs_media_gateway::sinks::forward::echo`, which the tests start in-process.

use acs_media_gateway::sinks::forward::echo::{Clip, EchoBot, EchoOptions};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Echo bot for the forward sink.
#[derive(Debug, Parser)]
#[command(name = "echo_bot")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// WAV file to play at `start` and on request.
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Echo delay in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let clip = match &args.wav {
        Some(path) => match Clip::from_wav(path) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                eprintln!("echo_bot: {}: {e}", path.display());
                return std::process::ExitCode::from(2);
            }
        },
        None => None,
    };
    let opts = EchoOptions {
        delay: Duration::from_millis(args.delay_ms),
        play_on_start: clip.is_some(),
        clip,
        ..EchoOptions::default()
    };
    let bot = match EchoBot::start(args.listen.as_str(), opts).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("echo_bot: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::from(1);
        }
    };
    println!("echo bot listening on {}", bot.url("/"));
    let _ = tokio::signal::ctrl_c().await;
    bot.kill().await;
    std::process::ExitCode::SUCCESS
}
