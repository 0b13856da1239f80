//! A deadline that may be absent, for `select!` loops whose next wake-up
//! a core decides (`poll_timeout` returns `Option<Instant>`).

/// Sleeps until `at`; forever when there is no deadline.
pub async fn sleep_until(at: Option<impl Into<tokio::time::Instant>>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
