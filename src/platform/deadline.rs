//! The deadline every round's blocking reads run under: a batch of them (the connector's files,
//! the Service Control Manager, the registry, the certificate store, the event log) runs on a
//! thread of the blocking pool, never on an async worker, and the round waits for it at most a
//! limit. Nothing can stop a read that hangs (a network share that does not answer): its thread
//! is left to it, and the next rounds wait on that same read instead of blocking one more
//! thread each, until it finishes or a reload abandons it.

use std::time::{Duration, Instant};

/// How long a round waits for a batch of reads, and a caller for one file
/// ([`super::file::READ_DEADLINE`]): a local read takes milliseconds, so this is only ever
/// spent on a share or a service that does not answer.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// A batch of reads that may still be running from an earlier round.
pub struct Pending<T> {
    running: Option<Running<T>>,
}

struct Running<T> {
    /// The config generation it was started for.
    generation: u64,
    started: Instant,
    task: tokio::task::JoinHandle<T>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending { running: None }
    }
}

impl<T: Default + Send + 'static> Pending<T> {
    /// Runs `read` on a blocking thread, or goes on waiting for the one still running for this
    /// `generation`, at most `limit`; `Err` is how long it has run. A read that panicked gives
    /// `T::default()` (logged).
    pub async fn wait(
        &mut self,
        generation: u64,
        limit: Duration,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Duration> {
        let mut running = match self.running.take() {
            Some(running) if running.generation == generation => running,
            _ => Running {
                generation,
                started: Instant::now(),
                task: tokio::task::spawn_blocking(read),
            },
        };
        match tokio::time::timeout(limit, &mut running.task).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                tracing::error!(%error, "reading this host's files and settings failed");
                Ok(T::default())
            }
            Err(_) => {
                let waited = running.started.elapsed();
                self.running = Some(running);
                Err(waited)
            }
        }
    }

    /// Whether a read outlived its round and still runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A read that hangs (a share that does not answer) holds up no round, blocks one thread
    /// only however many rounds pass, and is abandoned by a reload.
    #[tokio::test]
    async fn a_hung_read_holds_up_no_round_and_blocks_one_thread() {
        let started = Arc::new(AtomicUsize::new(0));
        let (release, blocked) = mpsc::channel::<()>();
        let mut pending = Pending::default();
        let hung = {
            let started = Arc::clone(&started);
            move || {
                started.fetch_add(1, Ordering::SeqCst);
                blocked.recv().ok();
                7
            }
        };
        let limit = Duration::from_millis(50);
        assert!(pending.wait(1, limit, hung).await.is_err());
        for _ in 0..3 {
            let again = || unreachable!("a second read while the first hangs");
            assert!(pending.wait(1, limit, again).await.is_err());
        }
        assert_eq!(started.load(Ordering::SeqCst), 1);
        // It finishes: the next round uses its answer.
        release.send(()).unwrap();
        let never = || unreachable!("the first read's answer is used");
        assert_eq!(pending.wait(1, Duration::from_secs(5), never).await, Ok(7));
        assert!(!pending.is_running());

        // A reload abandons a hung read and reads afresh.
        let (_keep, blocked) = mpsc::channel::<()>();
        let hung = move || blocked.recv().map_or(0, |()| 1);
        assert!(pending.wait(2, limit, hung).await.is_err());
        assert_eq!(pending.wait(3, limit, || 9).await, Ok(9));
    }
}
