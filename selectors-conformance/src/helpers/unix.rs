//! Unix: a Unix-domain socket pair, the standard raw-descriptor traits,
//! libc's values, and a handler that counts signals.

pub use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};

use selectors_core::RawFd;

/// The connected stream sockets the tests use: a Unix socket pair.
pub type Stream = std::os::unix::net::UnixStream;

/// The owned descriptor type ([`std::os::fd::OwnedFd`]).
pub type OwnedDescriptor = std::os::fd::OwnedFd;

/// A value no descriptor has.
pub const BAD_FD: RawFd = -1;

/// A valid number that no test opens.
pub const UNUSED_FD: RawFd = RawFd::MAX;

/// What registering a closed descriptor fails with.
pub const CLOSED_ERRNO: i32 = libc::EBADF;

pub(crate) const EPERM: i32 = libc::EPERM;

/// The C `fd_set`'s capacity.
#[allow(clippy::unnecessary_cast)]
pub const FD_SETSIZE: usize = libc::FD_SETSIZE as usize;

pub(crate) const SELECT_FD_LIMIT: Option<RawFd> = if cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
)) {
    None
} else {
    Some(libc::FD_SETSIZE as RawFd)
};

/// A non-blocking TCP socket with a connect to `addr` under way.
pub fn connect_nonblocking(addr: std::net::SocketAddrV4) -> std::io::Result<OwnedDescriptor> {
    use std::os::fd::FromRawFd;

    use selectors_core::backend::cvt;

    // SAFETY: no pointer arguments; the result is checked.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) })?;
    // SAFETY: `fd` was just created and is owned by nothing else.
    let socket = unsafe { OwnedDescriptor::from_raw_fd(fd) };
    // SAFETY: plain flag updates on an open descriptor; results checked.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    // SAFETY: `sockaddr_in` is plain old data; all-zero is valid.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = addr.port().to_be();
    sin.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    // SAFETY: `sin` is a valid `sockaddr_in` of the length given.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    match cvt(rc) {
        Ok(_) => Ok(socket),
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(err) => Err(err),
    }
}

/// A connected pair of stream sockets (blocking).
pub fn try_socketpair() -> std::io::Result<(Stream, Stream)> {
    Stream::pair()
}

/// The soft open-file limit and the number of descriptors open now.
pub fn fd_budget() -> (usize, usize) {
    // SAFETY: `rlimit` is plain old data; getrlimit writes it.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid resource and pointer.
    selectors_core::backend::cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })
        .unwrap();
    let open = std::fs::read_dir("/proc/self/fd")
        .or_else(|_| std::fs::read_dir("/dev/fd"))
        .map(|dir| dir.count())
        .unwrap_or(64);
    (
        usize::try_from(limit.rlim_cur)
            .unwrap_or(usize::MAX)
            .min(1 << 20),
        open,
    )
}

/// Signal handling for the tests: a handler that counts, per thread, the
/// signals it received (the counter is thread-local, so tests running in
/// parallel in one process do not see each other's signals).
pub mod signals {
    use std::cell::Cell;
    use std::sync::Once;

    thread_local! {
        // Already `const`: the lint misfires on targets without native
        // `#[thread_local]` (illumos, Solaris, OpenBSD), rust-clippy#17566.
        #[allow(clippy::missing_const_for_thread_local)]
        static RECEIVED: Cell<usize> = const { Cell::new(0) };
    }

    extern "C" fn count(_signal: libc::c_int) {
        // A thread-local `Cell` with a const initialiser is a plain TLS
        // access: async-signal-safe.
        RECEIVED.with(|r| r.set(r.get() + 1));
    }

    /// Installs the counting handler for `signal`, once per process, without
    /// `SA_RESTART` (so blocking calls are interrupted with `EINTR`).
    pub fn install(signal: libc::c_int) {
        static ONCE: Once = Once::new();
        assert_eq!(signal, libc::SIGURG, "one handled signal per process");
        ONCE.call_once(|| {
            // SAFETY: `sigaction` is plain old data (zeroed is valid); the
            // handler is an `extern "C" fn(c_int)` that only touches a
            // thread-local `Cell`; every return value is checked.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = count as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = 0;
                assert_eq!(libc::sigemptyset(&mut action.sa_mask), 0);
                assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
            }
        });
    }

    /// Signals this thread has received so far.
    pub fn received() -> usize {
        RECEIVED.with(Cell::get)
    }

    /// The calling thread, as a target for [`send`].
    pub fn current_thread() -> libc::pthread_t {
        // SAFETY: always safe to call.
        unsafe { libc::pthread_self() }
    }

    /// Sends `signal` to `thread` (which must still be running).
    pub fn send(thread: libc::pthread_t, signal: libc::c_int) {
        // SAFETY: the caller guarantees `thread` is alive (it joins the
        // sender before returning).
        let rc = unsafe { libc::pthread_kill(thread, signal) };
        assert_eq!(rc, 0, "pthread_kill");
    }
}
