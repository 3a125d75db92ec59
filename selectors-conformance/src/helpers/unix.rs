//! Unix: a Unix-domain socket pair, the standard raw-descriptor traits,
//! libc's values, and a handler that counts signals; the system calls
//! through nix.

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
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )?;
    // Non-blocking through std: `SOCK_NONBLOCK` is not on every Unix.
    let socket = std::net::TcpStream::from(socket);
    socket.set_nonblocking(true)?;
    match connect(socket.as_raw_fd(), &SockaddrIn::from(addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(socket.into()),
        Err(errno) => Err(errno.into()),
    }
}

/// A connected pair of stream sockets (blocking).
pub fn try_socketpair() -> std::io::Result<(Stream, Stream)> {
    Stream::pair()
}

/// The soft open-file limit and the number of descriptors open now.
pub fn fd_budget() -> (usize, usize) {
    let soft = soft_fd_limit();
    let open = std::fs::read_dir("/proc/self/fd")
        .or_else(|_| std::fs::read_dir("/dev/fd"))
        .map(|dir| dir.count())
        .unwrap_or(64);
    (
        usize::try_from(soft).unwrap_or(usize::MAX).min(1 << 20),
        open,
    )
}

/// The soft `RLIMIT_NOFILE`.
#[cfg(not(target_os = "solaris"))]
fn soft_fd_limit() -> libc::rlim_t {
    use nix::sys::resource::{getrlimit, Resource};

    getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit").0
}

/// The soft `RLIMIT_NOFILE`, with libc: nix has no `sys::resource` on
/// Solaris.
#[cfg(target_os = "solaris")]
fn soft_fd_limit() -> libc::rlim_t {
    // SAFETY: `rlimit` is plain old data; all-zero is valid.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid resource and a pointer to a live `rlimit`.
    selectors_core::backend::cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) })
        .expect("getrlimit");
    limit.rlim_cur
}

/// Signal handling for the tests: a handler that counts, per thread, the
/// signals it received (the counter is thread-local, so tests running in
/// parallel in one process do not see each other's signals).
pub mod signals {
    use std::cell::Cell;
    use std::sync::Once;

    use nix::sys::pthread::{pthread_kill, pthread_self, Pthread};
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

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

    /// `signal` as nix names it.
    fn nix_signal(signal: libc::c_int) -> Signal {
        Signal::try_from(signal).expect("a signal number")
    }

    /// Installs the counting handler for `signal`, once per process, without
    /// `SA_RESTART` (so blocking calls are interrupted with `EINTR`).
    pub fn install(signal: libc::c_int) {
        static ONCE: Once = Once::new();
        assert_eq!(signal, libc::SIGURG, "one handled signal per process");
        ONCE.call_once(|| {
            let action = SigAction::new(
                SigHandler::Handler(count),
                SaFlags::empty(),
                SigSet::empty(),
            );
            // SAFETY: the handler only touches a thread-local `Cell`, which
            // is async-signal-safe.
            unsafe { sigaction(nix_signal(signal), &action) }.expect("sigaction");
        });
    }

    /// Signals this thread has received so far.
    pub fn received() -> usize {
        RECEIVED.with(Cell::get)
    }

    /// The calling thread, as a target for [`send`].
    pub fn current_thread() -> Pthread {
        pthread_self()
    }

    /// Sends `signal` to `thread`, which must still be running (the callers
    /// join the sender before returning).
    pub fn send(thread: Pthread, signal: libc::c_int) {
        pthread_kill(thread, nix_signal(signal)).expect("pthread_kill");
    }
}
