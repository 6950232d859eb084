//! A small thread pool for the decode kernels. Decoding calls a parallel matrix-vector product
//! about a hundred times per token, tens of microseconds apart; waking sleeping threads for each
//! (rayon's futex park/unpark) cost a quarter of decode time. Here workers spin briefly on an
//! atomic epoch between jobs and only then sleep, and the caller works alongside them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

type Job = *const (dyn Fn(usize) + Sync);

struct Slot {
    epoch: u64,
    job: Job,
    tasks: usize,
}

// SAFETY: the job pointer is only called while its `run` call is blocked waiting for it (see
// `run`), so sending the pointer between threads never outlives what it points to.
unsafe impl Send for Slot {}

struct Shared {
    /// (epoch << 32) | next task index: tasks are claimed by compare-and-swap within one epoch.
    state: AtomicU64,
    epoch: AtomicU64,
    done: AtomicUsize,
    slot: Mutex<Slot>,
    sleeping: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
}

/// Runs `f(0..n)` across the calling thread and the pool's workers.
pub struct SpinPool {
    shared: Arc<Shared>,
    workers: usize,
    run_lock: Mutex<()>,
}

fn claim_and_run(shared: &Shared, epoch: u64, job: &(dyn Fn(usize) + Sync), tasks: usize) {
    loop {
        let cur = shared.state.load(Ordering::Acquire);
        if cur >> 32 != epoch & 0xffff_ffff {
            return;
        }
        let i = (cur & 0xffff_ffff) as usize;
        if i >= tasks {
            return;
        }
        if shared
            .state
            .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            job(i);
            shared.done.fetch_add(1, Ordering::Release);
        }
    }
}

fn worker(shared: Arc<Shared>) {
    let mut seen = 0u64;
    loop {
        let mut since = Instant::now();
        let epoch = loop {
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            let e = shared.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if since.elapsed() > SPIN {
                let guard = shared.sleep_lock.lock().unwrap_or_else(|p| p.into_inner());
                shared.sleeping.fetch_add(1, Ordering::AcqRel);
                if shared.epoch.load(Ordering::Acquire) == seen && !shared.shutdown.load(Ordering::Acquire) {
                    let _ = shared.wake.wait_timeout(guard, Duration::from_millis(50));
                }
                shared.sleeping.fetch_sub(1, Ordering::AcqRel);
                since = Instant::now();
            }
        };
        seen = epoch;
        let (job, tasks) = {
            let slot = shared.slot.lock().unwrap_or_else(|p| p.into_inner());
            if slot.epoch != epoch {
                continue;
            }
            (slot.job, slot.tasks)
        };
        // SAFETY: `claim_and_run` calls `job` only after claiming a task of this epoch, and the
        // `run` that published it waits until every task of the epoch has finished.
        claim_and_run(&shared, epoch, unsafe { &*job }, tasks);
    }
}

impl SpinPool {
    /// A pool with `threads` threads in all (the caller counts as one).
    pub fn new(threads: usize) -> Self {
        let noop: &'static (dyn Fn(usize) + Sync) = &|_| {};
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            slot: Mutex::new(Slot {
                epoch: 0,
                job: noop as Job,
                tasks: 0,
            }),
            sleeping: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let mut workers = 0;
        for i in 1..threads.max(1) {
            let s = shared.clone();
            if std::thread::Builder::new()
                .name(format!("s1-decode-{i}"))
                .spawn(move || worker(s))
                .is_ok()
            {
                workers += 1;
            }
        }
        Self {
            shared,
            workers,
            run_lock: Mutex::new(()),
        }
    }

    /// The process-wide pool: `S1_THREADS` threads, else one per available core.
    pub fn global() -> &'static SpinPool {
        static POOL: OnceLock<SpinPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let n = std::env::var("S1_THREADS")
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            SpinPool::new(n)
        })
    }

    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Calls `f(i)` for every `i < tasks`, spread over the pool; returns when all are done.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        if self.workers == 0 || tasks == 1 {
            (0..tasks).for_each(f);
            return;
        }
        let _one_job = self.run_lock.lock().unwrap_or_else(|p| p.into_inner());
        let sh = &*self.shared;
        let epoch = sh.epoch.load(Ordering::Acquire) + 1;
        {
            let mut slot = sh.slot.lock().unwrap_or_else(|p| p.into_inner());
            // SAFETY: erases the borrow's lifetime; the pointer is only used until this call
            // returns (see `worker`).
            let job: Job =
                unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f) };
            *slot = Slot { epoch, job, tasks };
        }
        sh.done.store(0, Ordering::Release);
        sh.state.store((epoch & 0xffff_ffff) << 32, Ordering::Release);
        sh.epoch.store(epoch, Ordering::Release);
        if sh.sleeping.load(Ordering::Acquire) > 0 {
            let _g = sh.sleep_lock.lock().unwrap_or_else(|p| p.into_inner());
            sh.wake.notify_all();
        }
        claim_and_run(sh, epoch, f, tasks);
        while sh.done.load(Ordering::Acquire) < tasks {
            std::hint::spin_loop();
        }
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        let _g = self.shared.sleep_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_task_exactly_once_across_many_jobs() {
        let pool = SpinPool::new(3);
        for round in 0..2000usize {
            let n = 1 + round % 37;
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "round {round}");
            if round % 500 == 0 {
                // Let the workers fall asleep, then wake them again.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
