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

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How much lower than the request workers hashes are scheduled (Linux nice).
const HASH_THREAD_NICENESS: i32 = 10;

pub struct HashPool {
    jobs: Mutex<Sender<Job>>,
    /// Running plus waiting hashes.
    admission: Arc<Semaphore>,
    threads: usize,
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
        for n in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new().name(format!("signet-hash-{n}")).spawn(move || work(&receiver));
            if let Err(err) = spawned {
                log::error!("cannot start password hashing thread {n}: {err}");
            }
        }
        HashPool { jobs: Mutex::new(sender), admission: Arc::new(Semaphore::new(threads + queue)), threads }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// A place in the pool, or `503` at once when it is full.
    pub fn reserve(&self) -> Result<HashSlot, ApiError> {
        self.admission.clone().try_acquire_owned().map(HashSlot).map_err(|_| ApiError::HashingBusy)
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

fn work(receiver: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // Hold the lock only to take one job, not while running it.
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // the pool is gone
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
    use super::*;

    #[test]
    fn a_full_pool_refuses_at_once_and_a_finished_hash_frees_its_place() {
        let pool = HashPool::start(1, 1);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let first = pool.reserve().expect("a thread is free");
        let second = pool.reserve().expect("a queue place is free");
        assert!(matches!(pool.reserve(), Err(ApiError::HashingBusy)), "thread and queue are taken");
        drop(second);
        let _third = pool.reserve().expect("a place given back is free again");
        let blocked = pool.run(first, move || release_rx.recv().is_ok());
        release_tx.send(()).expect("send");
        assert!(runtime.block_on(blocked).expect("ran"));
        pool.reserve().expect("the finished hash freed its place");
    }

    #[test]
    fn never_more_threads_than_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(HashPool::start(10_000, 1).threads(), cores);
        assert_eq!(HashPool::start(0, 1).threads(), cores);
        assert_eq!(HashPool::start(1, 1).threads(), 1);
    }
}
