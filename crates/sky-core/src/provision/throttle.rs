//! Retrying a throttled cloud call in place: the providers' one policy for reads, operation polls,
//! stops, starts and deletes, which may be repeated safely. Creates stay unretried (unless the API
//! takes an idempotency token), so a throttled create goes to failover at once.
//!
//! The wait honours the cloud's hint (`Retry-After`, Google's `RetryInfo`) capped at
//! [`Throttle::max_delay`], else backs off exponentially with jitter, and gives up after
//! [`Throttle::retries`] retries, so the total wait is bounded. Each retry is logged at `warn`
//! with the call and the wait: provider calls have no event sink, and the log is what
//! `SKY_DEV`/the timeline show while a launch seems stuck. What this module does not do: decide
//! what is throttling (each cloud's error table does, through the classifier it passes in).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// How a throttled call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub first_delay: Duration,
    /// Cap on one wait, also on a cloud's own `Retry-After`.
    pub max_delay: Duration,
    /// Retries after the first call; the total wait is at most `retries * max_delay`.
    pub retries: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            retries: 6,
        }
    }
}

/// What a classifier says of one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not throttling: returned to the caller as it is.
    Fail,
    /// Throttled; retry after the cloud's hint if it gave one.
    Throttled(Option<Duration>),
}

impl Throttle {
    /// Runs `call`, retrying it while `classify` says it was throttled.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        call: F,
        classify: impl Fn(&E) -> Verdict,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries)
            .with_jitter();
        let max = self.max_delay;
        call.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e| matches!(classify(e), Verdict::Throttled(_)))
            // Only a wait the backoff still allows is replaced, so the bound on retries holds
            // whatever the cloud asks for.
            .adjust(|e, wait| match (classify(e), wait) {
                (Verdict::Throttled(Some(hint)), Some(_)) => Some(hint.min(max)),
                (_, wait) => wait,
            })
            .notify(|e, wait| {
                tracing::warn!(call = what, wait_ms = wait.as_millis() as u64, error = %e, "throttled; retrying");
            })
            .await
    }
}

/// Reads a `Retry-After` header value: delay-seconds (the form ARM and Google send); an
/// HTTP-date is not used by either and gives `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> Throttle {
        Throttle {
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            retries: 3,
        }
    }

    // `Throttle::run` hands the classifier `&E`, and these tests' error type is `String`.
    #[allow(clippy::ptr_arg)]
    fn classify(e: &String) -> Verdict {
        if e.starts_with("throttled") {
            Verdict::Throttled(Some(Duration::from_secs(3600)))
        } else {
            Verdict::Fail
        }
    }

    #[tokio::test]
    async fn throttled_calls_are_retried_until_they_work_and_the_hint_is_capped() {
        let calls = AtomicU32::new(0);
        let got = fast()
            .run(
                "read",
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err("throttled".to_owned())
                    } else {
                        Ok(7)
                    }
                },
                classify,
            )
            .await;
        // An hour's hint capped at 5 ms: the test finishing at all shows the cap.
        assert_eq!(got, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_are_bounded_and_other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let got: Result<(), String> = fast()
            .run(
                "read",
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("throttled".to_owned())
                },
                classify,
            )
            .await;
        assert!(got.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "one call and three retries"
        );
        calls.store(0, Ordering::SeqCst);
        let got: Result<(), String> = fast()
            .run(
                "read",
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("denied".to_owned())
                },
                classify,
            )
            .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_is_read_as_seconds() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
