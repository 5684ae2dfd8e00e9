//! The calling thread's CPU time (POSIX `CLOCK_THREAD_CPUTIME_ID`), for speed figures that
//! still mean something on a loaded machine: wall seconds grow with every other process on the
//! cores, the CPU seconds a single-threaded phase spends do not (much).

/// Seconds of CPU the calling thread has used so far (NaN where the clock is missing).
pub fn thread_seconds() -> f64 {
    #[cfg(unix)]
    {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec for the duration of the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0 {
            return t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_counts_work_and_not_sleep() {
        let start = thread_seconds();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let slept = thread_seconds() - start;
        let start = thread_seconds();
        let mut x = 0u64;
        let busy = std::time::Instant::now();
        while busy.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let worked = thread_seconds() - start;
        assert!(slept < 0.05, "sleeping took {slept} s of CPU");
        assert!(worked > slept, "working {worked} s vs sleeping {slept} s");
    }
}
