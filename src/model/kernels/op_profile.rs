//! Time spent in each fused CPU training op, for `S1_PROFILE_STEP=1` (see train/step.rs): where a
//! step's time goes below the phase level. Off by default; then a span costs one flag check.

use std::sync::Mutex;
use std::time::Instant;

/// Per op name: total milliseconds and calls since the last [`take`].
static TOTALS: Mutex<Vec<(&'static str, f64, usize)>> = Mutex::new(Vec::new());

/// Whether profiling is on (S1_PROFILE_STEP set; read once).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("S1_PROFILE_STEP").is_some())
}

/// Adds the time until it is dropped to its op's total.
pub struct Span(Option<(Instant, &'static str)>);

/// Starts timing one call of `op` (a no-op unless profiling is on).
pub fn span(op: &'static str) -> Span {
    Span(enabled().then(|| (Instant::now(), op)))
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((start, op)) = self.0.take() {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
            match totals.iter_mut().find(|t| t.0 == op) {
                Some(t) => {
                    t.1 += ms;
                    t.2 += 1;
                }
                None => totals.push((op, ms, 1)),
            }
        }
    }
}

/// The totals since the last call, and resets them.
pub fn take() -> Vec<(&'static str, f64, usize)> {
    std::mem::take(&mut *TOTALS.lock().unwrap_or_else(|e| e.into_inner()))
}
