//! The uploader's pure rules, with no I/O: the retry back-off, the blob key of a recording file
//! and the parsing of an Azure Storage connection string.

use object_store::path::{Path as BlobPath, PathPart};
use std::path::Path;
use std::time::Duration;

/// Exponential back-off between the attempts of one file: the `n`-th retry waits
/// `initial · 2^(n-1)`, capped at `max`, of which the upper half is jittered so that replicas
/// failing together do not retry in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retry.
    pub initial: Duration,
    /// Longest wait between two attempts.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling of the wait before retry `n` (1-based; 0 is treated as 1).
    pub fn ceiling(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The wait before retry `n`, with `jitter` in `[0, 1)` (a random draw): between half the
    /// ceiling and the ceiling.
    pub fn delay(&self, n: u32, jitter: f64) -> Duration {
        let c = self.ceiling(n);
        let half = c / 2;
        half + (c - half).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// The blob key of `file` in the call folder `folder` (`<root>/<YYYY-MM-DD>/<call>/`):
/// `<prefix>/<YYYY-MM-DD>/<call>/<file>`. The WAV sink already sanitised the folder and file
/// names; each segment is still encoded as a key segment of its own (a `/` or `%` is escaped, `.`
/// and `..` cannot climb), so whatever a name holds the key stays under the prefix with exactly
/// this many segments. Empty segments of the prefix (`a//b/`) are dropped.
pub fn blob_key(prefix: &str, folder: &Path, file: &str) -> BlobPath {
    let name = |p: Option<&std::ffi::OsStr>| {
        p.map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "_".into())
    };
    let call = name(folder.file_name());
    let date = name(folder.parent().and_then(Path::file_name));
    let parts: Vec<PathPart<'static>> = prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| PathPart::from(s.to_string()))
        .chain([date, call, file.to_string()].map(PathPart::from))
        .collect();
    BlobPath::from_iter(parts)
}

/// Azurite's well-known development account (`UseDevelopmentStorage=true`).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The well-known key of [`DEV_ACCOUNT`] (public, published with the emulator).
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's default blob endpoint for [`DEV_ACCOUNT`].
pub const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// What an Azure Storage connection string says about the blob service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionString {
    /// `AccountName`.
    pub account: Option<String>,
    /// `AccountKey`.
    pub key: Option<String>,
    /// `SharedAccessSignature`.
    pub sas: Option<String>,
    /// `BlobEndpoint`, else built from `DefaultEndpointsProtocol`, the account and
    /// `EndpointSuffix` when the string has them.
    pub blob_endpoint: Option<String>,
}

/// Parses `Key=Value;Key=Value` (keys case-insensitive, values may hold `=`, unknown keys
/// ignored). `UseDevelopmentStorage=true` stands for Azurite's development account.
pub fn parse_connection_string(s: &str) -> Result<ConnectionString, String> {
    let mut c = ConnectionString::default();
    let (mut protocol, mut suffix, mut dev) = (None, None, false);
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("connection string part without '=' ({} chars)", part.len()))?;
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "accountname" => c.account = Some(v),
            "accountkey" => c.key = Some(v),
            "sharedaccesssignature" => c.sas = Some(v),
            "blobendpoint" => c.blob_endpoint = Some(v.trim_end_matches('/').to_string()),
            "defaultendpointsprotocol" => protocol = Some(v),
            "endpointsuffix" => suffix = Some(v),
            "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    if dev {
        c.account.get_or_insert_with(|| DEV_ACCOUNT.into());
        c.key.get_or_insert_with(|| DEV_ACCOUNT_KEY.into());
        c.blob_endpoint
            .get_or_insert_with(|| DEV_BLOB_ENDPOINT.into());
    }
    if c.blob_endpoint.is_none() {
        if let (Some(account), Some(suffix)) = (&c.account, &suffix) {
            let protocol = protocol.as_deref().unwrap_or("https");
            c.blob_endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
        }
    }
    if c.account.is_none() {
        return Err("connection string has no AccountName".into());
    }
    if c.key.is_none() && c.sas.is_none() {
        return Err("connection string has neither AccountKey nor SharedAccessSignature".into());
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn backoff_doubles_from_the_initial_wait_and_stops_at_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let ceilings: Vec<u128> = (1..=7).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.ceiling(0), b.ceiling(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2), "no overflow");
        // jitter keeps the wait between half the ceiling and the ceiling
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(3, 7.0), Duration::from_millis(400), "clamped");
        let mid = b.delay(3, 0.5);
        assert!(mid > Duration::from_millis(200) && mid < Duration::from_millis(400));
        let huge = Backoff {
            initial: Duration::from_secs(u64::MAX / 4),
            max: Duration::from_secs(60),
        };
        assert_eq!(huge.ceiling(5), Duration::from_secs(60), "overflow caps");
    }

    #[test]
    fn keys_are_prefix_date_call_file_and_hostile_names_stay_inside() {
        let folder = PathBuf::from("recordings")
            .join("2024-11-15")
            .join("call-1");
        assert_eq!(
            blob_key("rec/gw-a/", &folder, "call.json").as_ref(),
            "rec/gw-a/2024-11-15/call-1/call.json"
        );
        assert_eq!(
            blob_key("", &folder, "mixed.wav").as_ref(),
            "2024-11-15/call-1/mixed.wav"
        );
        // the WAV sink's own sanitised name of a hostile participant id is kept as it is
        let sanitised = crate::sinks::names::sanitize("../../etc/passwd");
        let key = blob_key("p", &folder, &format!("{sanitised}.wav"));
        assert_eq!(key.as_ref(), format!("p/2024-11-15/call-1/{sanitised}.wav"));
        // names that would climb or split are encoded into one segment each
        for (call, file) in [
            ("...", "a/b.wav"),
            ("x", ".."),
            ("y", "."),
            ("x%2F..%2Fy", "%2E%2E"),
            ("a\nb", "c?d#e"),
        ] {
            let key = blob_key("p/q", &PathBuf::from("r").join("d").join(call), file);
            let parts: Vec<String> = key.parts().map(|p| p.as_ref().to_string()).collect();
            assert_eq!(parts.len(), 5, "{key}");
            assert_eq!(&parts[..3], ["p", "q", "d"], "{key}");
            assert!(parts.iter().all(|p| p != "." && p != ".."), "{key}");
            assert!(!key.as_ref().contains("//"), "{key}");
        }
    }

    #[test]
    fn connection_strings_give_account_credential_and_endpoint() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=a2V5==;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(c.account.as_deref(), Some("acme"));
        assert_eq!(c.key.as_deref(), Some("a2V5=="), "= inside a value is kept");
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("https://acme.blob.core.windows.net")
        );
        let c = parse_connection_string(
            "accountname=acme; BlobEndpoint=http://127.0.0.1:10000/acme/;SharedAccessSignature=sv=2022&sig=x%3D",
        )
        .unwrap();
        assert_eq!(c.sas.as_deref(), Some("sv=2022&sig=x%3D"));
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:10000/acme")
        );
        let dev = parse_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(dev.account.as_deref(), Some(DEV_ACCOUNT));
        assert_eq!(dev.blob_endpoint.as_deref(), Some(DEV_BLOB_ENDPOINT));
        assert!(parse_connection_string("AccountName=acme").is_err());
        assert!(parse_connection_string("AccountKey=k").is_err());
        let err = parse_connection_string("AccountName=a;secretwithoutequals").unwrap_err();
        assert!(!err.contains("secretwithoutequals"), "no secret in errors");
    }
}
