//! Background tasks that must not die quietly: the prober, the backend scheduler, the
//! listeners, the SIGHUP reloader. A task that panics is logged with its message, counted in
//! `appproxy_exporter_task_panics_total{task}`, and started again after a backoff (1 s,
//! doubling to a minute); `/-/ready` answers 503 while one is down. Before, a prober that
//! panicked left the process up with frozen metrics and nothing said why.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::exposition::CounterVec;

/// The first wait before a task that panicked starts again.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A task that ran this long before it panicked starts again after the first wait, not
/// after the last one doubled: it was not failing in a loop.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// The supervised tasks' panics and which are down now; cheap to clone and share.
#[derive(Clone)]
pub struct Tasks(Arc<Inner>);

struct Inner {
    panics: CounterVec,
    /// The tasks waiting to start again, with when they will.
    down: Mutex<BTreeMap<&'static str, Instant>>,
    first_backoff: Duration,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks").field("down", &self.down()).finish()
    }
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks::new()
    }
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::with_backoff(FIRST_BACKOFF)
    }

    /// With a first backoff of the caller's choosing (tests shorten it).
    pub fn with_backoff(first_backoff: Duration) -> Tasks {
        Tasks(Arc::new(Inner {
            panics: CounterVec::new(
                "appproxy_exporter_task_panics_total",
                "Background tasks of the exporter that stopped with a panic and were started again, by task.",
                &["task"],
            ),
            down: Mutex::new(BTreeMap::new()),
            first_backoff,
        }))
    }

    /// How many times `task` panicked.
    pub fn panics(&self, task: &str) -> u64 {
        self.0.panics.get(&[task])
    }

    /// `appproxy_exporter_task_panics_total`, in the text format.
    pub fn write(&self, out: &mut impl std::fmt::Write) {
        self.0.panics.write(out);
    }

    /// The tasks down now (a panic, waiting to start again), with how long until they do.
    pub fn down(&self) -> Vec<(&'static str, Duration)> {
        let now = Instant::now();
        self.0
            .down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(task, at)| (*task, at.saturating_duration_since(now)))
            .collect()
    }

    /// Counts a panic of `task` that was caught where it happened (a publish, one backend
    /// request) and needs no restart here.
    pub fn caught(&self, task: &'static str, message: &str) {
        self.0.panics.inc(&[task]);
        tracing::error!(
            task,
            panic = message,
            "a background task panicked; it goes on"
        );
    }

    /// Runs `start()` as a task of its own, and again after each panic, until it returns.
    /// Dropping or aborting the returned future stops the task it runs.
    pub fn supervise<F, Fut>(
        &self,
        task: &'static str,
        mut start: F,
    ) -> impl Future<Output = ()> + use<F, Fut>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tasks = self.clone();
        async move {
            // Touched so that the series is there, at 0, before anything panics.
            tasks.0.panics.touch(&[task]);
            let mut backoff = tasks.0.first_backoff;
            loop {
                let started = Instant::now();
                let running = AbortOnDrop(tokio::spawn(start()));
                let outcome = running.join().await;
                let Err(error) = outcome else { return };
                if !error.is_panic() {
                    return; // Aborted: the runtime is shutting down.
                }
                let message = panic_message(error.into_panic());
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = tasks.0.first_backoff;
                }
                tasks.0.panics.inc(&[task]);
                tracing::error!(task, panic = %message, restart_in_seconds = backoff.as_secs_f64(), "a background task panicked; it starts again");
                tasks.set_down(task, Some(Instant::now() + backoff));
                tokio::time::sleep(backoff).await;
                tasks.set_down(task, None);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn set_down(&self, task: &'static str, until: Option<Instant>) {
        let mut down = self
            .0
            .down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match until {
            Some(at) => down.insert(task, at),
            None => down.remove(task),
        };
    }
}

/// A task that is aborted when its handle goes, so a supervisor that is stopped stops it too.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    async fn join(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The text a panic was raised with, when it has one.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_string(), |text| (*text).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Two panics, then a run that lasts: counted twice, down between them, up once running.
    #[tokio::test]
    async fn a_task_that_panics_is_counted_marked_down_and_started_again() {
        let tasks = Tasks::with_backoff(Duration::from_millis(200));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let supervisor = tokio::spawn(tasks.supervise("test", move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if run < 2 {
                    panic!("run {run} fails");
                }
                std::future::pending::<()>().await;
            }
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let down = tasks.down();
        assert_eq!(down.len(), 1, "{down:?}");
        assert_eq!(down[0].0, "test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "not started again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(tasks.down().is_empty(), "running again, so up");
        assert_eq!(tasks.panics("test"), 2);
        supervisor.abort();
    }

    /// Stopping the supervisor stops the task: nothing runs on after a shutdown.
    #[tokio::test]
    async fn stopping_the_supervisor_stops_its_task() {
        let tasks = Tasks::new();
        let alive = Arc::new(());
        let held = Arc::clone(&alive);
        let supervisor = tokio::spawn(tasks.supervise("test", move || {
            let held = Arc::clone(&held);
            async move {
                let _held = held;
                std::future::pending::<()>().await;
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(Arc::strong_count(&alive), 3);
        supervisor.abort();
        let _ = supervisor.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(Arc::strong_count(&alive), 1, "the task is gone");
    }
}
