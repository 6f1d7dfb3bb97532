//! Property tests (proptest) over the media parser and the per-call pipeline.
//!
//! 1. Random bytes, random text, JSON token soup and random JSON documents: the parser never
//!    panics; `parse_inbound` (fast path + serde_json) always equals `parse_inbound_full`
//!    (serde_json only); an error is one of the reasons of README's bad-input table and fits a
//!    close reason; `CallPipeline::handle` gives the outcome that table documents for it and
//!    counts it under exactly that reason.
//! 2. Structured mutations of the committed vectors (`fixtures/vectors/ws_*.json`) and of
//!    ACS-shaped frames: JSON values replaced by other types, hostile numbers, odd base64,
//!    odd timestamps, very long participant ids, unknown kinds, duplicated keys, deep nesting,
//!    then byte flips, inserts, deletes, duplications and truncation. Same checks as 1.
//! 3. The pipeline fed random sequences of valid-but-hostile frames (random timestamps,
//!    participants, sizes, silent flags, format changes, events) under random valid settings:
//!    every AudioData is accepted, dropped (late / duplicate) or refused under the reason a
//!    model of the documented rules predicts, and the counts add up; what the sinks receive is
//!    consistent (open before audio, positions contiguous with gaps, the exact audio accepted,
//!    gaps within `max_gap_fill_ms`, stream stats equal to what was delivered, speech edges in
//!    order, every stream closed once, the mix never past its inputs' end).
//!
//! Case counts: each property has its own default (together over 10,000 in a plain `cargo test`);
//! `PROPTEST_CASES=N` runs N cases of *each* property instead, e.g. the long run in README:
//! `PROPTEST_CASES=1000000 cargo test --release --test proptest_media`. Coverage assertions
//! (every documented reason reached, the fast path taken) apply only at the default counts or
//! more. A failing case is shrunk and its seed saved under `tests/proptest-regressions/`
//! (committed, replayed first on every run).

use acs_media_gateway::metrics::{BadFrame, Metrics};
use acs_media_gateway::pipeline::frame::{StreamKind, MAX_FRAME_SAMPLES};
use acs_media_gateway::pipeline::sink::{ManualSink, QueueConfig};
use acs_media_gateway::pipeline::{
    AudioFrame, CallEvent, CallInfo, CallPipeline, EndReason, FanOut, FrameError, Handled,
    Pipeline, PipelineConfig, Sink, SinkError, StreamId, StreamInfo, StreamStats,
    MAX_PARTICIPANT_ID_LEN, MAX_PAYLOAD_MS,
};
use acs_media_gateway::protocol::error::MAX_ERROR_DISPLAY_LEN;
use acs_media_gateway::protocol::fast::parse_audio_data;
use acs_media_gateway::protocol::media::{
    inbound_audio_data_json, inbound_audio_metadata_json, parse_inbound, parse_inbound_full,
    parse_outbound, Inbound,
};
use acs_media_gateway::protocol::timestamp::format_timestamp;
use acs_sim::scrape::scrape_value;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Seed of a plain `cargo test` run.
const DEFAULT_SEED: u64 = 0x0ac5_6a7e_3a7d_2026;

/// Cases of one property: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` over `strategy`; failures are shrunk and their seeds persisted in
/// `tests/proptest-regressions/<file>` (replayed first on later runs).
fn run<S>(
    default_cases: u32,
    regressions: &'static str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let mut cfg = Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    };
    // A plain `cargo test` is deterministic (a fixed seed), so its coverage assertions cannot
    // flake in CI; a run that sets `PROPTEST_CASES` (the long run) or `PROPTEST_RNG_SEED`
    // explores with a random or chosen seed.
    if std::env::var_os("PROPTEST_CASES").is_none()
        && std::env::var_os("PROPTEST_RNG_SEED").is_none()
    {
        cfg.rng_seed = RngSeed::Fixed(DEFAULT_SEED);
    }
    let mut runner = TestRunner::new(cfg);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}\n{runner}");
    }
}

macro_rules! regressions {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/",
            $name,
            ".txt"
        )
    };
}

/// Whether coverage can be asserted (the run has at least its default number of cases).
fn full_run(default_cases: u32) -> bool {
    cases(default_cases) >= default_cases
}

// ---------------------------------------------------------------------------------------------
// The documented outcomes: README's bad-input table
// ---------------------------------------------------------------------------------------------

/// Rows of README's bad-input table (under "How it works"), keyed by every quoted reason label
/// in their "counted as" column.
fn documented() -> &'static BTreeMap<String, String> {
    static ROWS: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let mut rows = BTreeMap::new();
        let mut in_table = false;
        for line in readme.lines() {
            if line.starts_with("| input | outcome | counted as |") {
                in_table = true;
                continue;
            }
            if !in_table {
                continue;
            }
            if !line.starts_with('|') {
                break;
            }
            let counted = line.rsplit('|').nth(1).unwrap_or("");
            for (i, part) in counted.split('"').enumerate() {
                if i % 2 == 1 {
                    rows.insert(part.to_string(), line.to_string());
                }
            }
        }
        assert!(
            rows.len() > 10,
            "README bad-input table not found: {rows:?}"
        );
        rows
    })
}

/// The README row documenting `reason`.
fn row(reason: BadFrame) -> Result<&'static str, TestCaseError> {
    documented()
        .get(reason.as_str())
        .map(String::as_str)
        .ok_or_else(|| {
            TestCaseError::fail(format!(
                "reason {} is not in README's bad-input table",
                reason.as_str()
            ))
        })
}

const PROTOCOL_REASONS: [BadFrame; 4] = [
    BadFrame::NotUtf8,
    BadFrame::MalformedJson,
    BadFrame::MissingKind,
    BadFrame::MissingPayload,
];

const DROP_REASONS: [BadFrame; 6] = [
    BadFrame::BadBase64,
    BadFrame::Empty,
    BadFrame::OddLength,
    BadFrame::TooLong,
    BadFrame::ParticipantIdTooLong,
    BadFrame::TooManyParticipants,
];

// ---------------------------------------------------------------------------------------------
// Checks shared by properties 1 and 2
// ---------------------------------------------------------------------------------------------

/// What one message did, for coverage counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Seen {
    FastPath,
    Parsed,
    Reason(&'static str),
    Audio,
    Dropped,
    Metadata,
    Event,
    Unknown,
}

/// Parser checks on any input: no panic (proptest catches one), fast path ≡ full parser, errors
/// documented and short enough for a close reason. Also runs the outbound parser.
fn check_parser(b: &[u8], seen: &mut Vec<Seen>) -> Result<(), TestCaseError> {
    let full = parse_inbound_full(b);
    prop_assert_eq!(
        &parse_inbound(b),
        &full,
        "parse_inbound != parse_inbound_full"
    );
    if let Some(fast) = parse_audio_data(b) {
        seen.push(Seen::FastPath);
        prop_assert_eq!(
            full.as_ref().ok(),
            Some(&Inbound::AudioData(fast)),
            "fast path disagrees with serde_json"
        );
    }
    match &full {
        Ok(_) => seen.push(Seen::Parsed),
        Err(e) => {
            let r = BadFrame::from_protocol(e);
            prop_assert!(PROTOCOL_REASONS.contains(&r));
            prop_assert_eq!(e.reason(), r.as_str());
            row(r)?;
            prop_assert!(e.to_string().len() <= MAX_ERROR_DISPLAY_LEN, "{}", e);
        }
    }
    if let Err(e) = parse_outbound(b) {
        let r = BadFrame::from_protocol(&e);
        row(r)?;
        prop_assert!(e.to_string().len() <= MAX_ERROR_DISPLAY_LEN, "{}", e);
    }
    Ok(())
}

/// A snapshot of every per-frame counter the pipeline keeps directly (not batched).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    bad: [u64; BadFrame::ALL.len()],
    late: u64,
    duplicate: u64,
}

impl Counts {
    fn of(m: &Metrics) -> Self {
        Self {
            bad: BadFrame::ALL.map(|r| m.bad_frame_count(r)),
            late: m.late_frames.get(),
            duplicate: m.duplicate_frames.get(),
        }
    }

    /// Reasons counted since `before`, with how many times.
    fn since(&self, before: &Counts) -> Vec<(BadFrame, u64)> {
        BadFrame::ALL
            .iter()
            .zip(self.bad.iter().zip(before.bad.iter()))
            .filter(|(_, (a, b))| a != b)
            .map(|(r, (a, b))| (*r, a - b))
            .collect()
    }
}

/// A pipeline without sinks, for one-message checks.
struct Bench {
    metrics: Arc<Metrics>,
    pipeline: Arc<Pipeline>,
}

impl Bench {
    fn new() -> Self {
        let metrics = Metrics::new();
        let pipeline = Pipeline::new(
            PipelineConfig::default(),
            FanOut::new(Vec::new()),
            metrics.clone(),
        );
        Self { metrics, pipeline }
    }

    /// Feeds `b` to a fresh call (after AudioMetadata) and checks the outcome is the documented
    /// one for what the parser made of it, counted under exactly its reason.
    fn check(&self, b: &[u8], seen: &mut Vec<Seen>) -> Result<(), TestCaseError> {
        let mut call =
            self.pipeline
                .start_call(Some("proptest".into()), None, None, 1_700_000_000_000);
        call.handle(inbound_audio_metadata_json(16_000, "sub").as_bytes())
            .map_err(|e| TestCaseError::fail(format!("metadata: {e}")))?;
        check_handle(&mut call, &self.metrics, b, seen).map(|_| ())
    }
}

/// One message through `call`: the outcome matches the parse and README's table, and the
/// counters moved by exactly that reason. `None`: the message ends the connection.
fn check_handle(
    call: &mut CallPipeline,
    m: &Metrics,
    b: &[u8],
    seen: &mut Vec<Seen>,
) -> Result<Option<Handled>, TestCaseError> {
    let parsed = parse_inbound(b).map(|i| i.into_owned());
    let before = Counts::of(m);
    let r = call.handle(b);
    let after = Counts::of(m);
    let counted = after.since(&before);
    let dropped = (after.late - before.late) + (after.duplicate - before.duplicate);
    let out = match (&r, &parsed) {
        (Err(e), _) => {
            let reason = match e {
                FrameError::Protocol(p) => {
                    prop_assert_eq!(Err(p), parsed.as_ref().map(|_| ()));
                    BadFrame::from_protocol(p)
                }
                FrameError::UnsupportedFormat(_) => {
                    prop_assert!(matches!(parsed, Ok(Inbound::AudioMetadata(_))));
                    BadFrame::UnsupportedFormat
                }
            };
            let code = format!("**{}**", e.close_code());
            prop_assert!(
                row(reason)?.contains(&code),
                "{} not in {}",
                code,
                row(reason)?
            );
            prop_assert!(e.close_reason().len() <= 123);
            prop_assert_eq!(&counted, &vec![(reason, 1)]);
            seen.push(Seen::Reason(reason.as_str()));
            return Ok(None);
        }
        (Ok(h), Ok(_)) => *h,
        (Ok(h), Err(e)) => return Err(TestCaseError::fail(format!("{h:?} but parse {e:?}"))),
    };
    let msg = parsed.as_ref().ok();
    match out {
        Handled::Audio | Handled::Dropped | Handled::Refused(_) => {
            prop_assert!(matches!(msg, Some(Inbound::AudioData(_))), "{:?}", out)
        }
        Handled::Metadata => prop_assert!(matches!(msg, Some(Inbound::AudioMetadata(_)))),
        Handled::Event => prop_assert!(matches!(
            msg,
            Some(
                Inbound::DtmfData(_)
                    | Inbound::TranscriptionData(_)
                    | Inbound::TranscriptionMetadata(_)
                    | Inbound::MarkData(_)
            )
        )),
        Handled::Unknown => {
            prop_assert!(matches!(msg, Some(Inbound::Unknown { .. })), "{:?}", msg)
        }
    }
    let mismatch = (BadFrame::LengthMismatch, 1);
    match out {
        Handled::Refused(why) => {
            prop_assert!(DROP_REASONS.contains(&why), "{:?}", why);
            prop_assert!(row(why)?.contains("dropped"), "{}", row(why)?);
            // the length check comes before the participant lookup
            let alone = counted == vec![(why, 1)];
            let with_mismatch = why == BadFrame::TooManyParticipants
                && (counted == vec![mismatch, (why, 1)] || counted == vec![(why, 1), mismatch]);
            prop_assert!(alone || with_mismatch, "{:?}: {:?}", why, counted);
            prop_assert_eq!(dropped, 0);
            seen.push(Seen::Reason(why.as_str()));
        }
        Handled::Audio => {
            prop_assert!(
                counted.is_empty() || counted == vec![mismatch],
                "{:?}",
                counted
            );
            if !counted.is_empty() {
                prop_assert!(row(BadFrame::LengthMismatch)?.contains("accepted"));
                seen.push(Seen::Reason("length_mismatch"));
            }
            prop_assert_eq!(dropped, 0);
            seen.push(Seen::Audio);
        }
        Handled::Dropped => {
            prop_assert!(
                counted.is_empty() || counted == vec![mismatch],
                "{:?}",
                counted
            );
            prop_assert_eq!(dropped, 1);
            seen.push(Seen::Dropped);
        }
        Handled::Metadata | Handled::Event | Handled::Unknown => {
            prop_assert!(counted.is_empty(), "{:?}: {:?}", out, counted);
            prop_assert_eq!(dropped, 0);
            seen.push(match out {
                Handled::Metadata => Seen::Metadata,
                Handled::Event => Seen::Event,
                _ => Seen::Unknown,
            });
        }
    }
    Ok(Some(out))
}

/// Coverage tally across the cases of one property.
#[derive(Default)]
struct Tally(RefCell<HashMap<Seen, u64>>);

impl Tally {
    fn add(&self, seen: &[Seen]) {
        let mut t = self.0.borrow_mut();
        for s in seen {
            *t.entry(*s).or_default() += 1;
        }
    }

    fn get(&self, s: Seen) -> u64 {
        self.0.borrow().get(&s).copied().unwrap_or(0)
    }

    fn require(&self, what: &[Seen]) {
        let t = self.0.borrow();
        let missing: Vec<_> = what.iter().filter(|s| !t.contains_key(s)).collect();
        assert!(missing.is_empty(), "never reached {missing:?}; tally {t:?}");
    }
}

fn reason(r: BadFrame) -> Seen {
    Seen::Reason(r.as_str())
}

// ---------------------------------------------------------------------------------------------
// Property 1: random input
// ---------------------------------------------------------------------------------------------

/// JSON fragments that steer random input towards the parser's interesting paths.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "\n",
    "\"kind\"",
    "\"Kind\"",
    "\"KIND\"",
    "\"AudioData\"",
    "\"audiodata\"",
    "\"audioData\"",
    "\"AudioData\"",
    "\"AudioMetadata\"",
    "\"audioMetadata\"",
    "\"DtmfData\"",
    "\"dtmfData\"",
    "\"TranscriptionData\"",
    "\"transcriptionData\"",
    "\"TranscriptionMetadata\"",
    "\"transcriptionMetadata\"",
    "\"MarkData\"",
    "\"markData\"",
    "\"data\"",
    "\"Data\"",
    "\"timestamp\"",
    "\"participantRawID\"",
    "\"participantRawId\"",
    "\"silent\"",
    "\"mark\"",
    "\"id\"",
    "\"sequence\"",
    "\"status\"",
    "\"sampleRate\"",
    "\"channels\"",
    "\"encoding\"",
    "\"length\"",
    "\"words\"",
    "\"text\"",
    "\"offset\"",
    "\"duration\"",
    "\"confidence\"",
    "\"resultStatus\"",
    "\"AQIDBAU=\"",
    "\"AAAA\"",
    "\"AQ\"",
    "\"2024-11-15T19:16:12.925Z\"",
    "\"2022-08-23T11:48:05Z\"",
    "\"8:acs:x\"",
    "\"\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "16000",
    "24000",
    "1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "0.5",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\u00e9\"",
    "\"é\"",
    "\"\\\\\"",
    "\"\\/\"",
    "\"…\"",
    "\"PCM\"",
    "\"Final\"",
    "\u{feff}",
    "\t",
];

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(select(TOKENS), 0..48).prop_map(|t| t.concat().into_bytes())
}

/// Objects of token pairs (`{"kind":"AudioData","data":null,…}`): mostly well-formed JSON with
/// duplicated keys, wrong types and missing parts, one level of nesting, and sometimes a stray
/// token.
fn object_soup() -> impl Strategy<Value = Vec<u8>> {
    let keys: Vec<&str> = TOKENS
        .iter()
        .copied()
        .filter(|t| t.starts_with('"'))
        .collect();
    let values: Vec<&str> = TOKENS
        .iter()
        .copied()
        .filter(|t| {
            !matches!(
                *t,
                "{" | "}" | "[" | "]" | ":" | "," | " " | "\n" | "\t" | "\u{feff}"
            )
        })
        .collect();
    let pair = (select(keys.clone()), select(values.clone())).prop_map(|(k, v)| format!("{k}:{v}"));
    let inner =
        prop::collection::vec(pair.clone(), 0..5).prop_map(|p| format!("{{{}}}", p.join(",")));
    let entry = prop_oneof![
        3 => pair,
        1 => (select(keys), inner).prop_map(|(k, o)| format!("{k}:{o}")),
    ];
    (
        prop::collection::vec(entry, 0..5),
        prop::option::weighted(0.2, (any::<Index>(), select(TOKENS))),
    )
        .prop_map(|(entries, noise)| {
            let mut s = format!("{{{}}}", entries.join(","));
            if let Some((at, t)) = noise {
                let mut i = at.index(s.len() + 1);
                while !s.is_char_boundary(i) {
                    i -= 1;
                }
                s.insert_str(i, t);
            }
            s.into_bytes()
        })
}

const KEYS: &[&str] = &[
    "kind",
    "Kind",
    "audioData",
    "AudioData",
    "audioMetadata",
    "dtmfData",
    "transcriptionData",
    "transcriptionMetadata",
    "markData",
    "data",
    "Data",
    "timestamp",
    "participantRawID",
    "silent",
    "mark",
    "id",
    "sequence",
    "status",
    "sampleRate",
    "channels",
    "encoding",
    "length",
    "subscriptionId",
    "text",
    "words",
    "offset",
    "duration",
    "confidence",
    "resultStatus",
    "format",
    "locale",
    "sentimentAnalysisResult",
    "sentiment",
    "x",
];

const STRINGS: &[&str] = &[
    "AudioData",
    "audiodata",
    "AudioMetadata",
    "DtmfData",
    "TranscriptionData",
    "TranscriptionMetadata",
    "MarkData",
    "Unknown",
    "",
    "AQIDBAU=",
    "AAAA",
    "AQ==",
    "AQ",
    "5ADw…",
    "2024-11-15T19:16:12.925Z",
    "2022-08-23T11:48:05Z",
    "9999-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00.000Z",
    "8:acs:3d20e1de",
    "PCM",
    "pcm",
    "Final",
    "Intermediate",
    "x\u{0}y",
    "é€😀",
    "\\",
    "\"",
];

/// Interesting JSON leaves.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        select(
            &[
                0i64,
                1,
                -1,
                2,
                8,
                640,
                16_000,
                24_000,
                48_000,
                i64::MIN,
                i64::MAX
            ][..]
        )
        .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        select(&[0.5f64, -0.0, 1e300, -1e-300, 16000.0][..]).prop_map(Value::from),
        select(STRINGS).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ]
}

/// Random JSON documents built from the protocol's keys and values.
fn json_doc() -> impl Strategy<Value = Vec<u8>> {
    let value = leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    });
    // a `kind` most of the time, a known one often, so payload rules are reached
    let kind = prop::option::weighted(
        0.7,
        prop_oneof![
            3 => select(&["AudioData", "AudioMetadata", "DtmfData", "TranscriptionData",
                "TranscriptionMetadata", "MarkData", "markdata"][..]).prop_map(Value::from),
            1 => leaf(),
        ],
    );
    (
        kind,
        prop::collection::vec((select(KEYS), value), 0..5),
        any::<bool>(),
    )
        .prop_map(|(kind, kv, pretty)| {
            let mut doc: serde_json::Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.into(), v)).collect();
            if let Some(k) = kind {
                doc.insert("kind".into(), k);
            }
            let doc = Value::Object(doc);
            if pretty {
                serde_json::to_vec_pretty(&doc).unwrap()
            } else {
                serde_json::to_vec(&doc).unwrap()
            }
        })
}

const CASES_BYTES: u32 = 2_500;
const CASES_TEXT: u32 = 2_000;
const CASES_JSON: u32 = 1_500;

#[test]
fn random_bytes_give_documented_outcomes() {
    let bench = Bench::new();
    let tally = Tally::default();
    run(
        CASES_BYTES,
        regressions!("random_bytes"),
        prop::collection::vec(any::<u8>(), 0..600),
        |b| {
            let mut seen = Vec::new();
            check_parser(&b, &mut seen)?;
            bench.check(&b, &mut seen)?;
            tally.add(&seen);
            Ok(())
        },
    );
    if full_run(CASES_BYTES) {
        tally.require(&[reason(BadFrame::NotUtf8), reason(BadFrame::MalformedJson)]);
    }
}

#[test]
fn random_text_and_token_soup_give_documented_outcomes() {
    let bench = Bench::new();
    let tally = Tally::default();
    let input = prop_oneof![
        1 => any::<String>().prop_map(String::into_bytes),
        1 => "\\PC{0,200}".prop_map(String::into_bytes),
        2 => token_soup(),
        3 => object_soup(),
    ];
    run(CASES_TEXT, regressions!("random_text"), input, |b| {
        let mut seen = Vec::new();
        check_parser(&b, &mut seen)?;
        bench.check(&b, &mut seen)?;
        tally.add(&seen);
        Ok(())
    });
    if full_run(CASES_TEXT) {
        tally.require(&[
            reason(BadFrame::MalformedJson),
            reason(BadFrame::MissingKind),
            Seen::Parsed,
        ]);
    }
}

#[test]
fn random_json_documents_give_documented_outcomes() {
    let bench = Bench::new();
    let tally = Tally::default();
    run(CASES_JSON, regressions!("random_json"), json_doc(), |b| {
        let mut seen = Vec::new();
        check_parser(&b, &mut seen)?;
        bench.check(&b, &mut seen)?;
        tally.add(&seen);
        Ok(())
    });
    if full_run(CASES_JSON) {
        tally.require(&[
            reason(BadFrame::MalformedJson),
            reason(BadFrame::MissingKind),
            reason(BadFrame::MissingPayload),
            Seen::Unknown,
        ]);
    }
}

// ---------------------------------------------------------------------------------------------
// Property 2: structured mutations of the protocol vectors
// ---------------------------------------------------------------------------------------------

/// The committed inbound and outbound media vectors, plus ACS-shaped 20 ms frames (the committed
/// AudioData vectors carry only a few bytes of audio).
fn bases() -> &'static [Vec<u8>] {
    static BASES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    BASES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/vectors");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("fixtures/vectors")
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("ws_") && n.ends_with(".json"))
            .collect();
        names.sort();
        assert!(names.len() >= 15, "{names:?}");
        let mut v: Vec<Vec<u8>> = names
            .iter()
            .map(|n| std::fs::read(format!("{dir}/{n}")).unwrap())
            .collect();
        for (rate, who) in [
            (16_000u32, None),
            (16_000, Some("8:acs:3d20e1de")),
            (24_000, None),
        ] {
            let pcm: Vec<u8> = (0..rate / 50)
                .flat_map(|i| ((i as i16).wrapping_mul(97)).to_le_bytes())
                .collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(pcm);
            let mut m = String::new();
            inbound_audio_data_json(&mut m, &b64, "2024-11-15T19:16:12.925Z", who, false);
            v.push(m.into_bytes());
        }
        v.push(inbound_audio_metadata_json(24_000, "sub").into_bytes());
        v
    })
}

/// Indices of the AudioData frames among [`bases`].
fn audio_bases() -> &'static [usize] {
    static AUDIO: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    AUDIO.get_or_init(|| {
        let v: Vec<usize> = (0..bases().len())
            .filter(|i| matches!(parse_inbound(&bases()[*i]), Ok(Inbound::AudioData(_))))
            .collect();
        assert!(v.len() >= 5, "{v:?}");
        v
    })
}

/// A JSON value to put somewhere, or raw JSON text (for numbers serde_json's `Value` cannot
/// hold, like `1e400`).
#[derive(Debug, Clone)]
enum Put {
    Json(Value),
    Raw(&'static str),
}

const RAW_NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "-0",
    "0.0000000000000000000000001",
    "1E2",
    "00",
    "-",
    "+1",
    ".5",
    "NaN",
    "Infinity",
];

fn put() -> impl Strategy<Value = Put> {
    prop_oneof![
        4 => leaf().prop_map(Put::Json),
        1 => select(RAW_NUMBERS).prop_map(Put::Raw),
        1 => Just(Put::Json(json!([]))),
        1 => Just(Put::Json(json!({}))),
        1 => Just(Put::Json(json!({"id": 7, "sequence": -1}))),
        1 => Just(Put::Json(json!([1, "a", null, {"x": []}]))),
    ]
}

/// Hostile values for one named field.
fn field_value(field: &'static str) -> BoxedStrategy<Put> {
    let s = |v: &'static [&'static str]| select(v).prop_map(|s| Put::Json(s.into())).boxed();
    match field {
        "data" => prop_oneof![
            // valid base64 of 0..2000 bytes (odd, even, empty), sometimes broken
            (prop::collection::vec(any::<u8>(), 0..2000), 0u8..8, any::<Index>()).prop_map(
                |(bytes, how, at)| {
                    let mut b = base64::engine::general_purpose::STANDARD.encode(bytes);
                    match how {
                        0 if !b.is_empty() => {
                            b.truncate(b.len() - 1);
                        }
                        1 => b.insert(at.index(b.len() + 1), '…'),
                        2 => b.insert(at.index(b.len() + 1), ' '),
                        3 => b.insert(at.index(b.len() + 1), '='),
                        4 => b = b.replace('+', "-").replace('/', "_").replace('=', ""),
                        _ => {}
                    }
                    Put::Json(b.into())
                }
            ),
            // big: up to just over a second at 16 kHz
            (31_990usize..32_010).prop_map(|n| Put::Json(
                base64::engine::general_purpose::STANDARD
                    .encode(vec![7u8; n])
                    .into()
            )),
            s(&["", "=", "====", "AA==AA==", "5ADwAOMA6AD0A…", "\u{0}", "QQ", "QQ=", "QUJD"]),
            put(),
        ]
        .boxed(),
        "timestamp" => prop_oneof![
            any::<i64>().prop_map(|ms| {
                let mut t = String::new();
                format_timestamp(ms, &mut t);
                Put::Json(t.into())
            }),
            (-62_167_219_200_000i64..253_402_300_799_999).prop_map(|ms| {
                let mut t = String::new();
                format_timestamp(ms, &mut t);
                Put::Json(t.into())
            }),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?"
                .prop_map(|t| Put::Json(t.into())),
            s(&[
                "0000-01-01T00:00:00.000Z",
                "9999-12-31T23:59:59.999Z",
                "9999-12-31T23:59:60.999-23:59",
                "0000-01-01T00:00:00.000+23:59",
                "2024-02-29T23:59:60.5Z",
                "2023-02-29T00:00:00.000Z",
                "2024-11-15T19:16:12.123456789Z",
                "2024-11-15T19:16:12.1234567890Z",
                "2024-11-15T19:16:12Z",
                "2024-11-15T19:16:12.925",
                "+010000-01-01T00:00:00.000Z",
                "-000001-01-01T00:00:00.000Z",
                "",
                "now",
            ]),
            put(),
        ]
        .boxed(),
        "participantRawID" => prop_oneof![
            (0usize..3, prop_oneof![Just(510usize), 511..514usize, Just(4096), Just(70_000)])
                .prop_map(|(c, n)| {
                    let unit = ["a", "é", "€"][c];
                    Put::Json(unit.repeat(n / unit.len() + usize::from(c > 0)).into())
                }),
            "\\PC{0,40}".prop_map(|p| Put::Json(p.into())),
            s(&["", "8:acs:a", "8:acs:b", "4:+14255550123", "x\u{0}", "\\"]),
            put(),
        ]
        .boxed(),
        "silent" => prop_oneof![
            any::<bool>().prop_map(|b| Put::Json(b.into())),
            put()
        ]
        .boxed(),
        "kind" => prop_oneof![
            s(&[
                "AudioData", "audiodata", "AUDIODATA", "AudioMetadata", "DtmfData",
                "TranscriptionData", "TranscriptionMetadata", "MarkData", "markdata",
                "StopAudio", "", "Audio Data", "AudioDatа",
            ]),
            "[A-Za-z]{0,20}".prop_map(|k| Put::Json(k.into())),
            put(),
        ]
        .boxed(),
        "sampleRate" | "channels" | "length" => prop_oneof![
            select(&[0i64, 1, 2, 8, 640, 8_000, 16_000, 24_000, 48_000, -1, 65_536, 4_294_967_296][..])
                .prop_map(|n| Put::Json(n.into())),
            put(),
        ]
        .boxed(),
        "encoding" => prop_oneof![s(&["PCM", "pcm", "Pcm", "opus", "PCM16", ""]), put()].boxed(),
        _ => put().boxed(),
    }
}

const FIELDS: &[&str] = &[
    "data",
    "timestamp",
    "participantRawID",
    "silent",
    "kind",
    "sampleRate",
    "channels",
    "encoding",
    "length",
    "mark",
    "id",
    "sequence",
    "text",
    "words",
    "offset",
    "confidence",
    "resultStatus",
];

/// Text inserted after a `{` of the rendered JSON: duplicated and conflicting keys.
const INSERTS: &[&str] = &[
    "\"kind\":\"AudioData\",",
    "\"Kind\":\"AudioData\",",
    "\"kind\":\"Nope\",",
    "\"kind\":null,",
    "\"audioData\":{\"data\":\"AAAA\"},",
    "\"audioData\":null,",
    "\"AudioMetadata\":{\"sampleRate\":24000},",
    "\"data\":\"AAAA\",",
    "\"data\":null,",
    "\"Data\":\"AQ==\",",
    "\"silent\":true,",
    "\"timestamp\":\"2024-11-15T19:16:12.925Z\",",
    "\"participantRawID\":\"x\",",
    "\"participantRawId\":\"y\",",
    "\"mark\":{\"id\":1},",
    "\"x\":[[[[[[[[]]]]]]]],",
    "\"data\":\"AQ\\u003d\\u003d\",",
];

/// Bytes that matter to JSON and UTF-8.
const BYTES: &[u8] = b"{}[]:,\"\\ \t\n\r0123456789-+.eEtfnulAaDdkislent=/\x00\x01\x7f\x80\xbf\xc3\xa9\xe2\x82\xac\xed\xa0\x80\xf0\xff";

#[derive(Debug, Clone)]
enum JsonOp {
    /// Replace the value at the `Index`-th node (preorder).
    Replace(Index, Put),
    /// Set a named field in the payload object (or `kind` at the top).
    Field(&'static str, Put),
    /// Remove a key of the `Index`-th object.
    Remove(Index, Index),
    /// Change a key's case (upper, lower, Pascal).
    Recase(Index, Index, u8),
    /// Wrap a node in `depth` arrays.
    Nest(Index, usize),
}

#[derive(Debug, Clone)]
enum ByteOp {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate(Index, usize),
    Truncate(Index),
}

#[derive(Debug, Clone)]
struct Mutation {
    /// `(audio only, which)`: half the cases mutate an AudioData frame, the hot path.
    base: (bool, Index),
    json: Vec<JsonOp>,
    pretty: bool,
    inserts: Vec<(Index, &'static str)>,
    bytes: Vec<ByteOp>,
}

fn json_op() -> impl Strategy<Value = JsonOp> {
    prop_oneof![
        2 => (any::<Index>(), put()).prop_map(|(i, p)| JsonOp::Replace(i, p)),
        6 => select(FIELDS).prop_flat_map(|f| field_value(f).prop_map(move |p| JsonOp::Field(f, p))),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(o, k)| JsonOp::Remove(o, k)),
        1 => (any::<Index>(), any::<Index>(), 0u8..3).prop_map(|(o, k, c)| JsonOp::Recase(o, k, c)),
        1 => (any::<Index>(), prop_oneof![1usize..8, 120usize..140, Just(1000)])
            .prop_map(|(i, d)| JsonOp::Nest(i, d)),
    ]
}

fn byte_op() -> impl Strategy<Value = ByteOp> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteOp::Flip(i, b)),
        (any::<Index>(), select(BYTES)).prop_map(|(i, b)| ByteOp::Set(i, b)),
        (any::<Index>(), prop::collection::vec(select(BYTES), 1..4))
            .prop_map(|(i, b)| ByteOp::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| ByteOp::Delete(i, n)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteOp::Duplicate(i, n)),
        (any::<Index>()).prop_map(ByteOp::Truncate),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        (any::<bool>(), any::<Index>()),
        prop_oneof![
            2 => Just(Vec::new()),
            3 => prop::collection::vec(json_op(), 1..4),
        ],
        any::<bool>(),
        prop::collection::vec((any::<Index>(), select(INSERTS)), 0..2),
        prop_oneof![
            3 => Just(Vec::new()),
            2 => prop::collection::vec(byte_op(), 1..4),
        ],
    )
        .prop_map(|(base, json, pretty, inserts, bytes)| Mutation {
            base,
            json,
            pretty,
            inserts,
            bytes,
        })
}

/// Paths (object keys / array indices) of every node, preorder.
fn paths(v: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(PathStep::I(i));
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                at.push(PathStep::K(k.clone()));
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    I(usize),
    K(String),
}

fn node<'a>(v: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        PathStep::I(i) => &mut v[*i],
        PathStep::K(k) => &mut v[k.as_str()],
    })
}

/// Raw JSON texts are carried as strings `"<RAW_MARK><n><U+0001>"` naming `raws[n]`, and spliced in
/// after rendering ([`splice_raw`]).
const RAW_MARK: &str = "\u{1}RAW:";

fn raw_value(text: String, raws: &mut Vec<String>) -> Value {
    raws.push(text);
    Value::String(format!("{RAW_MARK}{}\u{1}", raws.len() - 1))
}

fn put_value(p: &Put, raws: &mut Vec<String>) -> Value {
    match p {
        Put::Json(v) => v.clone(),
        Put::Raw(r) => raw_value((*r).to_string(), raws),
    }
}

fn apply_json(v: &mut Value, op: &JsonOp, raws: &mut Vec<String>) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let objects: Vec<_> = all
        .iter()
        .filter(|p| node(v, p).is_object())
        .cloned()
        .collect();
    match op {
        JsonOp::Replace(i, p) => *node(v, &all[i.index(all.len())]) = put_value(p, raws),
        JsonOp::Field(f, p) => {
            let Value::Object(top) = v else { return };
            if *f == "kind" {
                top.insert("kind".into(), put_value(p, raws));
                return;
            }
            // the payload: the first object-valued top-level key
            if let Some(Value::Object(payload)) = top.values_mut().find(|x| x.is_object()) {
                let target = match *f {
                    "id" | "sequence" => match payload.entry("mark").or_insert(json!({})) {
                        Value::Object(m) => m,
                        _ => return,
                    },
                    _ => payload,
                };
                target.insert((*f).into(), put_value(p, raws));
            }
        }
        JsonOp::Remove(o, k) | JsonOp::Recase(o, k, _) => {
            if objects.is_empty() {
                return;
            }
            let Value::Object(obj) = node(v, &objects[o.index(objects.len())]) else {
                return;
            };
            if obj.is_empty() {
                return;
            }
            let key = obj.keys().nth(k.index(obj.len())).unwrap().clone();
            let val = obj.remove(&key).unwrap();
            if let JsonOp::Recase(_, _, c) = op {
                let new = match c {
                    0 => key.to_uppercase(),
                    1 => key.to_lowercase(),
                    _ => {
                        let mut k = key.clone();
                        if let Some(f) = k.get_mut(0..1) {
                            f.make_ascii_uppercase();
                        }
                        k
                    }
                };
                obj.insert(new, val);
            }
        }
        JsonOp::Nest(i, depth) => {
            // as text: a deep `Value` would overflow the test's own stack (serde_json's
            // serializer and `Drop` recurse), not the parser's
            let n = node(v, &all[i.index(all.len())]);
            let text = format!("{}{}{}", "[".repeat(*depth), n.take(), "]".repeat(*depth));
            *n = raw_value(text, raws);
        }
    }
}

fn apply_bytes(b: &mut Vec<u8>, op: &ByteOp) {
    let len = b.len();
    match op {
        ByteOp::Flip(i, bit) if len > 0 => b[i.index(len)] ^= 1 << bit,
        ByteOp::Set(i, x) if len > 0 => b[i.index(len)] = *x,
        ByteOp::Insert(i, x) => {
            let at = i.index(len + 1);
            b.splice(at..at, x.iter().copied());
        }
        ByteOp::Delete(i, n) if len > 0 => {
            let at = i.index(len);
            b.drain(at..(at + n).min(len));
        }
        ByteOp::Duplicate(i, n) if len > 0 => {
            let at = i.index(len);
            let chunk = b[at..(at + n).min(len)].to_vec();
            b.splice(at..at, chunk);
        }
        ByteOp::Truncate(i) => b.truncate(i.index(len + 1)),
        _ => {}
    }
}

/// Replaces every raw marker string (serde_json writes U+0001 as `\u0001`) by its text, which
/// may hold markers itself.
fn splice_raw(mut s: String, raws: &[String]) -> String {
    let open = "\"\\u0001RAW:";
    let close = "\\u0001\"";
    while let Some(start) = s.find(open) {
        let Some(e) = s[start + open.len()..].find(close) else {
            break;
        };
        let raw_end = start + open.len() + e;
        let n: usize = s[start + open.len()..raw_end].parse().unwrap();
        s.replace_range(start..raw_end + close.len(), &raws[n]);
    }
    s
}

/// Renders a mutation of one base.
fn render(m: &Mutation) -> Vec<u8> {
    let bases = bases();
    let base = if m.base.0 {
        let audio = audio_bases();
        &bases[audio[m.base.1.index(audio.len())]]
    } else {
        &bases[m.base.1.index(bases.len())]
    };
    let mut text = match serde_json::from_slice::<Value>(base) {
        Ok(mut v) if !m.json.is_empty() || m.pretty => {
            let mut raws = Vec::new();
            for op in &m.json {
                apply_json(&mut v, op, &mut raws);
            }
            let s = if m.pretty {
                serde_json::to_string_pretty(&v)
            } else {
                serde_json::to_string(&v)
            };
            splice_raw(s.unwrap(), &raws)
        }
        _ => String::from_utf8(base.clone()).unwrap(),
    };
    for (at, ins) in &m.inserts {
        let braces: Vec<_> = text.match_indices('{').map(|(i, _)| i).collect();
        if !braces.is_empty() {
            let i = braces[at.index(braces.len())] + 1;
            text.insert_str(i, ins);
        }
    }
    let mut b = text.into_bytes();
    for op in &m.bytes {
        apply_bytes(&mut b, op);
    }
    b
}

const CASES_MUTATION: u32 = 3_000;

#[test]
fn mutated_vectors_give_documented_outcomes() {
    // the raw-text splice works
    let mut raws = Vec::new();
    let mut doc = json!({"kind": put_value(&Put::Raw("1e400"), &mut raws), "a": [put_value(&Put::Raw("-0"), &mut raws)]});
    let nest = raw_value(format!("[{}]", doc["a"]), &mut raws);
    doc["a"] = nest;
    let spliced = splice_raw(serde_json::to_string(&doc).unwrap(), &raws);
    assert!(
        spliced.contains(r#""kind":1e400"#)
            && spliced.contains("[[-0]]")
            && !spliced.contains("RAW"),
        "{spliced}"
    );
    let bench = Bench::new();
    let tally = Tally::default();
    run(
        CASES_MUTATION,
        regressions!("mutated_vectors"),
        mutation(),
        |m| {
            let b = render(&m);
            let mut seen = Vec::new();
            check_parser(&b, &mut seen)?;
            bench.check(&b, &mut seen)?;
            tally.add(&seen);
            Ok(())
        },
    );
    if full_run(CASES_MUTATION) {
        let mut want: Vec<Seen> = PROTOCOL_REASONS.iter().map(|r| reason(*r)).collect();
        want.extend(
            DROP_REASONS
                .iter()
                .filter(|r| **r != BadFrame::TooManyParticipants)
                .map(|r| reason(*r)),
        );
        want.extend([
            reason(BadFrame::UnsupportedFormat),
            reason(BadFrame::LengthMismatch),
            Seen::FastPath,
            Seen::Audio,
            Seen::Metadata,
            Seen::Event,
            Seen::Unknown,
        ]);
        tally.require(&want);
        // mutations that keep ACS's exact shape must keep the fast path busy
        assert!(
            tally.get(Seen::FastPath) * 20 > u64::from(cases(CASES_MUTATION)),
            "fast path taken {} times",
            tally.get(Seen::FastPath)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property 3: the pipeline fed hostile sequences
// ---------------------------------------------------------------------------------------------

/// What a sink saw, in order.
#[derive(Debug, Clone)]
enum Rec {
    Open(Arc<StreamInfo>),
    Audio {
        stream: StreamId,
        call: u64,
        pos: u64,
        rate: u32,
        samples: Vec<i16>,
    },
    Gap {
        stream: StreamId,
        samples: u64,
    },
    Event(CallEvent),
    Close {
        stream: StreamId,
        stats: StreamStats,
    },
    End,
}

struct Recorder(Arc<Mutex<Vec<Rec>>>);

impl Sink for Recorder {
    fn kind(&self) -> &'static str {
        "recorder"
    }
    fn open(&mut self, stream: &Arc<StreamInfo>) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Open(stream.clone()));
        Ok(())
    }
    fn write(&mut self, f: &AudioFrame) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Audio {
            stream: f.stream,
            call: f.call,
            pos: f.pos,
            rate: f.sample_rate,
            samples: f.samples().to_vec(),
        });
        Ok(())
    }
    fn gap(&mut self, _call: u64, stream: StreamId, samples: u64) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Gap { stream, samples });
        Ok(())
    }
    fn event(&mut self, _call: &Arc<CallInfo>, event: &CallEvent) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Event(event.clone()));
        Ok(())
    }
    fn close(
        &mut self,
        _call: u64,
        stream: StreamId,
        stats: &StreamStats,
    ) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::Close {
            stream,
            stats: *stats,
        });
        Ok(())
    }
    fn end_call(&mut self, _call: &Arc<CallInfo>, _r: &EndReason) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Rec::End);
        Ok(())
    }
}

/// Participants a scenario picks from: mixed (absent / empty), ordinary ids, ids at and over the
/// length limit (in bytes, with multi-byte characters).
fn who(i: usize) -> Option<String> {
    match i {
        0 => None,
        1 => Some(String::new()),
        2 => Some("8:acs:alice".into()),
        3 => Some("8:acs:bob".into()),
        4 => Some("4:+14255550123".into()),
        5 => Some("28:6b45c5b6-1c34-47c0-8980-11e98d47d23f".into()),
        6 => Some("8:acs:ü€😀".into()),
        7 => Some("a".repeat(MAX_PARTICIPANT_ID_LEN)),
        8 => Some("€".repeat(MAX_PARTICIPANT_ID_LEN / 3) + "ab"), // 512 bytes
        9 => Some("a".repeat(MAX_PARTICIPANT_ID_LEN + 1)),
        _ => Some("€".repeat(MAX_PARTICIPANT_ID_LEN / 3 + 1)), // 513 bytes
    }
}
const WHO: usize = 11;

/// First frame time: 2024-11-15T19:16:12.925Z.
const T0: i64 = 1_731_698_172_925;

#[derive(Debug, Clone)]
enum Ts {
    None,
    /// In step: the participant's own frame count × 20 ms, plus jitter.
    Seq(i64),
    /// Anywhere within ±`n` ms of T0.
    Near(i64),
    /// A fixed text (extremes, imprecise, invalid).
    Text(&'static str),
    Any(i64),
}

#[derive(Debug, Clone)]
enum Size {
    /// 20 ms at the current rate.
    Frame,
    Bytes(usize),
    /// The largest accepted payload (1 s), or one sample more.
    Max(bool),
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Zero,
    Tone,
    Noise,
    Full,
}

#[derive(Debug, Clone)]
enum Op {
    Meta {
        rate: u32,
        channels: Option<u16>,
        encoding: Option<&'static str>,
    },
    Audio {
        who: usize,
        ts: Ts,
        size: Size,
        silent: bool,
        level: Level,
        bad_b64: bool,
    },
    /// `n` frames in step from one participant.
    Run {
        who: usize,
        n: usize,
        silent: bool,
        level: Level,
    },
    Dtmf(usize),
    Transcription,
    Mark(Option<u64>),
    Unknown,
}

#[derive(Debug, Clone)]
struct Scenario {
    max_participants: usize,
    rate: u32,
    ring_capacity_ms: u32,
    max_gap_fill_ms: u32,
    resync_after_late: u32,
    mix_unmixed: bool,
    mix_latency_ms: u32,
    ops: Vec<Op>,
}

fn ts() -> impl Strategy<Value = Ts> {
    prop_oneof![
        2 => Just(Ts::None),
        8 => (-15i64..15).prop_map(Ts::Seq),
        2 => prop_oneof![Just(1_000i64), Just(100_000), Just(10_000_000)]
            .prop_flat_map(|n| (-n..n).prop_map(Ts::Near)),
        1 => select(&[
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "9999-12-31T23:59:60.999-23:59",
            "0000-01-01T00:00:00.001+23:59",
            "2024-11-15T19:16:12Z",
            "2024-11-15T19:16:12.925",
            "garbage",
            "",
        ][..])
        .prop_map(Ts::Text),
        1 => (-62_167_219_200_000i64..253_402_300_799_999).prop_map(Ts::Any),
    ]
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        1 => Just(Level::Zero),
        2 => Just(Level::Tone),
        1 => Just(Level::Noise),
        1 => Just(Level::Full)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (
            prop_oneof![4 => select(&[16_000u32, 24_000][..]), 1 => select(&[0u32, 8_000, 44_100, 48_000][..])],
            prop_oneof![4 => Just(None), 1 => Just(Some(1u16)), 1 => Just(Some(2)), 1 => Just(Some(0))],
            prop_oneof![4 => Just(None), 1 => Just(Some("PCM")), 1 => Just(Some("pcm")), 1 => Just(Some("opus"))],
        )
            .prop_map(|(rate, channels, encoding)| Op::Meta {
                rate,
                channels,
                encoding
            }),
        12 => (
            0..WHO,
            ts(),
            prop_oneof![
                8 => Just(Size::Frame),
                2 => prop_oneof![3 => 0usize..3000, 1 => 0usize..4].prop_map(Size::Bytes),
                1 => any::<bool>().prop_map(Size::Max),
            ],
            any::<bool>(),
            level(),
            prop::bool::weighted(0.05),
        )
            .prop_map(|(who, ts, size, silent, level, bad_b64)| Op::Audio {
                who,
                ts,
                size,
                silent,
                level,
                bad_b64
            }),
        4 => (0..6usize, 1usize..16, any::<bool>(), level())
            .prop_map(|(who, n, silent, level)| Op::Run { who, n, silent, level }),
        1 => (0..WHO).prop_map(Op::Dtmf),
        1 => Just(Op::Transcription),
        1 => any::<Option<u64>>().prop_map(Op::Mark),
        1 => Just(Op::Unknown),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1usize..6,
        select(&[16_000u32, 24_000][..]),
        select(&[100u32, 300, 500, 2_000][..]),
        select(&[0u32, 20, 100, 1_000, 60_000, 600_000][..]),
        select(&[1u32, 2, 25, 10_000][..]),
        prop::bool::weighted(0.8),
        select(&[20u32, 200][..]),
        prop::collection::vec(op(), 1..24),
    )
        .prop_map(
            |(max_participants, rate, ring, gap, late, mix, latency, ops)| Scenario {
                max_participants,
                rate,
                // valid settings only: the ring holds at least the mixer's latency + 100 ms
                ring_capacity_ms: ring.max(latency + 100),
                max_gap_fill_ms: gap,
                resync_after_late: late,
                mix_unmixed: mix,
                mix_latency_ms: latency,
                ops,
            },
        )
}

/// One AudioData message as sent, and what the rules predict for it.
#[derive(Debug)]
struct Sent {
    /// `(epoch, key)` of the stream it belongs to.
    stream: (u32, String),
    bytes: usize,
    silent: bool,
    pcm: Vec<i16>,
    expect: Option<BadFrame>,
    mismatch: bool,
}

/// The test's model of the documented rules: the call's rate and participants.
struct Model {
    rate: u32,
    keys: Vec<String>,
    max: usize,
    frame_no: HashMap<String, i64>,
    seed: u32,
    /// Bumped when a format change closes the streams.
    epoch: u32,
    /// `(epoch, key)` of every stream the rules say opens, in order.
    created: Vec<(u32, String)>,
}

impl Model {
    fn samples(&mut self, n: usize, level: Level, k: i64) -> Vec<i16> {
        (0..n)
            .map(|i| match level {
                Level::Zero => 0,
                Level::Tone => (((k as usize * n + i) as f64 * 0.2).sin() * 8000.0) as i16,
                Level::Noise => {
                    self.seed = self
                        .seed
                        .wrapping_mul(1_664_525)
                        .wrapping_add(1_013_904_223);
                    (self.seed >> 16) as i16
                }
                Level::Full => {
                    if i % 2 == 0 {
                        i16::MAX
                    } else {
                        i16::MIN
                    }
                }
            })
            .collect()
    }

    /// Builds one AudioData message and its expected outcome.
    #[allow(clippy::too_many_arguments)]
    fn audio(
        &mut self,
        who_i: usize,
        ts: &Ts,
        size: &Size,
        silent: bool,
        level: Level,
        bad_b64: bool,
    ) -> (String, Sent) {
        let pid = who(who_i);
        let key = pid.clone().unwrap_or_default();
        let k = *self.frame_no.entry(key.clone()).or_default();
        self.frame_no.insert(key.clone(), k + 1);
        let frame_bytes = self.rate as usize / 50 * 2;
        let bytes = match size {
            Size::Frame => frame_bytes,
            Size::Bytes(n) => *n,
            Size::Max(over) => {
                self.rate as usize * 2 * MAX_PAYLOAD_MS / 1000 + 2 * usize::from(*over)
            }
        };
        let pcm = self.samples(bytes / 2, level, k);
        let mut raw: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        if bytes % 2 == 1 {
            raw.push(0x5a);
        }
        let mut b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        if bad_b64 {
            b64.insert(b64.len() / 2, '*');
        }
        let mut t = String::new();
        match ts {
            Ts::None => {}
            Ts::Seq(j) => format_timestamp(T0 + 20 * k + j, &mut t),
            Ts::Near(d) => format_timestamp(T0 + d, &mut t),
            Ts::Any(ms) => format_timestamp(*ms, &mut t),
            Ts::Text(s) => t.push_str(s),
        }
        let mut msg = String::new();
        inbound_audio_data_json(&mut msg, &b64, &t, pid.as_deref(), silent);
        if matches!(ts, Ts::None) {
            msg = msg.replacen(r#""timestamp":"","#, "", 1);
        }
        let pkey = pid.as_deref().filter(|p| !p.is_empty()).map(str::to_owned);
        let (expect, mismatch) = if pkey
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PARTICIPANT_ID_LEN)
        {
            (Some(BadFrame::ParticipantIdTooLong), false)
        } else if bad_b64 {
            (Some(BadFrame::BadBase64), false)
        } else if bytes == 0 {
            (Some(BadFrame::Empty), false)
        } else if bytes % 2 == 1 {
            (Some(BadFrame::OddLength), false)
        } else if bytes > self.rate as usize * 2 * MAX_PAYLOAD_MS / 1000 {
            (Some(BadFrame::TooLong), false)
        } else {
            let mismatch = bytes != frame_bytes;
            let k = pkey.clone().unwrap_or_default();
            if self.keys.contains(&k) {
                (None, mismatch)
            } else if self.keys.len() >= self.max {
                (Some(BadFrame::TooManyParticipants), mismatch)
            } else {
                self.keys.push(k.clone());
                self.created.push((self.epoch, k));
                (None, mismatch)
            }
        };
        (
            msg,
            Sent {
                stream: (self.epoch, pkey.clone().unwrap_or_default()),
                bytes,
                silent,
                pcm,
                expect,
                mismatch,
            },
        )
    }
}

/// Per-stream bookkeeping of what the sink saw.
#[derive(Debug, Default)]
struct StreamSeen {
    info: Option<Arc<StreamInfo>>,
    pos: u64,
    audio: Vec<i16>,
    frames: u64,
    gaps: u64,
    closed: Option<StreamStats>,
    speech_at: Option<u64>,
    joined: bool,
    left: bool,
}

fn audio_data_total(m: &Metrics) -> u64 {
    scrape_value(&m.render(), "acs_gateway_frames_total{kind=\"audio_data\"}").unwrap_or(0.0) as u64
}

fn run_scenario(sc: &Scenario, metrics: &Arc<Metrics>, tally: &Tally) -> Result<(), TestCaseError> {
    let cfg = PipelineConfig {
        default_sample_rate: sc.rate,
        max_participants: sc.max_participants,
        ring_capacity_ms: sc.ring_capacity_ms,
        timeline: acs_media_gateway::pipeline::timeline::TimelineConfig {
            max_gap_fill_ms: sc.max_gap_fill_ms,
            // The wall-clock fill budget never binds here (no elapsed time is handed in): the
            // model below predicts fills up to `max_gap_fill_ms`. The budget and its outliers
            // have their own tests (timeline's unit tests, tests/timestamp_abuse.rs).
            gap_fill_slack_ms: u32::MAX,
            resync_after_late: sc.resync_after_late,
        },
        mix_unmixed: sc.mix_unmixed,
        mix_latency_ms: sc.mix_latency_ms,
        ..PipelineConfig::default()
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    // drained after every message: room for one message's frames (1 s = 50 blocks) is enough
    let q = QueueConfig {
        audio_capacity: 512,
        control_reserve: 1024,
        ..QueueConfig::default()
    };
    let (handle, mut sink) = ManualSink::new(
        Box::new(Recorder(log.clone())),
        &q,
        metrics.sink("recorder"),
    );
    let sink_metrics = metrics.sink("recorder");
    let (errors0, drops0) = (
        sink_metrics.write_errors.get(),
        sink_metrics.audio_drops.get(),
    );
    let pipeline = Pipeline::new(cfg, FanOut::new(vec![handle]), metrics.clone());
    let mut call = pipeline.start_call(Some("proptest".into()), None, None, 1_700_000_000_000);
    let call_id = call.call().id;

    let before = Counts::of(metrics);
    let audio0 = audio_data_total(metrics);
    let (parts0, pool0, bytes0) = (
        metrics.participants.get(),
        metrics.frame_pool_exhausted.get(),
        metrics.audio_bytes.get(),
    );
    let mut model = Model {
        rate: sc.rate,
        keys: Vec::new(),
        max: sc.max_participants,
        frame_no: HashMap::new(),
        seed: 1,
        epoch: 0,
        created: Vec::new(),
    };
    // every AudioData and its outcome
    let mut sent: Vec<(Sent, Handled)> = Vec::new();
    let mut events = 0usize;
    let mut seen = Vec::new();
    let mut messages: Vec<(String, Option<Sent>)> = Vec::new();
    for op in &sc.ops {
        messages.clear();
        match op {
            Op::Meta {
                rate,
                channels,
                encoding,
            } => {
                let mut meta = json!({"subscriptionId": "sub", "sampleRate": rate});
                if let Some(c) = channels {
                    meta["channels"] = json!(c);
                }
                if let Some(e) = encoding {
                    meta["encoding"] = json!(e);
                }
                let msg = json!({"kind": "AudioMetadata", "audioMetadata": meta}).to_string();
                let ok = (*rate == 16_000 || *rate == 24_000)
                    && channels.is_none_or(|c| c == 1)
                    && encoding.is_none_or(|e| e.eq_ignore_ascii_case("pcm"));
                let r = check_handle(&mut call, metrics, msg.as_bytes(), &mut seen)?;
                sink.drain();
                if ok {
                    prop_assert_eq!(r, Some(Handled::Metadata));
                    if *rate != model.rate && !model.keys.is_empty() {
                        model.keys.clear();
                        model.epoch += 1;
                    }
                    model.rate = *rate;
                } else {
                    // check_handle saw close 1003 counted as unsupported_format
                    prop_assert_eq!(r, None);
                }
                prop_assert_eq!(call.sample_rate(), model.rate);
                continue;
            }
            Op::Audio {
                who,
                ts,
                size,
                silent,
                level,
                bad_b64,
            } => {
                let (m, s) = model.audio(*who, ts, size, *silent, *level, *bad_b64);
                messages.push((m, Some(s)));
            }
            Op::Run {
                who,
                n,
                silent,
                level,
            } => {
                for _ in 0..*n {
                    let (m, s) = model.audio(*who, &Ts::Seq(0), &Size::Frame, *silent, *level, false);
                    messages.push((m, Some(s)));
                }
            }
            Op::Dtmf(w) => {
                let p = who(*w).map_or(String::new(), |p| format!(r#","participantRawID":{}"#, json!(p)));
                messages.push((
                    format!(r#"{{"kind":"DtmfData","dtmfData":{{"data":"5","timestamp":"2024-11-15T19:16:12.925Z"{p}}}}}"#),
                    None,
                ));
            }
            Op::Transcription => messages.push((
                r#"{"kind":"TranscriptionData","transcriptionData":{"text":"hi","resultStatus":"Final","offset":18446744073709551615}}"#.into(),
                None,
            )),
            Op::Mark(id) => messages.push((
                json!({"kind": "MarkData", "markData": {"id": id, "status": "completed"}}).to_string(),
                None,
            )),
            Op::Unknown => messages.push((r#"{"kind":"SomethingNew","somethingNew":{}}"#.into(), None)),
        }
        for (msg, s) in messages.drain(..) {
            let r = check_handle(&mut call, metrics, msg.as_bytes(), &mut seen)?;
            sink.drain();
            prop_assert!(call.participant_count() <= sc.max_participants);
            let r = r.ok_or_else(|| TestCaseError::fail(format!("connection ended by {msg}")))?;
            match s {
                Some(s) => {
                    match (s.expect, r) {
                        (Some(why), Handled::Refused(got)) => prop_assert_eq!(why, got, "{:?}", s),
                        (None, Handled::Audio | Handled::Dropped) => {}
                        (e, got) => {
                            return Err(TestCaseError::fail(format!(
                                "expected {e:?}, got {got:?} for {s:?}"
                            )))
                        }
                    }
                    sent.push((s, r));
                }
                None if msg.contains("SomethingNew") => prop_assert_eq!(r, Handled::Unknown),
                None => {
                    prop_assert_eq!(r, Handled::Event);
                    events += 1;
                }
            }
        }
    }
    call.finish(EndReason::PeerClosed);
    drop(call);
    sink.drain();

    // --- counts add up ---
    let after = Counts::of(metrics);
    let counted: HashMap<BadFrame, u64> = after.since(&before).into_iter().collect();
    let n_audio = sent.len() as u64;
    prop_assert_eq!(
        audio_data_total(metrics) - audio0,
        n_audio,
        "frames_total{{audio_data}}"
    );
    let accepted = sent.iter().filter(|s| s.1 == Handled::Audio).count() as u64;
    let dropped = sent.iter().filter(|s| s.1 == Handled::Dropped).count() as u64;
    let mut refused: HashMap<BadFrame, u64> = HashMap::new();
    for (_, h) in &sent {
        if let Handled::Refused(r) = h {
            *refused.entry(*r).or_default() += 1;
        }
    }
    prop_assert_eq!(accepted + dropped + refused.values().sum::<u64>(), n_audio);
    prop_assert_eq!(
        (after.late - before.late) + (after.duplicate - before.duplicate),
        dropped
    );
    for r in DROP_REASONS {
        prop_assert_eq!(
            counted.get(&r).copied().unwrap_or(0),
            refused.get(&r).copied().unwrap_or(0),
            "{:?}",
            r
        );
    }
    let mismatches = sent.iter().filter(|s| s.0.mismatch).count() as u64;
    prop_assert_eq!(
        counted.get(&BadFrame::LengthMismatch).copied().unwrap_or(0),
        mismatches
    );
    let placed_bytes: u64 = sent
        .iter()
        .filter(|s| matches!(s.1, Handled::Audio | Handled::Dropped))
        .map(|s| s.0.bytes as u64)
        .sum();
    prop_assert_eq!(metrics.audio_bytes.get() - bytes0, placed_bytes);
    prop_assert_eq!(metrics.frame_pool_exhausted.get() - pool0, 0);
    prop_assert_eq!(sink_metrics.audio_drops.get() - drops0, 0);
    prop_assert_eq!(sink_metrics.write_errors.get() - errors0, 0);

    // --- what the sink saw ---
    let log = std::mem::take(&mut *log.lock().unwrap());
    let mut streams: BTreeMap<StreamId, StreamSeen> = BTreeMap::new();
    let mut dtmf_and_co = 0usize;
    let mut ended = false;
    for rec in &log {
        prop_assert!(!ended, "{:?} after the call ended", rec);
        match rec {
            Rec::Open(info) => {
                prop_assert!(
                    !streams.contains_key(&info.id),
                    "stream {} opened twice",
                    info.id
                );
                prop_assert_eq!(info.call.id, call_id);
                prop_assert_eq!(
                    info.kind == StreamKind::Participant,
                    info.participant.is_some()
                );
                streams.insert(
                    info.id,
                    StreamSeen {
                        info: Some(info.clone()),
                        ..Default::default()
                    },
                );
            }
            Rec::Audio {
                stream,
                call,
                pos,
                rate,
                samples,
            } => {
                let s = streams
                    .get_mut(stream)
                    .ok_or_else(|| TestCaseError::fail("audio before open"))?;
                prop_assert!(s.closed.is_none(), "audio after close");
                prop_assert_eq!(*call, call_id);
                prop_assert_eq!(*rate, s.info.as_ref().unwrap().sample_rate);
                prop_assert!(!samples.is_empty() && samples.len() <= MAX_FRAME_SAMPLES);
                prop_assert_eq!(*pos, s.pos, "stream {} not contiguous", stream);
                s.pos += samples.len() as u64;
                s.frames += 1;
                s.audio.extend_from_slice(samples);
            }
            Rec::Gap { stream, samples } => {
                let s = streams
                    .get_mut(stream)
                    .ok_or_else(|| TestCaseError::fail("gap before open"))?;
                prop_assert!(s.closed.is_none(), "gap after close");
                prop_assert!(*samples > 0);
                let info = s.info.as_ref().unwrap();
                if info.kind != StreamKind::Mix {
                    let max_fill =
                        u64::from(sc.max_gap_fill_ms) * u64::from(info.sample_rate) / 1000;
                    prop_assert!(*samples <= max_fill, "gap {} > max {}", samples, max_fill);
                }
                s.pos += samples;
                s.gaps += samples;
            }
            Rec::Event(e) => match e {
                CallEvent::ParticipantJoined {
                    stream,
                    participant,
                } => {
                    let s = streams
                        .get_mut(stream)
                        .ok_or_else(|| TestCaseError::fail("joined before open"))?;
                    prop_assert_eq!(participant, &s.info.as_ref().unwrap().participant);
                    prop_assert!(!s.joined);
                    s.joined = true;
                }
                CallEvent::ParticipantLeft { stream, .. } => {
                    let s = streams
                        .get_mut(stream)
                        .ok_or_else(|| TestCaseError::fail("left before open"))?;
                    prop_assert!(
                        s.joined && !s.left && s.closed.is_some(),
                        "left out of order"
                    );
                    s.left = true;
                }
                CallEvent::SpeechStarted { stream, pos } => {
                    let s = streams
                        .get_mut(stream)
                        .ok_or_else(|| TestCaseError::fail("speech before open"))?;
                    prop_assert!(s.speech_at.is_none(), "speech started twice");
                    prop_assert!(*pos <= s.pos, "speech starts at {} past {}", pos, s.pos);
                    s.speech_at = Some(*pos);
                    seen.push(Seen::Event);
                }
                CallEvent::SpeechEnded { stream, start, end } => {
                    let s = streams
                        .get_mut(stream)
                        .ok_or_else(|| TestCaseError::fail("speech before open"))?;
                    prop_assert_eq!(s.speech_at, Some(*start), "speech end without start");
                    prop_assert!(start < end && *end <= s.pos, "{} {} {}", start, end, s.pos);
                    s.speech_at = None;
                }
                _ => dtmf_and_co += 1,
            },
            Rec::Close { stream, stats } => {
                let s = streams
                    .get_mut(stream)
                    .ok_or_else(|| TestCaseError::fail("close before open"))?;
                prop_assert!(s.closed.is_none(), "closed twice");
                prop_assert!(s.speech_at.is_none(), "closed in speech");
                s.closed = Some(*stats);
            }
            Rec::End => ended = true,
        }
    }
    prop_assert!(ended, "no CallEnded");
    prop_assert_eq!(dtmf_and_co, events);

    // the streams opened are the ones the rules predict, in order
    let mut by_stream: HashMap<&(u32, String), Vec<&(Sent, Handled)>> = HashMap::new();
    for s in &sent {
        if s.0.expect.is_none() {
            by_stream.entry(&s.0.stream).or_default().push(s);
        }
    }
    let opened: Vec<_> = streams
        .iter()
        .filter(|(_, s)| s.info.as_ref().unwrap().kind != StreamKind::Mix)
        .collect();
    prop_assert_eq!(opened.len(), model.created.len());
    prop_assert_eq!(metrics.participants.get() - parts0, opened.len() as u64);
    let mut furthest = 0u64;
    for ((id, s), created) in opened.iter().zip(&model.created) {
        let info = s.info.as_ref().unwrap();
        let stats = s
            .closed
            .ok_or_else(|| TestCaseError::fail(format!("stream {id} never closed")))?;
        prop_assert!(s.joined && s.left);
        prop_assert_eq!(
            info.participant.as_deref().unwrap_or(""),
            created.1.as_str()
        );
        let msgs = &by_stream[created];
        let ok: Vec<_> = msgs.iter().filter(|m| m.1 == Handled::Audio).collect();
        let late = msgs.iter().filter(|m| m.1 == Handled::Dropped).count() as u64;
        // exactly the accepted audio, in order, with the silence between
        let expected: Vec<i16> = ok.iter().flat_map(|m| m.0.pcm.iter().copied()).collect();
        prop_assert!(s.audio == expected, "stream {} audio differs", id);
        prop_assert_eq!(stats.frames, ok.len() as u64);
        prop_assert_eq!(stats.samples, s.pos, "stats.samples vs delivered");
        prop_assert_eq!(stats.filled_samples, s.gaps);
        prop_assert_eq!(stats.late + stats.duplicates, late);
        prop_assert_eq!(
            stats.acs_silent_frames,
            ok.iter().filter(|m| m.0.silent).count() as u64
        );
        prop_assert_eq!(stats.silent_samples + stats.voiced_samples, stats.samples);
        // the bound: every accepted frame adds at most one payload and one gap fill
        let bound = ok.len() as u64
            * (u64::from(info.sample_rate) * MAX_PAYLOAD_MS as u64 / 1000
                + u64::from(sc.max_gap_fill_ms) * u64::from(info.sample_rate) / 1000);
        prop_assert!(
            s.pos <= bound,
            "stream {} has {} samples, bound {}",
            id,
            s.pos,
            bound
        );
        if info.kind == StreamKind::Participant {
            furthest = furthest.max(info.call_offset.saturating_add(s.pos));
        }
    }
    for s in streams
        .values()
        .filter(|s| s.info.as_ref().unwrap().kind == StreamKind::Mix)
    {
        let stats = s
            .closed
            .ok_or_else(|| TestCaseError::fail("mix never closed"))?;
        prop_assert!(sc.mix_unmixed);
        prop_assert_eq!(stats.frames, s.frames);
        prop_assert_eq!(stats.samples, s.audio.len() as u64);
        prop_assert!(
            s.pos <= furthest,
            "mix ends at {} past its inputs' {}",
            s.pos,
            furthest
        );
    }
    tally.add(&seen);
    Ok(())
}

const CASES_PIPELINE: u32 = 1_200;

#[test]
fn pipeline_keeps_its_invariants_on_hostile_sequences() {
    let metrics = Metrics::new();
    let tally = Tally::default();
    run(CASES_PIPELINE, regressions!("pipeline"), scenario(), |sc| {
        run_scenario(&sc, &metrics, &tally)
    });
    if full_run(CASES_PIPELINE) {
        let mut want: Vec<Seen> = DROP_REASONS.iter().map(|r| reason(*r)).collect();
        want.extend([
            reason(BadFrame::LengthMismatch),
            reason(BadFrame::UnsupportedFormat),
            Seen::Audio,
            Seen::Dropped,
            Seen::Event,
        ]);
        tally.require(&want);
    }
}
