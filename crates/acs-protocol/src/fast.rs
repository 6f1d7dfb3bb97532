//! A fast path for the one message that matters for speed: `AudioData` in the exact shape ACS
//! sends (`{"kind":"AudioData","audioData":{"timestamp":…,"participantRawID":…,"data":…,
//! "silent":…}}`, keys in any order, any JSON whitespace).
//!
//! serde_json spends most of an AudioData parse scanning the ~850-1300 base64 characters of
//! `data` a word at a time for quotes, backslashes and control characters. Here one pass of
//! 16-byte SSE2 blocks (on x86-64; elsewhere branch-free 32-byte blocks the compiler vectorises)
//! finds the closing quote and any backslash or control character, which is the same validity
//! rule; UTF-8 is checked only where the input is not already a `str`. Anything outside that
//! shape — an escape, an unknown or repeated key, a `null`, a nested value, trailing bytes —
//! makes [`parse_audio_data`] return `None`, and the caller parses with serde_json as usual, so
//! the fast path can only ever agree with the full parser (the tests check this against
//! thousands of mutated frames).

use super::media::AudioData;
use std::borrow::Cow;

/// Parses an AudioData frame of the canonical shape; `None` means "use the full parser".
#[inline]
pub fn parse_audio_data(frame: &[u8]) -> Option<AudioData<'_>> {
    parse(Cursor {
        b: frame,
        src: None,
        i: 0,
    })
}

/// [`parse_audio_data`] of a frame already known to be UTF-8 (a WebSocket text message, which
/// the WebSocket layer validated): its strings are slices of `frame`, not checked again.
#[inline]
pub fn parse_audio_data_str(frame: &str) -> Option<AudioData<'_>> {
    parse(Cursor {
        b: frame.as_bytes(),
        src: Some(frame),
        i: 0,
    })
}

#[inline(always)]
fn parse(mut p: Cursor<'_>) -> Option<AudioData<'_>> {
    let frame = p.b;
    p.ws();
    p.eat(b'{')?;
    let mut kind_ok = false;
    let mut payload = None;
    loop {
        p.ws();
        let key = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        match key {
            b"kind" if !kind_ok => {
                let v = p.string()?;
                if !v.eq_ignore_ascii_case(b"AudioData") {
                    return None;
                }
                kind_ok = true;
            }
            b"audioData" if payload.is_none() => payload = Some(p.audio_data()?),
            _ => return None,
        }
        p.ws();
        match p.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    p.ws();
    if p.i != frame.len() || !kind_ok {
        return None;
    }
    payload
}

/// A byte that ends a JSON string's raw run: its closing quote, a backslash (an escape) or a
/// control character (invalid inside a string).
#[inline(always)]
fn stop(c: u8) -> bool {
    (c == b'"') | (c == b'\\') | (c < 0x20)
}

/// The index of the first [`stop`] byte of `rest`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn find_stop(rest: &[u8]) -> Option<usize> {
    #[allow(unsafe_code)]
    // SAFETY: SSE2 is part of x86-64 itself: every x86-64 CPU has it.
    unsafe {
        find_stop_sse2(rest)
    }
}

/// [`find_stop`] sixteen bytes at a time with SSE2: three compares, one mask, and the mask's
/// lowest bit is the index, so the block that holds the quote is not searched again byte by
/// byte.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn find_stop_sse2(rest: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let control = _mm_set1_epi8(0x1f);
    let mut blocks = rest.chunks_exact(16);
    let mut at = 0;
    for block in &mut blocks {
        let v: __m128i = bytemuck::cast(<[u8; 16]>::try_from(block).expect("16 bytes"));
        // c <= 0x1f exactly where max(c, 0x1f) == 0x1f (unsigned)
        let hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            _mm_cmpeq_epi8(_mm_max_epu8(v, control), control),
        );
        let mask = _mm_movemask_epi8(hit);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    Some(at + blocks.remainder().iter().position(|&c| stop(c))?)
}

/// The index of the first [`stop`] byte of `rest`: whole 32-byte blocks tested branch-free
/// (the compiler vectorises the fold), the block that has one searched byte by byte.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn find_stop(rest: &[u8]) -> Option<usize> {
    let mut at = 0;
    for block in rest.chunks_exact(32) {
        if block.iter().fold(false, |hit, &c| hit | stop(c)) {
            break;
        }
        at += 32;
    }
    Some(at + rest[at..].iter().position(|&c| stop(c))?)
}

struct Cursor<'a> {
    b: &'a [u8],
    /// `b` as `str`, when the caller knows it is UTF-8.
    src: Option<&'a str>,
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// A JSON string without escapes; returns its raw bytes (validated: no control characters;
    /// UTF-8 is checked by the callers that need `str`).
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let end = find_stop(rest)?;
        if rest[end] != b'"' {
            return None; // an escape (serde_json decodes it) or a control character (invalid)
        }
        let s = &rest[..end];
        self.i += end + 1;
        Some(s)
    }

    /// A string that must be valid UTF-8: a slice of the source when it is a `str` (its ends
    /// are quotes, so char boundaries: `get` checks only that), else checked (std's check has a
    /// word-at-a-time ASCII fast path).
    #[inline]
    fn text(&mut self) -> Option<&'a str> {
        let start = self.i + 1;
        let s = self.string()?;
        match self.src {
            Some(src) => src.get(start..start + s.len()),
            None => std::str::from_utf8(s).ok(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    fn audio_data(&mut self) -> Option<AudioData<'a>> {
        self.eat(b'{')?;
        let (mut data, mut timestamp, mut participant, mut silent) = (None, None, None, None);
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            return None; // no `data`: the full parser reports it
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            match key {
                b"data" if data.is_none() => data = Some(self.text()?),
                b"timestamp" if timestamp.is_none() => timestamp = Some(self.text()?),
                b"participantRawID" if participant.is_none() => participant = Some(self.text()?),
                b"silent" if silent.is_none() => {
                    silent = Some(match self.b.get(self.i)? {
                        b't' => self.literal(b"true").map(|_| true)?,
                        b'f' => self.literal(b"false").map(|_| false)?,
                        _ => return None,
                    })
                }
                _ => return None,
            }
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        Some(AudioData {
            data: Cow::Borrowed(data?),
            timestamp: timestamp.map(Cow::Borrowed),
            participant_raw_id: participant.map(Cow::Borrowed),
            silent: silent.unwrap_or(false),
            mark: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{inbound_audio_data_json, parse_inbound_full, Inbound};

    fn full(frame: &[u8]) -> Option<AudioData<'_>> {
        match parse_inbound_full(frame) {
            Ok(Inbound::AudioData(a)) => Some(a),
            _ => None,
        }
    }

    /// Every byte value at every position of every length up to three blocks, in front of a
    /// run of plain bytes (and of high bytes, which an unsigned compare must not take for control
    /// characters): the first stop byte is found, or none.
    #[test]
    fn find_stop_finds_exactly_the_first_quote_backslash_or_control_byte() {
        for fill in [b'A', 0xC3, 0x7F, b' '] {
            for len in 0..50 {
                let mut buf = vec![fill; len];
                assert_eq!(find_stop(&buf), None, "{fill} {len}");
                for at in 0..len {
                    for c in 0..=255u8 {
                        buf[at] = c;
                        let want = stop(c).then_some(at);
                        assert_eq!(find_stop(&buf), want, "{fill} {len} {at} {c}");
                        buf[at] = fill;
                    }
                }
            }
        }
        assert_eq!(find_stop(b"ab\"c"), Some(2));
        assert_eq!(find_stop(b"\x01\"\\"), Some(0));
    }

    fn sample_frames() -> Vec<String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD
            .encode((0..640u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
        let mut v = Vec::new();
        let mut m = String::new();
        inbound_audio_data_json(
            &mut m,
            &b64,
            "2024-11-15T19:16:12.925Z",
            Some("8:acs:3d20e1de-0f28"),
            false,
        );
        v.push(m.clone());
        inbound_audio_data_json(&mut m, &b64, "2024-11-15T19:16:12.925Z", None, true);
        v.push(m.clone());
        v.push(format!(
            "{{ \"audioData\" : {{\"silent\":false,\n\"data\":\"{b64}\", \"participantRawID\":\"\"}} ,\"kind\":\"audiodata\" }}\r\n"
        ));
        v.push(r#"{"kind":"AudioData","audioData":{"data":"AQIDBAU=","timestamp":"2022-08-23T11:48:05Z","participantRawID":"participantId","silent":false}}"#.into());
        v.push(r#"{"kind":"AudioData","audioData":{"timestamp":"2024-05-30T06:25:02.948Z","data":"test","silent":false, "participantRawID":"28:6b45c5b6-1c34-47c0-8980-11e98d47d23f"}}"#.into());
        v
    }

    #[test]
    fn canonical_frames_take_the_fast_path_and_agree_with_the_full_parser() {
        for f in sample_frames() {
            let fast =
                parse_audio_data(f.as_bytes()).unwrap_or_else(|| panic!("fast path refused {f}"));
            assert_eq!(Some(&fast), full(f.as_bytes()).as_ref(), "{f}");
            assert!(matches!(fast.data, Cow::Borrowed(_)));
            assert_eq!(parse_audio_data_str(&f), Some(fast), "{f}");
        }
    }

    #[test]
    fn anything_unusual_falls_back() {
        for f in [
            r#"{"kind":"AudioData","audioData":{"data":"AQID\u002BBAU="}}"#, // escape
            r#"{"kind":"AudioData","audioData":{"data":"AQID","extra":1}}"#, // unknown key
            r#"{"kind":"AudioData","audioData":{"data":"AQID","silent":null}}"#,
            r#"{"kind":"AudioData","audioData":{"data":"AQID","mark":{"id":"x"}}}"#,
            r#"{"Kind":"AudioData","AudioData":{"Data":"AQID"}}"#, // PascalCase: full parser's job
            r#"{"kind":"AudioData","kind":"AudioData","audioData":{"data":"AQID"}}"#,
            r#"{"kind":"AudioData","audioData":{"data":"AQID","data":"AQID"}}"#,
            r#"{"kind":"AudioMetadata","audioMetadata":{}}"#,
            r#"{"kind":"AudioData","audioData":{"data":"AQID"}} x"#,
            r#"{"kind":"AudioData","audioData":{}}"#,
            r#"{"audioData":{"data":"AQID"}}"#,
            "{\"kind\":\"AudioData\",\"audioData\":{\"data\":\"AQ\x01ID\"}}",
            "",
            "{",
        ] {
            assert!(parse_audio_data(f.as_bytes()).is_none(), "{f}");
            assert!(parse_audio_data_str(f).is_none(), "{f}");
        }
        assert!(parse_audio_data(
            b"{\"kind\":\"AudioData\",\"audioData\":{\"data\":\"\xff\xfe\"}}"
        )
        .is_none());
    }

    #[test]
    fn never_disagrees_with_the_full_parser_on_mutated_frames() {
        // xorshift: deterministic pseudo-random mutations (flip, insert, delete, truncate)
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"{}[]:,\" \\tfnrue0123456789AaDdkislent\x01\xc3\xa9";
        let mut fast_hits = 0;
        for base in sample_frames() {
            for _ in 0..4000 {
                let mut b = base.clone().into_bytes();
                for _ in 0..(1 + rnd() % 3) {
                    let pos = (rnd() as usize) % (b.len() + 1);
                    match rnd() % 4 {
                        0 if pos < b.len() => b[pos] = alphabet[(rnd() as usize) % alphabet.len()],
                        1 => b.insert(pos, alphabet[(rnd() as usize) % alphabet.len()]),
                        2 if pos < b.len() => {
                            b.remove(pos);
                        }
                        _ => b.truncate(pos),
                    }
                }
                // the str entry point agrees with the byte one on every valid UTF-8 mutation
                if let Ok(text) = std::str::from_utf8(&b) {
                    assert_eq!(parse_audio_data_str(text), parse_audio_data(&b), "{text}");
                }
                if let Some(fast) = parse_audio_data(&b) {
                    fast_hits += 1;
                    let slow = full(&b);
                    assert_eq!(
                        Some(&fast),
                        slow.as_ref(),
                        "{}",
                        String::from_utf8_lossy(&b)
                    );
                }
            }
        }
        assert!(
            fast_hits > 1000,
            "mutations inside the base64 keep the fast path busy: {fast_hits}"
        );
    }
}
