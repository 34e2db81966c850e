//! The one way the service waits before trying again: exponential backoff with jitter (`backon`), cut short by a
//! cancellation token (shutdown, or a batch abandoned). The loops around it decide what is worth retrying; the
//! Doris sink's own retries also honour `doris.retry_deadline` and use `backon` directly.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// The first wait.
pub const MIN_DELAY: Duration = Duration::from_millis(200);
/// The longest wait.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// Waits between attempts of one operation: from `min`, doubling up to [`MAX_DELAY`], with jitter, for as long as
/// it takes, unless `cancel` fires.
#[derive(Debug)]
pub struct Retry {
    delays: ExponentialBackoff,
    cancel: CancellationToken,
}

impl Retry {
    /// Starts at [`MIN_DELAY`].
    pub fn new(cancel: &CancellationToken) -> Retry {
        Retry::starting_at(MIN_DELAY, cancel)
    }

    /// Starts at `min`.
    pub fn starting_at(min: Duration, cancel: &CancellationToken) -> Retry {
        Retry {
            delays: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(MAX_DELAY.max(min))
                .with_jitter()
                .without_max_times()
                .build(),
            cancel: cancel.clone(),
        }
    }

    /// Sleeps the next delay; false when cancelled first (stop retrying).
    pub async fn pause(&mut self) -> bool {
        let delay = self.delays.next().unwrap_or(MAX_DELAY);
        tokio::select! {
            () = self.cancel.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pause_sleeps_and_cancellation_cuts_it_short() {
        let cancel = CancellationToken::new();
        let mut quick = Retry::starting_at(Duration::from_millis(1), &cancel);
        assert!(quick.pause().await);
        let mut slow = Retry::starting_at(Duration::from_secs(20), &cancel);
        let start = std::time::Instant::now();
        let stopper = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                cancel.cancel();
            })
        };
        assert!(!slow.pause().await);
        assert!(start.elapsed() < Duration::from_secs(5));
        stopper.await.unwrap();
        assert!(!quick.pause().await, "a cancelled retry stops at once");
    }
}
