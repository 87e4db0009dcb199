//! A thread for CPU work that can wait: composing the walks and rendering the exposition of a
//! large tenant (at 10,000 apps, about a hundred milliseconds of a core, at most once a
//! second). It runs below the async workers (nice 10 on Linux), so when the cores are short,
//! scrapes and backend answers are served first and a publish waits for a free moment; it
//! never waits longer than the cores are busy. Elsewhere it runs at normal priority.
//!
//! The only unsafe code here: one call into the C library with constant arguments.
#![allow(unsafe_code)]

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// The thread, alive as long as this handle.
pub struct Background {
    /// `None` when the thread could not be started: jobs then run on the blocking pool.
    jobs: Option<mpsc::Sender<Job>>,
}

impl Background {
    pub fn start(name: &str) -> Background {
        let (jobs, queue) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                lower_priority();
                while let Ok(job) = queue.recv() {
                    // A job that panics is reported to its caller (its result never comes);
                    // the thread goes on with the next.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        match started {
            Ok(_) => Background { jobs: Some(jobs) },
            Err(error) => {
                tracing::warn!(%error, thread = name, "cannot start a thread; its work runs on the blocking pool");
                Background { jobs: None }
            }
        }
    }

    /// Runs `job` on the thread; the caller's task waits without holding its worker. `None`
    /// when the job could not run to its end (it panicked, or the runtime is shutting down).
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let Some(jobs) = &self.jobs else {
            return tokio::task::spawn_blocking(job).await.ok();
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        jobs.send(job).ok()?;
        result.await.ok()
    }
}

/// Lowers the calling thread's priority to nice 10.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes any arguments; on Linux, PRIO_PROCESS with `who` 0 sets the nice
    // value of the calling thread only (setpriority(2), "the nice value is a per-thread
    // attribute"). A failure leaves the priority as it was, which is harmless.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_named_thread_below_normal_priority() {
        let background = Background::start("test-background");
        let first = background
            .run(|| std::thread::current().name().map(str::to_string))
            .await;
        assert_eq!(first.flatten().as_deref(), Some("test-background"));
        #[cfg(target_os = "linux")]
        {
            let nice = background.run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
            assert_eq!(nice.await, Some(10));
        }
    }

    #[tokio::test]
    async fn a_job_that_panics_is_reported_and_the_thread_goes_on() {
        let background = Background::start("test-background");
        assert_eq!(background.run(|| panic!("boom")).await, None::<()>);
        assert_eq!(background.run(|| 1).await, Some(1));
    }
}
