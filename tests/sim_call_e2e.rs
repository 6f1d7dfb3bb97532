//! `acs-sim call` end to end: the whole scenario (`acs_sim::scenario::run_call`) against the real
//! gateway (`app::start`) on 127.0.0.1:0 — Event Grid handshake → IncomingCall → the gateway's
//! signed answer with repeatability headers → the fake ACS streams a WAV in real time to the
//! gateway's `transportUrl` with its RS256 token → callbacks accepted → the far end hangs up →
//! CallDisconnected → the gateway's recording holds every frame that was streamed.

mod common;

use std::time::Duration;

use acs_sim::acs::CallEnd;
use acs_sim::eventgrid::EventGridTarget;
use acs_sim::scenario::{run_call, summary, CallScenario};
use common::{fake_acs, read_wav, Gw, LONG};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acs_sim_call_drives_a_whole_call_through_the_gateway() {
    let acs = fake_acs(|_| {}).await;
    let mut gw = Gw::start_with_acs(&acs, |_| {}).await;

    let scenario = CallScenario {
        hangup_after: Duration::from_secs(2),
        ..CallScenario::new(EventGridTarget::new(format!(
            "http://{}/api/incomingCall",
            gw.addr
        )))
    };
    let report = tokio::time::timeout(Duration::from_secs(60), run_call(&acs, &scenario))
        .await
        .expect("scenario bounded")
        .expect("scenario runs");
    let text = summary(&report);
    assert!(report.ok, "{text}");
    assert_eq!(report.outcome, "answered", "{text}");
    assert!(report.handshake.as_ref().unwrap().ok, "{text}");
    assert_eq!(report.answer_signature_valid, Some(true));
    assert!(report.answer_repeatability_request_id.is_some());
    assert_eq!(report.answer_requests, 1);
    assert_eq!(report.ended, Some(CallEnd::RemoteHangUp));
    let names: Vec<&str> = report
        .callbacks
        .iter()
        .map(|c| c.event_type.trim_start_matches("Microsoft.Communication."))
        .collect();
    assert_eq!(names.first(), Some(&"CallConnected"), "{text}");
    assert_eq!(names.last(), Some(&"CallDisconnected"), "{text}");
    assert!(names.contains(&"MediaStreamingStarted"), "{text}");
    assert!(report.callbacks.iter().all(|c| c.delivered()), "{text}");
    let media = report.media.as_ref().unwrap();
    assert_eq!(media.connections, 1);
    assert!(media.audio_frames_sent >= 80, "{text}");
    // The media token was checked with the fake's JWKS.
    assert!(acs.jwks_fetches() >= 1);

    // After a drain, the gateway's recording of the call holds every frame that was streamed.
    let id = report.call_connection_id.clone().unwrap();
    tokio::time::timeout(LONG, gw.shutdown())
        .await
        .expect("gateway drains");
    let (rate, samples) = read_wav(&gw.call_dir(&id).join("mixed.wav"));
    assert_eq!(rate, 16_000);
    assert_eq!(samples.len() as u64, media.audio_frames_sent * 320);
    acs.shutdown().await;
}
