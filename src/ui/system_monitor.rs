//! What the footer shows of the machine: the app's and the system's memory (through `sysinfo`)
//! and, where NVIDIA's management library loads, each GPU's memory and utilisation (through
//! `nvml-wrapper`, which opens libnvidia-ml at run time, so a machine without it only gets a
//! reason, never an error). A named thread samples about once a second into shared state; the
//! UI thread only ever `try_lock`s it and keeps the last sample it got, so a frame never waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the sampler reads the machine.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One GPU as NVML reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSample {
    /// NVML's index (by PCI bus; CUDA's may differ where CUDA_VISIBLE_DEVICES reorders).
    pub index: u32,
    pub name: String,
    pub used: u64,
    pub total: u64,
    /// Percent of the last sample period a kernel ran (None: the GPU does not say).
    pub utilisation: Option<u32>,
}

/// One reading of the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemSample {
    /// This process's resident memory in bytes (None: it could not be read).
    pub process_rss: Option<u64>,
    pub system_used: u64,
    pub system_total: u64,
    /// The GPUs, or why none can be read (NVML missing, no driver, ...).
    pub gpus: Result<Vec<GpuSample>, String>,
}

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes as GiB with one decimal, without the unit: "1.2".
fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / GIB)
}

impl SystemSample {
    /// "RAM: app 1.2 GiB · system 10.3 of 23.4 GiB".
    pub fn ram_text(&self) -> String {
        let app = self.process_rss.map(gib).unwrap_or_else(|| "?".into());
        format!(
            "RAM: app {app} GiB · system {} of {} GiB",
            gib(self.system_used),
            gib(self.system_total)
        )
    }
}

impl GpuSample {
    /// "GPU 0: 3.1 of 139.8 GiB · 45%".
    pub fn text(&self) -> String {
        let util = self.utilisation.map(|u| format!(" · {u}%")).unwrap_or_default();
        format!(
            "GPU {}: {} of {} GiB{util}",
            self.index,
            gib(self.used),
            gib(self.total)
        )
    }
}

/// The sampler thread and the last sample the UI took from it.
pub struct SystemMonitor {
    shared: Arc<Mutex<Option<SystemSample>>>,
    stop: Arc<AtomicBool>,
    latest: Option<SystemSample>,
    /// A fixed sample is shown instead (screenshots, tests): new ones are ignored.
    pinned: bool,
    /// Why the sampler thread could not start (the footer says so).
    pub failed: Option<String>,
}

impl SystemMonitor {
    /// Starts the sampler thread (`s1-system-monitor`); it ends when the monitor is dropped.
    pub fn start() -> Self {
        let shared = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (out, halt) = (shared.clone(), stop.clone());
        let failed = std::thread::Builder::new()
            .name("s1-system-monitor".into())
            .spawn(move || sample_loop(&out, &halt))
            .err()
            .map(|e| format!("could not start the system monitor thread: {e}"));
        Self {
            shared,
            stop,
            latest: None,
            pinned: false,
            failed,
        }
    }

    /// The newest sample, taken from the sampler without waiting (a sample being written is
    /// picked up next frame).
    pub fn latest(&mut self) -> Option<&SystemSample> {
        if !self.pinned {
            if let Ok(mut s) = self.shared.try_lock() {
                if let Some(new) = s.take() {
                    self.latest = Some(new);
                }
            }
        }
        self.latest.as_ref()
    }

    /// The sample [`SystemMonitor::latest`] last took (without polling the sampler).
    pub fn last(&self) -> Option<&SystemSample> {
        self.latest.as_ref()
    }

    /// Shows `s` from now on and ignores the sampler (for screenshots that must not change
    /// from run to run).
    pub fn pin(&mut self, s: SystemSample) {
        self.latest = Some(s);
        self.pinned = true;
    }
}

impl Drop for SystemMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Samples until `stop`: NVML is opened once (its failure is kept as the GPUs' reason).
fn sample_loop(out: &Mutex<Option<SystemSample>>, stop: &AtomicBool) {
    use sysinfo::{MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, System};
    let mut sys = System::new();
    let pid = sysinfo::get_current_pid().ok();
    let nvml = nvml_wrapper::Nvml::init()
        .map_err(|e| format!("NVIDIA's management library (libnvidia-ml) could not be loaded: {e}"));
    while !stop.load(Ordering::Relaxed) {
        sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let process_rss = pid.and_then(|pid| {
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_memory(),
            );
            sys.process(pid).map(sysinfo::Process::memory)
        });
        let sample = SystemSample {
            process_rss,
            system_used: sys.used_memory(),
            system_total: sys.total_memory(),
            gpus: nvml.as_ref().map_err(Clone::clone).and_then(gpus),
        };
        *out.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sample);
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// Every GPU NVML sees, with its memory and utilisation.
fn gpus(nvml: &nvml_wrapper::Nvml) -> Result<Vec<GpuSample>, String> {
    let n = nvml
        .device_count()
        .map_err(|e| format!("NVML could not count the GPUs: {e}"))?;
    (0..n)
        .map(|index| {
            let d = nvml
                .device_by_index(index)
                .map_err(|e| format!("NVML could not open GPU {index}: {e}"))?;
            let mem = d
                .memory_info()
                .map_err(|e| format!("NVML could not read GPU {index}'s memory: {e}"))?;
            Ok(GpuSample {
                index,
                name: d.name().unwrap_or_else(|_| format!("GPU {index}")),
                used: mem.used,
                total: mem.total,
                utilisation: d.utilization_rates().ok().map(|u| u.gpu),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let s = SystemSample {
            process_rss: Some(3 << 29),
            system_used: 10 << 30,
            system_total: 24 << 30,
            gpus: Ok(vec![]),
        };
        assert_eq!(s.ram_text(), "RAM: app 1.5 GiB · system 10.0 of 24.0 GiB");
        let g = GpuSample {
            index: 0,
            name: "H200".into(),
            used: 3 << 30,
            total: 140 << 30,
            utilisation: Some(45),
        };
        assert_eq!(g.text(), "GPU 0: 3.0 of 140.0 GiB · 45%");
    }

    /// The sampler reads this machine within a few seconds: some memory in use, no more than
    /// there is, and this process's own.
    #[test]
    fn the_sampler_reads_the_machine() {
        let mut m = SystemMonitor::start();
        assert_eq!(m.failed, None);
        let start = std::time::Instant::now();
        while m.latest().is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "no sample after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        let s = m.latest().unwrap().clone();
        assert!(
            s.system_total > 0 && s.system_used > 0 && s.system_used <= s.system_total,
            "{s:?}"
        );
        let rss = s.process_rss.expect("this process's memory");
        assert!(rss > 0 && rss <= s.system_total, "{s:?}");
    }
}
