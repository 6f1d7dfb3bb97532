//! PURE: the neural speech detector (`silence.detector = "neural"`): Silero VAD run by tract,
//! fused with the adaptive detector's per-frame decision.
//!
//! Owns [`NeuralVad`] (per-stream state: the sample buffer, the network's recurrent state, an
//! [`AdaptiveVad`] and the recent frame levels) and the process-wide network it runs ([`warm_up`]
//! loads it). The model is Silero VAD v5's 16 kHz ONNX export (`models/silero_vad_16k_op15.onnx`,
//! MIT, see `models/README.md`), compiled into the binary with `include_bytes!` and run by tract,
//! a pure-Rust ONNX inference engine: no ONNX Runtime, nothing downloaded at build or run time.
//!
//! # Decision
//!
//! Silero's probability is smooth in time: it rises ~100 ms after a word starts and bridges the
//! pauses between words, so thresholded alone (0.9 / 0.85 hysteresis) it reaches only F1 0.883 on
//! `tests/vad_eval.rs`'s frame truth. The adaptive detector is sharp in time but takes a crowd's
//! voiced sounds for speech. The fusion lets each do what it is good at:
//!
//! - a frame the adaptive detector calls speech is speech, except in babble (its noise is
//!   periodic, `BABBLE_PERIODICITY`) when the network's probability is below [`VETO_BELOW`];
//! - a frame the network is sure of ([`CONFIDENT`]) is speech when its level is at least
//!   [`FLOOR_MARGIN_DB`] above the lowest frame level of the last 1.28 s (speech the energy bands
//!   miss) and it is no DTMF tone.
//!
//! F1 0.922 against the adaptive detector's 0.913 (false alarms 0.059, noise-only 0.001, DTMF 0).
//!
//! # Loading
//!
//! tract 0.22 cannot translate ONNX `If` nodes whose branches give different shapes; the export
//! has three (the `squeeze(-1)` checks around the decoder and its LSTM cell, each deciding on a
//! shape). With the input shapes fixed (`[1, 576]` audio, `[2, 1, 128]` state) every condition is
//! known after shape analysis, so the loader inlines the chosen branch of each `If` into the graph
//! (repeatedly: a branch can hold further `If`s), makes the sample-rate input a constant 16000,
//! then optimises the graph once for the process. All streams share that plan ([`OnceLock`]);
//! loading takes ~50 ms (release) on first use.
//!
//! # Streaming
//!
//! The network scores 512-sample chunks (32 ms at 16 kHz) with the previous chunk's last 64
//! samples in front of them and carries a `[2, 1, 128]` state from chunk to chunk. 24 kHz input
//! is first brought to 16 kHz by the 2/3 polyphase resampler of [`super`]. Samples are buffered
//! across the 20 ms frames; whenever 512 new ones are there a chunk is scored, and each frame
//! takes the latest probability.
//!
//! Per stream the detector holds a few KiB (the chunk buffer, the state tensor, the adaptive
//! detector, 64 levels), boxed once. Frames that complete no chunk allocate nothing; a chunk
//! (every 32 ms) makes tract allocate its input tensor and the run's intermediate tensors (a few
//! KiB in total): tract's run state holds `Rc` values, so it cannot be kept in a detector that
//! moves between threads.

use super::{AdaptiveVad, Down24To16, BABBLE_PERIODICITY};
use std::sync::{Arc, OnceLock};
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::{bail, TractErrorContext};

/// In babble (the adaptive detector's noise is periodic), an adaptive speech frame needs at least
/// this probability: the network vetoes the crowd's voiced sounds the adaptive detector takes for
/// the talker.
pub const VETO_BELOW: f32 = 0.4;
/// A frame the network is this sure of is speech when its level is above the stream's recent
/// floor by [`FLOOR_MARGIN_DB`], even if the adaptive detector says no (quiet or masked speech).
pub const CONFIDENT: f32 = 0.97;
/// See [`CONFIDENT`].
pub const FLOOR_MARGIN_DB: f32 = 1.0;
/// Frames (20 ms) over which the level floor is the minimum: 1.28 s.
const FLOOR_FRAMES: usize = 64;

/// Samples (16 kHz) the network scores at once.
const CHUNK: usize = 512;
/// Samples of the previous chunk given in front of each chunk.
const CONTEXT: usize = 64;
/// The recurrent state's shape.
const STATE: [usize; 3] = [2, 1, 128];

/// The model, Silero VAD v5 (16 kHz, ONNX opset 15), as shipped in `models/`.
static MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/silero_vad_16k_op15.onnx"
));

type Plan = TypedRunnableModel<TypedModel>;

/// The network could not be loaded (never with the model shipped; reported rather than panicking).
#[derive(Debug, Clone, thiserror::Error)]
#[error("neural speech detector: cannot load the Silero model: {0}")]
pub struct ModelError(String);

static PLAN: OnceLock<Result<Arc<Plan>, ModelError>> = OnceLock::new();

/// Loads the network (once per process; later calls return the same result). The gateway calls
/// it at start-up when the neural detector is configured, so a broken model fails the start
/// instead of every stream.
pub fn warm_up() -> Result<(), ModelError> {
    plan().map(|_| ())
}

fn plan() -> Result<Arc<Plan>, ModelError> {
    PLAN.get_or_init(|| load().map_err(|e| ModelError(format!("{e:#}"))))
        .clone()
}

fn input_facts(m: &mut InferenceModel) -> TractResult<()> {
    m.set_input_fact(0, f32::fact([1, CONTEXT + CHUNK]).into())?;
    m.set_input_fact(1, f32::fact(STATE).into())
}

fn load() -> TractResult<Arc<Plan>> {
    let onnx = tract_onnx::onnx();
    let mut proto = onnx.proto_model_for_read(&mut &MODEL[..])?;
    let graph = proto.graph.as_mut().context("model without a graph")?;
    // The sample rate: a constant instead of an input.
    let sr = graph
        .input
        .iter()
        .position(|i| i.name == "sr")
        .context("model without an `sr` input")?;
    graph.input.remove(sr);
    graph.initializer.push(tract_onnx::pb::TensorProto {
        name: "sr".into(),
        data_type: tract_onnx::pb::tensor_proto::DataType::Int64 as i32,
        int64_data: vec![16_000],
        ..Default::default()
    });
    for _ in 0..8 {
        if !inline_ifs(&onnx, &mut proto)? {
            let mut m = onnx.model_for_proto_model(&proto)?;
            input_facts(&mut m)?;
            return Ok(Arc::new(m.into_optimized()?.into_runnable()?));
        }
    }
    bail!("nested `If`s left after 8 passes")
}

/// Replaces each top-level `If` whose condition shape analysis decides by its chosen branch's
/// nodes (and an `Identity` per output). Returns whether any `If` was left to look at.
fn inline_ifs(onnx: &tract_onnx::Onnx, proto: &mut ModelProto) -> TractResult<bool> {
    let mut m = onnx.model_for_proto_model(proto)?;
    input_facts(&mut m)?;
    m.analyse(false)?;
    let mut chosen = std::collections::HashMap::new();
    for n in m.nodes().iter().filter(|n| n.op.name() == "If") {
        let cond = m
            .outlet_fact(n.inputs[0])?
            .value
            .concretize()
            .with_context(|| format!("{}: condition unknown after analysis", n.name))?;
        chosen.insert(n.name.clone(), cond.cast_to_scalar::<bool>()?);
    }
    if chosen.is_empty() {
        return Ok(false);
    }
    let graph: &mut GraphProto = proto.graph.as_mut().context("model without a graph")?;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for n in std::mem::take(&mut graph.node) {
        let Some(&cond) = chosen.get(&n.name) else {
            nodes.push(n);
            continue;
        };
        let which = if cond { "then_branch" } else { "else_branch" };
        let body = n
            .attribute
            .iter()
            .find(|a| a.name == which)
            .and_then(|a| a.g.as_ref())
            .with_context(|| format!("{}: no {which}", n.name))?;
        nodes.extend(body.node.iter().cloned());
        graph.initializer.extend(body.initializer.iter().cloned());
        for (from, to) in body.output.iter().zip(&n.output) {
            nodes.push(NodeProto {
                name: format!("{to}/inlined"),
                op_type: "Identity".into(),
                input: vec![from.name.clone()],
                output: vec![to.clone()],
                ..Default::default()
            });
        }
    }
    graph.node = nodes;
    Ok(true)
}

/// The neural option: Silero VAD on 16 kHz chunks (see the module docs).
pub struct NeuralVad {
    plan: Option<Arc<Plan>>,
    /// The previous chunk's last [`CONTEXT`] samples, then the chunk being filled (scaled to ±1).
    buf: Box<[f32; CONTEXT + CHUNK]>,
    fill: usize,
    /// The recurrent state (taken for a run, put back from its output).
    state: Option<Tensor>,
    /// 24 kHz input goes through this first.
    resample: Option<Down24To16>,
    prob: f32,
    /// The per-frame energy decision the network gates and completes.
    adaptive: AdaptiveVad,
    /// The last [`FLOOR_FRAMES`] frame levels (dBFS; +inf until filled), a ring.
    levels: [f32; FLOOR_FRAMES],
    level_at: usize,
}

impl std::fmt::Debug for NeuralVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeuralVad")
            .field("fill", &self.fill)
            .field("prob", &self.prob)
            .finish_non_exhaustive()
    }
}

impl NeuralVad {
    /// A detector for audio at `sample_rate` Hz (16 kHz used as is; 24 kHz resampled to 16 kHz).
    /// Loads the shared network on first use; should that fail (see [`warm_up`]) every frame is
    /// unvoiced.
    pub fn new(sample_rate: u32) -> Self {
        Self {
            plan: plan().ok(),
            buf: Box::new([0.0; CONTEXT + CHUNK]),
            fill: 0,
            state: Tensor::zero::<f32>(&STATE).ok(),
            resample: (sample_rate != 16_000).then(Down24To16::new),
            prob: 0.0,
            adaptive: AdaptiveVad::new(sample_rate),
            levels: [f32::INFINITY; FLOOR_FRAMES],
            level_at: 0,
        }
    }

    /// The probability of the last chunk scored (0–1).
    pub fn probability(&self) -> f32 {
        self.prob
    }

    fn push16(&mut self, s: i16) {
        self.buf[CONTEXT + self.fill] = f32::from(s) * (1.0 / 32768.0);
        self.fill += 1;
        if self.fill == CHUNK {
            self.fill = 0;
            self.prob = self.score().unwrap_or(0.0);
            self.buf.copy_within(CHUNK.., 0);
        }
    }

    /// Runs the network on the buffer; `None` (and a fresh state) if tract fails.
    fn score(&mut self) -> Option<f32> {
        let plan = self.plan.as_ref()?;
        let input = Tensor::from_shape(&[1, CONTEXT + CHUNK], &self.buf[..]).ok()?;
        let state = self.state.take()?;
        match plan.run(tvec!(input.into(), state.into())) {
            Ok(mut out) if out.len() == 2 => {
                // the state first, so a malformed probability output cannot lose it
                self.state = Some(out.remove(1).into_tensor());
                out[0].as_slice::<f32>().ok()?.first().copied()
            }
            _ => {
                self.state = Tensor::zero::<f32>(&STATE).ok();
                None
            }
        }
    }

    /// Classifies one frame; returns (RMS dBFS, voiced).
    pub fn process(&mut self, x: &[i16]) -> (f32, bool) {
        let (level, energy_voiced) = self.adaptive.process(x);
        if x.is_empty() {
            return (level, false);
        }
        if let Some(mut rs) = self.resample.take() {
            for &v in x {
                if let Some(s) = rs.push(v) {
                    self.push16(s);
                }
            }
            self.resample = Some(rs);
        } else {
            for &v in x {
                self.push16(v);
            }
        }
        self.levels[self.level_at] = level;
        self.level_at = (self.level_at + 1) % FLOOR_FRAMES;
        let floor = self.levels.iter().copied().fold(f32::INFINITY, f32::min);
        let babble = self.adaptive.noise_period > BABBLE_PERIODICITY;
        let voiced = (energy_voiced && (self.prob >= VETO_BELOW || !babble))
            || (self.prob >= CONFIDENT
                && level >= floor + FLOOR_MARGIN_DB
                && !self.adaptive.dtmf().is_dtmf(x));
        (level, voiced)
    }
}
