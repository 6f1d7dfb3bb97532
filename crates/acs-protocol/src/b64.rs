//! Base64 decoding of audio payloads into a reused buffer (SIMD, via `base64-simd`).

use super::error::Base64Error;

/// Decodes padded standard base64 (`AudioData.data`) into `out`, replacing its contents, and
/// returns the decoded length (`== out.len()` afterwards).
///
/// `out` is resized to the maximum decoded length (never shrinking its capacity), decoded into,
/// then truncated, so nothing is allocated once `out.capacity()` suffices (960 bytes for a
/// 24 kHz packet). Strict: no whitespace, padding required. On error `out` is left empty.
pub fn decode_base64_into(b64: &[u8], out: &mut Vec<u8>) -> Result<usize, Base64Error> {
    let engine = base64_simd::STANDARD;
    out.resize(engine.estimated_decoded_length(b64.len()), 0);
    match engine.decode(b64, base64_simd::Out::from_slice(out.as_mut_slice())) {
        Ok(decoded) => {
            let n = decoded.len();
            out.truncate(n);
            Ok(n)
        }
        Err(_) => {
            out.clear();
            Err(Base64Error::Invalid)
        }
    }
}

/// Decodes standard base64 PCM16LE (`AudioData.data`) straight into samples: the decoded bytes
/// land in `out`'s memory, so there is no byte buffer to convert from afterwards. `out` is
/// grown to the largest payload seen and never shrunk (no allocation once it suffices; its old
/// contents past the decoded samples are left as they were). Returns the number of decoded
/// bytes `n`: the samples are `out[..n / 2]` (an odd last byte is left half-written in
/// `out[n / 2]`, for the caller to refuse). Same strictness as [`decode_base64_into`].
pub fn decode_base64_pcm16(b64: &[u8], out: &mut Vec<i16>) -> Result<usize, Base64Error> {
    let engine = base64_simd::STANDARD;
    let need = engine.estimated_decoded_length(b64.len()).div_ceil(2);
    if out.len() < need {
        out.resize(need, 0);
    }
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[..need]);
    let n = engine
        .decode(b64, base64_simd::Out::from_slice(bytes))
        .map_err(|_| Base64Error::Invalid)?
        .len();
    #[cfg(target_endian = "big")]
    for s in &mut out[..n / 2] {
        *s = i16::from_le(*s);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn pcm16_decode_gives_the_little_endian_samples_in_place() {
        let pcm: Vec<i16> = (0..320).map(|i| (i * 97 - 15_000) as i16).collect();
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let mut out = Vec::new();
        assert_eq!(decode_base64_pcm16(b64.as_bytes(), &mut out).unwrap(), 640);
        assert_eq!(&out[..320], &pcm[..]);
        let buf = out.as_ptr();
        // shorter payloads reuse the buffer; an odd length is reported as such
        assert_eq!(decode_base64_pcm16(b"AQIDBAU=", &mut out).unwrap(), 5);
        assert_eq!(&out[..2], &[0x0201, 0x0403]);
        assert_eq!(out.as_ptr(), buf, "no reallocation");
        assert!(decode_base64_pcm16(b"A!==", &mut out).is_err());
        assert!(decode_base64_pcm16(b"AQI", &mut out).is_err());
        assert_eq!(decode_base64_pcm16(b"", &mut out).unwrap(), 0);
    }

    #[test]
    fn pcm16_decode_matches_decode_into() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for input in [&b"AQIDBAU="[..], b"AQID", b"AQIDBA==", b"", b"////"] {
            let n = decode_base64_into(input, &mut a).unwrap();
            assert_eq!(decode_base64_pcm16(input, &mut b).unwrap(), n);
            let samples: Vec<u8> = b[..n / 2].iter().flat_map(|s| s.to_le_bytes()).collect();
            assert_eq!(samples, &a[..n / 2 * 2], "{input:?}");
        }
        assert!(decode_base64_pcm16(b"A!==", &mut b).is_err());
        assert!(decode_base64_pcm16(b"AQI", &mut b).is_err());
    }

    #[test]
    fn valid() {
        let mut out = Vec::new();
        assert_eq!(decode_base64_into(b"AQIDBAU=", &mut out), Ok(5));
        assert_eq!(out, [1, 2, 3, 4, 5]);
        assert_eq!(decode_base64_into(b"AQID", &mut out), Ok(3));
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(decode_base64_into(b"AQIDBA==", &mut out), Ok(4));
        assert_eq!(out, [1, 2, 3, 4]);
    }

    #[test]
    fn matches_base64_crate_for_all_lengths() {
        let mut out = Vec::new();
        for len in 0..=1000usize {
            let pcm: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&pcm);
            assert_eq!(decode_base64_into(b64.as_bytes(), &mut out), Ok(len));
            assert_eq!(out, pcm, "len {len}");
        }
    }

    #[test]
    fn empty() {
        let mut out = vec![9; 4];
        assert_eq!(decode_base64_into(b"", &mut out), Ok(0));
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_char() {
        let mut out = Vec::new();
        for bad in [
            &b"AQ!DBAU="[..],
            b"AQIDBA-=",
            b"AQ IDBAU=",
            b"AQIDBAU=\n",
            b"test!!!!",
        ] {
            assert_eq!(
                decode_base64_into(bad, &mut out),
                Err(Base64Error::Invalid),
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert!(out.is_empty());
        }
        // An invalid char deep inside a long, SIMD-processed input.
        let mut long = base64::engine::general_purpose::STANDARD
            .encode([7u8; 960])
            .into_bytes();
        long[700] = b'*';
        assert_eq!(
            decode_base64_into(&long, &mut out),
            Err(Base64Error::Invalid)
        );
    }

    #[test]
    fn bad_padding() {
        let mut out = Vec::new();
        for bad in [
            &b"AQIDBAU"[..], // missing padding
            b"AQIDBA=",      // short padding
            b"AQIDBA===",    // too much padding
            b"AQ==AQID",     // padding in the middle
            b"A",
            b"=",
            b"====",
        ] {
            assert_eq!(
                decode_base64_into(bad, &mut out),
                Err(Base64Error::Invalid),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn non_canonical_trailing_bits() {
        let mut out = Vec::new();
        assert_eq!(decode_base64_into(b"AQI=", &mut out), Ok(2));
        for bad in [&b"AQJ="[..], b"AB==", b"AQIDBAV="] {
            assert_eq!(decode_base64_into(bad, &mut out), Err(Base64Error::Invalid));
        }
    }

    #[test]
    fn non_ascii() {
        let mut out = Vec::new();
        // The truncated docs sample ends in U+2026.
        assert_eq!(
            decode_base64_into("5ADwAOMA6AD0A…".as_bytes(), &mut out),
            Err(Base64Error::Invalid)
        );
        assert_eq!(
            decode_base64_into("AQIDBAU…".as_bytes(), &mut out),
            Err(Base64Error::Invalid)
        );
    }

    #[test]
    fn reuses_capacity() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 960]);
        let mut out = Vec::with_capacity(960);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            assert_eq!(decode_base64_into(b64.as_bytes(), &mut out), Ok(960));
            assert_eq!(out.as_ptr(), ptr);
            assert_eq!(out.capacity(), 960);
            assert_eq!(decode_base64_into(b"AQIDBAU=", &mut out), Ok(5));
            assert_eq!(out.capacity(), 960);
        }
    }
}
