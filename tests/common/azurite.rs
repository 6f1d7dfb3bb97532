//! Azurite, the Azure Storage emulator, for the upload tests: its account URL, a fresh container
//! per test (or a visible SKIPPED when no emulator answers; a failure under `CI`), and a reader of
//! the container.

use acs_media_gateway::upload::policy::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::ObjectStore;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The emulator's account URL (path style: `http://host:port/<account>`).
pub fn azurite_url() -> String {
    std::env::var("ACS_TEST_AZURITE_URL")
        .unwrap_or_else(|_| format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"))
}

/// A fresh container in Azurite, or `None` (skipped) when no emulator answers.
pub async fn container() -> Option<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let url = azurite_url();
    let name = format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    match tokio::time::timeout(Duration::from_secs(5), create_container(&url, &name)).await {
        Ok(Ok(())) => Some(name),
        r => {
            let why = r.map_or_else(|_| "timed out".into(), |e| e.unwrap_err());
            let msg = format!(
                "SKIPPED: no Azurite at {url} ({why}; .ci/run starts one; set ACS_TEST_AZURITE_URL)"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("{msg}");
            None
        }
    }
}

/// `Create Container`, signed with the development account's shared key (object_store does
/// not create containers; the gateway expects one to exist).
async fn create_container(url: &str, name: &str) -> Result<(), String> {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    // the account URL's path (`/devstoreaccount1`), part of the signed resource
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{DEV_ACCOUNT}{}/{name}\nrestype:container",
        path.trim_end_matches('/')
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(DEV_ACCOUNT_KEY)
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/{name}?restype=container",
            url.trim_end_matches('/')
        ))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("Authorization", format!("SharedKey {DEV_ACCOUNT}:{sig}"))
        .body(Vec::new())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        201 => Ok(()),
        s => Err(format!(
            "create container: HTTP {s}: {}",
            resp.text().await.unwrap_or_default()
        )),
    }
}

/// The test's view of the container.
pub fn reader(container: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        MicrosoftAzureBuilder::new()
            .with_account(DEV_ACCOUNT)
            .with_access_key(DEV_ACCOUNT_KEY)
            .with_container_name(container)
            .with_endpoint(azurite_url())
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}
