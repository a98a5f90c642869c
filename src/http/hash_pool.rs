//! Password hashing on its own small, bounded pool, so a login flood cannot
//! starve the rest of the service.
//!
//! bcrypt is the one piece of work a client can ask for that costs hundreds of
//! milliseconds of CPU. On actix's blocking pool (512 threads) a flood ran that
//! many hashes at once and refreshes and protected reads waited behind them.
//! Here hashes run on `passwords.hash_threads` threads (at most the number of
//! cores), at a lower scheduling priority than the request workers on Linux,
//! and at most `passwords.hash_queue` more may wait; beyond that a request is
//! refused at once with `503 unavailable` and `Retry-After` instead of waiting
//! without end. The slot is taken before any database work, so a refused
//! login costs nothing and counts toward no lockout.
//!
//! Hashes also give way while other requests are in flight: then only half
//! the threads (at least one) take hashes, and each rests after a hash as long
//! as the hash took, so hashing gets at most a quarter of the cores while the
//! service has other work, and every thread at full speed when it has none.
//! Lower priority alone was not enough (issue 16, benches/login-flood.sh):
//! SCHED_IDLE hashes took about twice the idle time a refresh or `/me` load
//! left, and those kept 0.73-0.88 of their throughput under a flood at twice
//! the bcrypt capacity; giving way keeps 0.85-0.99. Logins are slower under
//! load (a quarter of the capacity) but never stopped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::state::AppState;
use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How much lower than the request workers hashes are scheduled (Linux nice).
const HASH_THREAD_NICENESS: i32 = 10;

pub struct HashPool {
    jobs: Mutex<Sender<Job>>,
    /// Running plus waiting hashes.
    admission: Arc<Semaphore>,
    threads: usize,
    load: Arc<Load>,
}

/// How often a thread that gives way looks again whether it still must.
const GIVE_WAY_POLL: Duration = Duration::from_millis(10);

/// Requests in flight, and how many of them asked for a hash.
#[derive(Default)]
struct Load {
    requests: AtomicUsize,
    password_requests: AtomicUsize,
}

impl Load {
    /// Whether requests that asked for no hash are in flight (until their
    /// handler answers: a stream that goes on after it, like the status-list
    /// events, does not count).
    fn other_work(&self) -> bool {
        self.requests.load(Ordering::Relaxed) > self.password_requests.load(Ordering::Relaxed)
    }
}

/// A request in flight ([`count_in_flight`]); counted until dropped.
struct InFlight(Arc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A password check (a login, a registration...), counted from its first
/// [`HashPool::reserve`] until the request is gone, database work after the
/// hash included, so hashes do not give way to themselves. Kept in the
/// request's extensions, which actix drops (or clears) with the request; only
/// password requests pay for it.
struct PasswordRequest(Arc<Load>);

impl Drop for PasswordRequest {
    fn drop(&mut self) {
        self.0.password_requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A place in the pool, taken before the work it is for is prepared; held
/// (never read) until that work ends.
pub struct HashSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl HashPool {
    /// `threads` 0 means one per core; more than the cores is cut to the cores.
    pub fn start(threads: usize, queue: usize) -> HashPool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = if threads == 0 { cores } else { threads.min(cores) };
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let load = Arc::new(Load::default());
        let lanes_under_load = (threads / 2).max(1);
        for n in 0..threads {
            let receiver = receiver.clone();
            let load = load.clone();
            let under_load = n < lanes_under_load;
            let spawned = std::thread::Builder::new()
                .name(format!("signet-hash-{n}"))
                .spawn(move || work(&receiver, &load, under_load));
            if let Err(err) = spawned {
                log::error!("cannot start password hashing thread {n}: {err}");
            }
        }
        HashPool { jobs: Mutex::new(sender), admission: Arc::new(Semaphore::new(threads + queue)), threads, load }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// A place in the pool for a hash `req` needs, or `503` at once when it
    /// is full.
    pub fn reserve(&self, req: &HttpRequest) -> Result<HashSlot, ApiError> {
        let permit = self.admission.clone().try_acquire_owned().map_err(|_| ApiError::HashingBusy)?;
        let mut extensions = req.extensions_mut();
        if !extensions.contains::<PasswordRequest>() {
            self.load.password_requests.fetch_add(1, Ordering::Relaxed);
            extensions.insert(PasswordRequest(self.load.clone()));
        }
        Ok(HashSlot(permit))
    }

    /// Counts a request in flight until the guard is dropped.
    fn in_flight(&self) -> InFlight {
        self.load.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(self.load.clone())
    }

    /// Runs `work` on a hashing thread; the slot is given back when it ends.
    pub async fn run<T, F>(&self, slot: HashSlot, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let output = work();
            // Free the place before answering, so whoever reads the answer
            // can take it again at once.
            drop(slot);
            let _ = done.send(output);
        });
        self.jobs
            .lock()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("hash pool lock poisoned")))?
            .send(job)
            .map_err(|_| ApiError::internal(anyhow::anyhow!("hash pool stopped")))?;
        result.await.map_err(|_| ApiError::internal(anyhow::anyhow!("password hashing thread failed")))
    }
}

/// Middleware: every request counts as in flight until its handler answers,
/// so hashes give way to it.
pub async fn count_in_flight(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let _in_flight = req.app_data::<web::Data<AppState>>().map(|state| state.hash_pool.in_flight());
    next.call(req).await
}

/// A hashing thread. `under_load`: whether it keeps taking hashes while other
/// requests are in flight (the first half of the threads, at least one).
fn work(receiver: &Mutex<Receiver<Job>>, load: &Load, under_load: bool) {
    lower_priority();
    loop {
        if !under_load && load.other_work() {
            std::thread::sleep(GIVE_WAY_POLL);
            continue;
        }
        // Hold the lock only to take one job, not while running it. A thread
        // that gives way under load waits a little at a time, to look again,
        // and looks again once it has the lock: it may have queued for it
        // (behind a thread waiting for jobs) since before the load began.
        let job = match receiver.lock() {
            Ok(receiver) if under_load => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Ok(_) if load.other_work() => continue,
            Ok(receiver) => receiver.recv_timeout(GIVE_WAY_POLL),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                let started = Instant::now();
                job();
                if load.other_work() {
                    // Half the time at most, while there is other work.
                    std::thread::sleep(started.elapsed());
                }
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return, // the pool is gone
        }
    }
}

/// Request workers win the CPU from hashes when both want it; hashes still
/// use every idle cycle. SCHED_IDLE first: a request thread that wakes takes
/// the CPU from it at once. Nice alone was not enough (issue 16,
/// benches/login-flood.sh): at nice 10 or even 19 the scheduler let a hash
/// finish its slice before a woken request thread ran, and refreshes lost 40%
/// of their throughput to a login flood. Nice stays as the fallback where
/// SCHED_IDLE is refused.
#[cfg(target_os = "linux")]
fn lower_priority() {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadPriority,
        ThreadSchedulePolicy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle).is_ok() {
        return;
    }
    // Linux nice is per thread: setpriority on this thread's own id.
    let tid = rustix::thread::gettid();
    if let Err(err) = rustix::process::setpriority_process(Some(tid), HASH_THREAD_NICENESS) {
        log::debug!("cannot lower the priority of a hashing thread: {err}");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use futures_util::future::join_all;

    use super::*;

    #[test]
    fn a_full_pool_refuses_at_once_and_a_finished_hash_frees_its_place() {
        let pool = HashPool::start(1, 1);
        let req = TestRequest::default().to_http_request();
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = pool.reserve(&req).expect("a thread is free");
        let second = pool.reserve(&req).expect("a queue place is free");
        assert!(matches!(pool.reserve(&req), Err(ApiError::HashingBusy)), "thread and queue are taken");
        drop(second);
        let _third = pool.reserve(&req).expect("a place given back is free again");
        let blocked = pool.run(first, move || release_rx.recv().is_ok());
        release_tx.send(()).expect("send");
        assert!(runtime.block_on(blocked).expect("ran"));
        pool.reserve(&req).expect("the finished hash freed its place");
    }

    #[test]
    fn never_more_threads_than_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(HashPool::start(10_000, 1).threads(), cores);
        assert_eq!(HashPool::start(0, 1).threads(), cores);
        assert_eq!(HashPool::start(1, 1).threads(), 1);
    }

    const HASH_TIME: Duration = Duration::from_millis(60);

    /// Runs `n` stand-in hashes of HASH_TIME for `req`; the most that ran at
    /// once, and how long they all took.
    fn run_hashes(pool: &HashPool, req: &HttpRequest, n: usize) -> (usize, Duration) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let started = Instant::now();
        let hashes = (0..n).map(|_| {
            let slot = pool.reserve(req).expect("a place");
            let (running, most) = (running.clone(), most.clone());
            pool.run(slot, move || {
                most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                std::thread::sleep(HASH_TIME);
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for result in runtime.block_on(join_all(hashes)) {
            result.expect("ran");
        }
        (most.load(Ordering::SeqCst), started.elapsed())
    }

    #[test]
    fn hashes_give_way_while_other_requests_are_in_flight() {
        let pool = HashPool::start(2, 8);
        // Idle first: the giving-way thread then queues for the job lock behind
        // the one waiting for jobs, and must still give way once it gets it.
        std::thread::sleep(GIVE_WAY_POLL * 3);
        let other = pool.in_flight();
        let (login, _login_in_flight) = (TestRequest::default().to_http_request(), pool.in_flight());
        let (most, took) = run_hashes(&pool, &login, 3);
        assert_eq!(most, 1, "one thread hashes under load");
        // Each hash is followed by a rest as long as itself (the last one's too).
        assert!(took >= HASH_TIME * 5, "hashing took half the time at most: {took:?} for 3 hashes");
        drop(other);
        let (most, _) = run_hashes(&pool, &login, 4);
        assert_eq!(most, pool.threads(), "without other work every thread hashes");
    }

    #[test]
    fn password_requests_do_not_make_hashes_give_way() {
        let pool = HashPool::start(2, 8);
        let login = TestRequest::default().to_http_request();
        let in_flight = pool.in_flight();
        assert!(pool.load.other_work(), "a request that has asked for no hash yet is other work");
        let (most, _) = run_hashes(&pool, &login, 4);
        assert!(!pool.load.other_work(), "once it asked for one, it is a password request until it ends");
        assert_eq!(pool.load.password_requests.load(Ordering::SeqCst), 1, "counted once, however many hashes");
        assert_eq!(most, pool.threads(), "every thread hashes for password requests");
        drop(in_flight);
        drop(login);
        assert_eq!(pool.load.requests.load(Ordering::SeqCst), 0);
        assert_eq!(pool.load.password_requests.load(Ordering::SeqCst), 0, "counted out when it ends");
    }
}
