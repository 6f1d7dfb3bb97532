//! The one way the tests wait for something: poll a condition every few milliseconds until it
//! holds, within a generous bound (a loaded 2-core box must not make a test fail), and say what
//! was awaited and what was last seen when it never holds. Shared by `tests/common` and
//! `tests/forward_support` (included by path, so it uses nothing but tokio).
#![allow(dead_code)]

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(5);

/// Polls `check` until it returns `Ok`, and returns that value; panics after `within`, naming
/// `what` and the last `Err` seen (the state the test was waiting to change).
pub async fn eventually<T, E, Fut>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Fut,
) -> T
where
    E: Debug,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {last:#?}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls the async condition `cond` until it holds; panics after `within`, naming `what`.
pub async fn wait_until<Fut>(what: &str, within: Duration, mut cond: impl FnMut() -> Fut)
where
    Fut: Future<Output = bool>,
{
    eventually(what, within, || {
        let held = cond();
        async move {
            if held.await {
                Ok(())
            } else {
                Err("false")
            }
        }
    })
    .await
}

/// Polls the plain condition `cond` until it holds or `within` passes; returns whether it held
/// (for `assert!(until(..).await, "message")`).
pub async fn until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
