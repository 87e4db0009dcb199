//! The per-app schedule of steps 7-10's requests: every app's backend is requested again
//! `probes.backend.interval` after its previous answer, at most `probes.concurrency` at once.
//! A hanging backend holds only its own request. One task keeps the schedule (when each app
//! is due); a request runs in a task of its own only while it runs, so 10,000 apps that wait
//! for their turn cost a queue entry each, not a task.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{Answered, BackendStore, Target, request_both};
use crate::supervise::{Tasks, panic_message};
use crate::walk::AppKey;

/// What to request and how often: replaced whole by [`Scheduler::sync`].
#[derive(Clone, Default)]
struct Plan {
    targets: Arc<HashMap<AppKey, Arc<Target>>>,
    interval: Duration,
    concurrency: usize,
}

/// How far apart new apps' first requests start, at most (less when an interval is shorter
/// than this for every app): 10,000 apps start within 20 s, or within their interval.
const START_SPACING: Duration = Duration::from_millis(2);

/// Keeps every app's backend requested on its own schedule, for as long as it lives.
pub struct Scheduler {
    plan: watch::Sender<Plan>,
    task: JoinHandle<()>,
}

impl Scheduler {
    /// The schedule runs supervised by `tasks`: a panic in it starts it again with the plan
    /// in force, and one in a request counts and puts the app back in the queue.
    pub fn new(store: Arc<BackendStore>, tasks: &Tasks) -> Scheduler {
        let (plan, _) = watch::channel(Plan::default());
        let (watched, supervisor) = (plan.clone(), tasks.clone());
        let task = tokio::spawn(tasks.supervise("backend_scheduler", move || {
            run(watched.subscribe(), Arc::clone(&store), supervisor.clone())
        }));
        Scheduler { plan, task }
    }

    /// Requests `targets` from now on: new apps at once, gone ones no more, changed ones
    /// (another URL, timeout or proxy) afresh.
    pub fn sync(&mut self, targets: &[Arc<Target>], interval: Duration, concurrency: usize) {
        let concurrency = concurrency.max(1);
        let unchanged = {
            let plan = self.plan.borrow();
            plan.interval == interval
                && plan.concurrency == concurrency
                && plan.targets.len() == targets.len()
                && targets
                    .iter()
                    .all(|t| plan.targets.get(&t.key).is_some_and(|p| Arc::ptr_eq(p, t)))
        };
        // Most rounds: the same targets, shared from the last round.
        if unchanged {
            return;
        }
        let targets = targets
            .iter()
            .map(|t| (t.key.clone(), Arc::clone(t)))
            .collect();
        self.plan.send_replace(Plan {
            targets: Arc::new(targets),
            interval,
            concurrency,
        });
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A finished request, with the permit it ran under: the permit is given back only once the
/// answer is recorded, so that `probes.concurrency` bounds the answers waiting to be read as
/// well as the requests running (at hundreds of answers a second, the finished ones
/// otherwise piled up by the thousand, each holding its task's memory).
type Answer = (Arc<Target>, Answered, OwnedSemaphorePermit);

/// The schedule: which app is due when, and the requests running now.
struct Schedule {
    plan: Plan,
    due: BinaryHeap<Reverse<(Instant, AppKey)>>,
    running: HashMap<AppKey, (Arc<Target>, AbortHandle)>,
    requests: JoinSet<Answer>,
    permits: Arc<Semaphore>,
}

async fn run(mut watched: watch::Receiver<Plan>, store: Arc<BackendStore>, tasks: Tasks) {
    let mut schedule = Schedule::new();
    // Started again after a panic, the schedule takes the plan in force at once.
    let plan = watched.borrow_and_update().clone();
    schedule.replan(plan, &store);
    loop {
        let next = schedule.due.peek().map(|Reverse((at, _))| *at);
        let permit = async {
            match next {
                Some(at) => {
                    tokio::time::sleep_until(at).await;
                    Arc::clone(&schedule.permits).acquire_owned().await.ok()
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = watched.changed() => {
                if changed.is_err() {
                    return; // The scheduler is gone.
                }
                let plan = watched.borrow_and_update().clone();
                schedule.replan(plan, &store);
            }
            Some(permit) = permit => schedule.start_next(permit),
            Some(done) = schedule.requests.join_next(), if !schedule.requests.is_empty() => {
                match done {
                    Ok((target, answered, _permit)) => {
                        schedule.answered(&target, answered, &store);
                    }
                    // A request that panicked: counted, and its app asked again later rather
                    // than never again.
                    Err(error) if error.is_panic() => {
                        let id = error.id();
                        tasks.caught("backend_request", &panic_message(error.into_panic()));
                        schedule.lost(id);
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

impl Schedule {
    /// Nothing planned yet; the first plan sets the bound.
    fn new() -> Schedule {
        Schedule {
            plan: Plan::default(),
            due: BinaryHeap::new(),
            running: HashMap::new(),
            requests: JoinSet::new(),
            permits: Arc::new(Semaphore::new(1)),
        }
    }

    /// Takes a new plan: a new bound restarts every request under it; apps that are new or
    /// changed are due now; the ones gone stop.
    fn replan(&mut self, plan: Plan, store: &BackendStore) {
        if plan.concurrency != self.plan.concurrency {
            for (_, (_, request)) in self.running.drain() {
                request.abort();
            }
            self.permits = Arc::new(Semaphore::new(plan.concurrency));
        }
        let now = Instant::now();
        let old = std::mem::replace(&mut self.plan, plan);
        self.running.retain(|key, (target, request)| {
            let keep = self.plan.targets.get(key) == Some(target);
            if !keep {
                request.abort();
            }
            keep
        });
        let unchanged = |key: &AppKey| {
            old.targets.get(key) == self.plan.targets.get(key) && old.interval == self.plan.interval
        };
        self.due.retain(|Reverse((_, key))| unchanged(key));
        let queued: std::collections::HashSet<&AppKey> =
            self.due.iter().map(|Reverse((_, key))| key).collect();
        let fresh: Vec<AppKey> = self
            .plan
            .targets
            .keys()
            .filter(|key| !queued.contains(key) && !self.running.contains_key(*key))
            .cloned()
            .collect();
        // New apps start a few milliseconds apart, not in the same instant: hundreds of answers
        // arriving together would be read one after another and timed late (by about 10 ms
        // for 512 at once on two cores). Later requests keep the spacing, each an interval
        // after its own answer.
        let spacing = (self.plan.interval / u32::try_from(fresh.len()).unwrap_or(u32::MAX).max(1))
            .min(START_SPACING);
        let mut at = now;
        for key in fresh {
            self.due.push(Reverse((at, key)));
            at += spacing;
        }
        store.retain(|key| self.plan.targets.contains_key(key));
    }

    /// Starts the app that is due first, with the permit it waited for.
    fn start_next(&mut self, permit: OwnedSemaphorePermit) {
        let Some(Reverse((_, key))) = self.due.pop() else {
            return;
        };
        let Some(target) = self.plan.targets.get(&key).cloned() else {
            return;
        };
        let request = Arc::clone(&target);
        let handle = self.requests.spawn(async move {
            let answered = request_both(&request).await;
            (request, answered, permit)
        });
        self.running.insert(key, (target, handle));
    }

    /// The request of task `id` ended without an answer: its app goes back in the queue, an
    /// interval from now.
    fn lost(&mut self, id: tokio::task::Id) {
        let key = self
            .running
            .iter()
            .find(|(_, (_, request))| request.id() == id)
            .map(|(key, _)| key.clone());
        if let Some(key) = key {
            self.running.remove(&key);
            let again = crate::clock::later_tokio(Instant::now(), self.plan.interval);
            self.due.push(Reverse((again, key)));
        }
    }

    /// Records an answer and puts the app back in the queue, an interval from now.
    fn answered(&mut self, target: &Arc<Target>, answered: Answered, store: &BackendStore) {
        let key = &target.key;
        if self.running.get(key).is_none_or(|(t, _)| t != target) {
            return; // Replaced or dropped while it ran.
        }
        self.running.remove(key);
        if let Some(failure) = &answered.internal.failure {
            tracing::debug!(group = %key.connector_group, app = %key.app, phase = failure.phase.label(), failure = %failure, "backend request failed");
        }
        store.record(target, answered);
        store.changed.notify_one();
        let again = crate::clock::later_tokio(Instant::now(), self.plan.interval);
        self.due.push(Reverse((again, key.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(app: &str, url: &str) -> Arc<Target> {
        Arc::new(Target::new(
            AppKey::new("G", app),
            url,
            true,
            crate::config::values::BackendTimeout::Default,
            &crate::config::Settings::default().probes.backend,
            None,
        ))
    }

    /// Every app is requested at once, then again an interval after its answer; an app taken
    /// out of the plan is requested no more, and its answers are forgotten.
    #[tokio::test]
    async fn apps_are_requested_on_their_own_schedule_until_they_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        let store = Arc::new(BackendStore::default());
        let mut scheduler = Scheduler::new(Arc::clone(&store), &Tasks::new());
        let (a, b) = (target("a", &url), target("b", &url));
        scheduler.sync(
            &[Arc::clone(&a), Arc::clone(&b)],
            Duration::from_millis(100),
            4,
        );
        tokio::time::sleep(Duration::from_millis(550)).await;
        let both = hits.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (6..=14).contains(&both),
            "{both} requests for two apps in 550 ms"
        );
        assert!(store.get(&a.key).is_some() && store.get(&b.key).is_some());

        scheduler.sync(&[Arc::clone(&a)], Duration::from_millis(100), 4);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            store.get(&b.key).is_none(),
            "a gone app's answers are forgotten"
        );
        let before = hits.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let one = hits.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert!(
            (3..=7).contains(&one),
            "{one} requests for one app in 500 ms"
        );
    }

    /// Many new apps start a few milliseconds apart instead of in one burst, and within their
    /// interval; a few start at once.
    #[tokio::test]
    async fn new_apps_start_spaced_out_not_in_one_burst() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (accepted, mut accepts) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = accepted.send(Instant::now());
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        let store = Arc::new(BackendStore::default());
        let mut scheduler = Scheduler::new(Arc::clone(&store), &Tasks::new());
        let apps: Vec<_> = (0..50).map(|i| target(&format!("app{i}"), &url)).collect();
        scheduler.sync(&apps, Duration::from_secs(60), 512);
        let mut times = Vec::new();
        while times.len() < 50 {
            times.push(accepts.recv().await.unwrap());
        }
        let span = times[49] - times[0];
        assert!(
            span >= START_SPACING * 40 && span < Duration::from_secs(5),
            "50 apps' first requests spanned {span:?}"
        );

        let mut scheduler = Scheduler::new(store, &Tasks::new());
        let started = Instant::now();
        scheduler.sync(&apps[..3], Duration::from_millis(30), 512);
        for _ in 0..3 {
            accepts.recv().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "three apps start at once"
        );
    }

    /// At most `concurrency` requests run at once, and a hanging backend holds only its own
    /// permit: the app beside three hanging ones is requested again and again.
    #[tokio::test]
    async fn hanging_backends_hold_only_their_own_permits() {
        let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hang_url = format!("http://{}/", hang.local_addr().unwrap());
        let held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&held);
        tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = hang.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                sockets.push(socket);
            }
        });
        let store = Arc::new(BackendStore::default());
        let mut scheduler = Scheduler::new(Arc::clone(&store), &Tasks::new());
        let mut all: Vec<Arc<Target>> = (0..3)
            .map(|i| target(&format!("h{i}"), &hang_url))
            .collect();
        let refused = target("a-refused", "http://127.0.0.1:1/");
        all.push(Arc::clone(&refused));
        scheduler.sync(&all, Duration::from_millis(20), 4);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            held.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "three hang at once: the fourth permit serves the app that answers"
        );
        let answered = store.get(&refused.key).map_or(0, |b| b.recent.len());
        assert_eq!(answered, super::super::RECENT, "requested again and again");
    }

    /// A finished request keeps its permit until its answer is recorded: `probes.concurrency`
    /// bounds the answers waiting to be read, not only the requests running.
    #[tokio::test]
    async fn an_answer_holds_its_permit_until_it_is_recorded() {
        let store = BackendStore::default();
        let refused = target("refused", "http://127.0.0.1:1/");
        let mut schedule = Schedule::new();
        let plan = Plan {
            targets: Arc::new(HashMap::from([(refused.key.clone(), Arc::clone(&refused))])),
            interval: Duration::from_secs(60),
            concurrency: 1,
        };
        schedule.replan(plan, &store);
        let permit = Arc::clone(&schedule.permits).acquire_owned().await.unwrap();
        schedule.start_next(permit);
        let started = Instant::now();
        while !schedule.running[&refused.key].1.is_finished() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the request never ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            schedule.permits.available_permits(),
            0,
            "the finished request's answer is not recorded yet"
        );
        let (target, answered, permit) = schedule.requests.join_next().await.unwrap().unwrap();
        schedule.answered(&target, answered, &store);
        drop(permit);
        assert_eq!(schedule.permits.available_permits(), 1);
        assert!(store.get(&refused.key).is_some());
    }
}
