//! What only Windows has: the thread's CPU time.

use std::io;

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::Threading::{GetCurrentThread, GetThreadTimes};

/// The CPU time the calling thread has used so far, user and kernel
/// (`GetThreadTimes`): it grows while the thread spins, and not while it
/// sleeps in a wait, so over a stretch of waits it tells a real wait from a
/// busy loop where Windows has no count of context switches to read.
pub fn thread_cpu_time() -> std::time::Duration {
    /// A `FILETIME`'s 100 ns units.
    fn ticks(time: &FILETIME) -> u64 {
        u64::from(time.dwHighDateTime) << 32 | u64::from(time.dwLowDateTime)
    }

    let [mut creation, mut exit, mut kernel, mut user] = [FILETIME::default(); 4];
    // SAFETY: `GetCurrentThread` returns a pseudo-handle that needs no
    // closing; the four pointers are to live `FILETIME`s; the result is
    // checked.
    let ok = unsafe {
        GetThreadTimes(
            GetCurrentThread(),
            &mut creation,
            &mut exit,
            &mut kernel,
            &mut user,
        )
    };
    assert_ne!(ok, 0, "GetThreadTimes: {}", io::Error::last_os_error());
    std::time::Duration::from_nanos((ticks(&kernel) + ticks(&user)) * 100)
}
