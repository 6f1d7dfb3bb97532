//! [`FanOut`]: every sink a call's audio and events go to. Audio is offered to each sink's queue
//! (each decides alone whether it has room); control messages reach every sink.

use super::queue::SinkHandle;
use crate::pipeline::frame::{SharedFrame, SinkMsg};

/// Every sink a call's audio and events go to.
#[derive(Clone, Debug, Default)]
pub struct FanOut {
    sinks: Vec<SinkHandle>,
}

impl FanOut {
    /// Fans out to `sinks`.
    pub fn new(sinks: Vec<SinkHandle>) -> Self {
        Self { sinks }
    }

    /// The sinks.
    pub fn sinks(&self) -> &[SinkHandle] {
        &self.sinks
    }

    /// Offers a frame to every sink (each decides alone whether it has room).
    #[inline]
    pub fn audio(&self, frame: &SharedFrame) {
        for s in &self.sinks {
            s.send_audio(frame);
        }
    }

    /// Sends a control message to every sink.
    pub fn control(&self, msg: SinkMsg) {
        if let Some((last, rest)) = self.sinks.split_last() {
            for s in rest {
                s.send_control(msg.clone());
            }
            last.send_control(msg);
        }
    }
}
