//! One shard: a task that drives many emulated media connections (frames paced per tick, writes,
//! flushes, the end of each stream).

#[allow(unused_imports)]
use super::*;

pub(super) async fn shard(ctx: ShardCtx, mut rx: mpsc::UnboundedReceiver<NewConn>) -> ShardTotals {
    let ShardCtx {
        src,
        slots,
        run_start,
        shared,
        mut rng,
        seed,
    } = ctx;
    rng.next_u64();
    let _ = seed;
    let period = Duration::from_millis(FRAME_MS);
    let mut s = Scratch {
        ts: String::with_capacity(32),
        rng,
        totals: ShardTotals {
            frames: 0,
            payload_bytes: 0,
            pcm_bytes: 0,
            lag: new_hist(),
        },
        window: new_hist(),
        unreported_frames: 0,
    };
    let pcm_per_frame = u64::from(src.pcm_bytes());
    let tpl = FrameTemplates::new(&src);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut pending: Vec<usize> = Vec::new();
    let mut open = true;
    let far = Duration::from_secs(3600);
    let sleep = tokio::time::sleep(far);
    tokio::pin!(sleep);
    let mut last_report = Instant::now();
    loop {
        tokio::select! {
            biased;
            c = rx.recv(), if open => match c {
                Some(c) => {
                    let now = Instant::now();
                    // The first slot boundary of this phase at or after now.
                    let since = now.saturating_duration_since(run_start + c.phase);
                    let k = since.as_micros().div_ceil(period.as_micros()) as u32;
                    let first_due = run_start + c.phase + period * k;
                    let wall = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0)
                        + first_due.saturating_duration_since(now).as_millis() as i64;
                    let n = c.ids.len().max(1);
                    let conn = Conn {
                        w: c.w,
                        ctl: c.ctl,
                        done: Some(c.done),
                        offsets: (0..c.ids.len()).map(|p| p * src.len() / n).collect(),
                        parts: c
                            .ids
                            .iter()
                            .map(|id| FrameTemplates::participant_piece(id.as_deref()))
                            .collect(),
                        first_due,
                        start_unix_ms: wall,
                        slot: 0,
                        out: Vec::with_capacity(2048 * n),
                        sent: 0,
                        pending: VecDeque::new(),
                        closing: false,
                        queued: false,
                    };
                    let idx = match free.pop() {
                        Some(i) => {
                            conns[i] = Some(conn);
                            i
                        }
                        None => {
                            conns.push(Some(conn));
                            conns.len() - 1
                        }
                    };
                    heap.push(Reverse((first_due, idx)));
                }
                None => open = false,
            },
            () = &mut sleep => {}
        }

        // Pending sockets first: their bytes are older than any new frame.
        if !pending.is_empty() {
            let list = std::mem::take(&mut pending);
            for idx in list {
                let Some(c) = conns[idx].as_mut() else {
                    continue;
                };
                c.queued = false;
                match flush(c, &mut s) {
                    Ok(true) => {
                        if c.closing {
                            finish(&mut conns, &mut free, idx, None);
                        }
                    }
                    Ok(false) => {
                        c.queued = true;
                        pending.push(idx);
                    }
                    Err(label) => finish(&mut conns, &mut free, idx, Some(label)),
                }
            }
        }

        let now = Instant::now();
        while let Some(&Reverse((due, idx))) = heap.peek() {
            if due > now {
                break;
            }
            heap.pop();
            let Some(c) = conns[idx].as_mut() else {
                continue;
            };
            match step(c, due, slots, &src, &tpl, pcm_per_frame, &mut s) {
                Step::Next(next) => {
                    if !c.sent_all() && !c.queued {
                        c.queued = true;
                        pending.push(idx);
                    }
                    heap.push(Reverse((next, idx)));
                }
                Step::Closing => {
                    if c.sent_all() {
                        finish(&mut conns, &mut free, idx, None);
                    } else if !c.queued {
                        c.queued = true;
                        pending.push(idx);
                    }
                }
                Step::Stopped => finish(&mut conns, &mut free, idx, Some("stopped")),
                Step::Failed(label) => finish(&mut conns, &mut free, idx, Some(label)),
            }
        }

        if s.unreported_frames > 0 {
            shared
                .frames
                .fetch_add(s.unreported_frames, Ordering::Relaxed);
            s.unreported_frames = 0;
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            if let Ok(mut w) = shared.window.lock() {
                let _ = w.add(&s.window);
            }
            s.window.reset();
        }

        if !open && heap.is_empty() && pending.is_empty() {
            break;
        }
        let mut next = heap
            .peek()
            .map(|r| r.0 .0)
            .unwrap_or_else(|| Instant::now() + far);
        if !pending.is_empty() {
            next = next.min(Instant::now() + PENDING_RETRY);
        }
        sleep.as_mut().reset(next);
    }
    s.totals
}

impl Conn {
    fn sent_all(&self) -> bool {
        self.sent >= self.out.len()
    }
}

pub(super) enum Step {
    /// Frames written (or pending); next due time.
    Next(Instant),
    /// Close 1000 written (or pending).
    Closing,
    /// The reader saw the server close or the connection break.
    Stopped,
    /// Write-side failure.
    Failed(&'static str),
}

/// Sends what is due on `c` at `due`.
pub(super) fn step(
    c: &mut Conn,
    due: Instant,
    slots: u64,
    src: &EncodedSource,
    tpl: &FrameTemplates,
    pcm_per_frame: u64,
    s: &mut Scratch,
) -> Step {
    if c.ctl.stop.load(Ordering::Acquire) {
        return Step::Stopped;
    }
    if c.sent_all() {
        c.out.clear();
        c.sent = 0;
    }
    if c.ctl.has_pong.load(Ordering::Acquire) {
        c.ctl.has_pong.store(false, Ordering::Relaxed);
        let p = c.ctl.pong.lock().ok().and_then(|mut g| g.take());
        if let Some(p) = p {
            wsraw::push_frame(&mut c.out, opcode::PONG, &p, wsraw::mask_key(&mut s.rng));
        }
    }
    if c.slot >= slots {
        c.ctl.close_sent.store(true, Ordering::Release);
        wsraw::push_close(&mut c.out, 1000, wsraw::mask_key(&mut s.rng));
        c.closing = true;
        return match flush(c, s) {
            Ok(_) => Step::Closing,
            Err(l) => Step::Failed(l),
        };
    }
    let frames = c.parts.len() as u32;
    let ts_ms = c.start_unix_ms + (c.slot * FRAME_MS) as i64;
    s.ts.clear();
    format_timestamp(ts_ms, &mut s.ts);
    for (p, part) in c.parts.iter().enumerate() {
        let i = (c.offsets[p] + c.slot as usize) % src.len();
        let len = tpl.len(i, &s.ts, part);
        let key = wsraw::mask_key(&mut s.rng);
        wsraw::push_header(&mut c.out, opcode::TEXT, len, key);
        let at = c.out.len();
        tpl.push(&mut c.out, i, &s.ts, part);
        wsraw::mask(&mut c.out[at..], key);
        s.totals.payload_bytes += len as u64;
        s.totals.pcm_bytes += pcm_per_frame;
    }
    c.slot += 1;
    let next = c.first_due + Duration::from_millis(FRAME_MS) * c.slot as u32;
    if c.pending.is_empty() && c.sent == 0 {
        // Common case: nothing older is waiting.
        match try_write(c) {
            Ok(()) => {}
            Err(l) => return Step::Failed(l),
        }
        if c.sent_all() {
            s.record(due, Instant::now(), frames);
            return Step::Next(next);
        }
        c.pending.push_back((c.out.len(), due, frames));
        return Step::Next(next);
    }
    c.pending.push_back((c.out.len(), due, frames));
    if c.out.len() - c.sent > MAX_PENDING_BYTES {
        return Step::Failed("backpressure");
    }
    match flush(c, s) {
        Ok(_) => Step::Next(next),
        Err(l) => Step::Failed(l),
    }
}

/// Writes as much of `c.out` as the socket takes without waiting.
pub(super) fn try_write(c: &mut Conn) -> Result<(), &'static str> {
    while c.sent < c.out.len() {
        match c.w.try_write(&c.out[c.sent..]) {
            Ok(0) => return Err("connection_lost"),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err("connection_lost"),
        }
    }
    Ok(())
}

/// [`try_write`], then counts the frames it completed. `Ok(true)`: nothing left.
pub(super) fn flush(c: &mut Conn, s: &mut Scratch) -> Result<bool, &'static str> {
    try_write(c)?;
    let now = Instant::now();
    while let Some(&(end, due, n)) = c.pending.front() {
        if end > c.sent {
            break;
        }
        c.pending.pop_front();
        s.record(due, now, n);
    }
    if c.sent_all() {
        c.out.clear();
        c.sent = 0;
        return Ok(true);
    }
    if c.sent > 64 * 1024 {
        c.out.drain(..c.sent);
        for p in &mut c.pending {
            p.0 -= c.sent;
        }
        c.sent = 0;
    }
    Ok(false)
}

/// Ends a connection on the shard: tells the reader how, echoing a server close if there was
/// one.
pub(super) fn finish(
    conns: &mut [Option<Conn>],
    free: &mut Vec<usize>,
    idx: usize,
    failure: Option<&'static str>,
) {
    let Some(mut c) = conns[idx].take() else {
        return;
    };
    free.push(idx);
    let done = c.done.take();
    match failure {
        None => {
            if let Some(d) = done {
                let _ = d.send(Done::Closed(c.w));
            }
        }
        Some("stopped") => {
            let code = c.ctl.close_code.load(Ordering::Relaxed);
            if code != 0 {
                // Echo the server's close (best effort) before dropping the socket.
                let mut out = Vec::with_capacity(8);
                let mut rng = SimRng::seeded(idx as u64 ^ 0x5eed);
                let echo = if code == 1005 { 1000 } else { code };
                wsraw::push_close(&mut out, echo, wsraw::mask_key(&mut rng));
                let _ = c.w.try_write(&out);
            }
        }
        Some(label) => {
            if let Some(d) = done {
                let _ = d.send(Done::Failed(label));
            }
        }
    }
}
