//! What only Windows has: the thread's CPU time.

use std::io;

/// The CPU time the calling thread has used so far, user and kernel
/// (`GetThreadTimes`): it grows while the thread spins, and not while it
/// sleeps in a wait, so over a stretch of waits it tells a real wait from a
/// busy loop where Windows has no count of context switches to read.
pub fn thread_cpu_time() -> std::time::Duration {
    /// `FILETIME`: 100 ns units, in two halves.
    #[repr(C)]
    #[derive(Default)]
    struct FileTime {
        low: u32,
        high: u32,
    }

    impl FileTime {
        fn ticks(&self) -> u64 {
            u64::from(self.high) << 32 | u64::from(self.low)
        }
    }

    #[link(name = "kernel32")]
    extern "system" {
        fn GetCurrentThread() -> *mut std::ffi::c_void;
        fn GetThreadTimes(
            thread: *mut std::ffi::c_void,
            creation: *mut FileTime,
            exit: *mut FileTime,
            kernel: *mut FileTime,
            user: *mut FileTime,
        ) -> i32;
    }

    let [mut creation, mut exit, mut kernel, mut user] = Default::default();
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
    std::time::Duration::from_nanos((kernel.ticks() + user.ticks()) * 100)
}
