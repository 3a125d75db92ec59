//! The driver: `dpopen`, `dpwrite`, `dpioctl` (`DP_POLL`, `DP_ISPOLLED`)
//! and `dp_pcache_poll` of illumos's `usr/src/uts/common/io/devpoll.c`,
//! rewritten for a process on Linux. Comments cite that file's lines
//! ("D 1056") and the generic poll code's (`syscall/poll.c`, "PL").
//!
//! An instance ([`Set`]) is the driver's pollcache: for each descriptor
//! number written to it, a `polldat` ([`PollDat`]) holding the cached
//! events, the file cached with them, and the pollhead it is linked to;
//! and the bitmap ([`State::marked`]) of the numbers `DP_POLL` must
//! examine. A number is marked when it is added, when its file wakes its
//! pollhead, and stays marked while its file is ready (level-triggered) or
//! has no pollhead; `DP_POLL` unmarks the ones it finds idle.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_int, c_short, c_void};
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::bits::{
    DvPoll, PollFd, DP_EPOLLCOMPAT, DP_ISPOLLED, DP_POLL, DP_PPOLL, POLLET, POLLFD_SIZE, POLLNVAL,
    POLLONESHOT, POLLREMOVE,
};
use crate::file::{self, FileId, Linked};
use crate::registry;
use crate::sys::{close_own, errno};

/// A clock tick of illumos (`nsec_per_tick` at the default `hz` of 100):
/// the shortest wait of a `DP_POLL` with a positive timeout (D 1263).
pub const TICK: Duration = Duration::from_millis(10);

/// The environment variable that selects the emulated system:
/// `solaris` for Oracle Solaris, anything else for illumos.
pub const FLAVOUR_VAR: &str = "DEVPOLL_EMULATION";

/// The `epoll_event` key of the set's wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// Where the emulated driver differs between the two systems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// A `dp_nfds` more than twice the descriptor limit is clamped to it
    /// (D 1354-1370); the first process to use an instance owns it.
    Illumos,
    /// A `dp_nfds` at or above the descriptor limit is `EINVAL` (poll(4D):
    /// "dp_nfds is greater than or equal to {OPEN_MAX}"); the process that
    /// opens an instance owns it.
    Solaris,
}

impl Flavour {
    fn from_env() -> Flavour {
        match std::env::var_os(FLAVOUR_VAR) {
            Some(v) if v == "solaris" => Flavour::Solaris,
            _ => Flavour::Illumos,
        }
    }
}

/// `dp_nfds` as the driver takes it, given the soft descriptor limit.
pub fn clamp_nfds(nfds: u64, limit: u64, flavour: Flavour) -> Result<u64, c_int> {
    match flavour {
        Flavour::Solaris if nfds >= limit => Err(libc::EINVAL),
        Flavour::Illumos if nfds >> 1 > limit => Ok(limit),
        _ => Ok(nfds),
    }
}

/// The pollhead a cached number's file is linked to (`pd_php`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Head {
    /// Not linked.
    #[default]
    None,
    /// Linked: the set's epoll instance watches `file` at this number,
    /// with the key `key` (the number, and a serial that tells a live link
    /// from one that was dropped).
    Linked { file: FileId, key: u64 },
    /// `file` has no pollhead: never unmarked (D 600-609).
    Absent { file: FileId },
}

/// A cached number (`polldat_t`).
#[derive(Debug, Default)]
struct PollDat {
    /// `pd_events`: what the writes ORed together since the last removal.
    events: c_short,
    /// `pd_fp`: the file cached; `None` once removed, or if the number was
    /// closed when it was first written.
    file: Option<FileId>,
    head: Head,
}

/// What the pollcache's lock guards.
#[derive(Debug, Default)]
struct State {
    /// `pc_bitmap`/`pc_hash` exist: created by the first write (D 877-879).
    created: bool,
    entries: BTreeMap<RawFd, PollDat>,
    /// `pc_bitmap`: the numbers `DP_POLL` examines.
    marked: BTreeSet<RawFd>,
    /// `pc_mapstart`: where the next scan starts (D 641-643).
    mapstart: RawFd,
    /// `pc_mapend`: the highest number ever added (D 965-967).
    mapend: RawFd,
    /// The serial of the next pollhead link.
    serial: u32,
}

/// An instance of the emulated `/dev/poll`: a pipe stands for it in the
/// process's descriptor table.
#[derive(Debug)]
pub struct Set {
    /// The inode of the pipe: every descriptor of the instance has it.
    pub ino: u64,
    /// The pollheads: an epoll instance of the set's own.
    epfd: RawFd,
    /// An eventfd in `epfd`: the pollcache's condition variable (`pc_cv`).
    wakefd: RawFd,
    /// `pc_pid`, in a page shared with forked children (-1: no owner yet).
    owner: NonNull<AtomicI32>,
    flavour: Flavour,
    state: Mutex<State>,
}

// SAFETY: `owner` points into a shared mapping owned by the set, alive
// until drop, and is only reached atomically; the rest is Send and Sync.
unsafe impl Send for Set {}
// SAFETY: as above.
unsafe impl Sync for Set {}

impl Drop for Set {
    /// `dpclose` (D 1639-1697): the pollcache and its pollheads go.
    fn drop(&mut self) {
        close_own(self.epfd);
        close_own(self.wakefd);
        // SAFETY: the page was mapped by `open` with this length, and
        // nothing refers to it once the set is gone.
        unsafe { libc::munmap(self.owner.as_ptr().cast(), page_size()) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// A system call's result: its value, or `errno`.
fn check(result: c_int) -> Result<c_int, c_int> {
    if result < 0 {
        Err(errno())
    } else {
        Ok(result)
    }
}

/// `dpopen` (D 651-710): a new, empty instance, and the descriptor that
/// stands for it: the write end of a pipe whose read end is closed and
/// whose buffer is full, so that polling it shows `POLLERR` and nothing
/// else, as polling a `/dev/poll` descriptor does (D 1571-1575). `flags`
/// are `open`'s: `O_CLOEXEC` and `O_NONBLOCK` are honoured.
pub fn open(flags: c_int) -> Result<RawFd, c_int> {
    let mut ends: [RawFd; 2] = [-1; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    let [read, write] = ends;
    // A page is the smallest pipe buffer; then fill it.
    // SAFETY: fcntl on an open descriptor; failure leaves the default size.
    unsafe { libc::fcntl(write, libc::F_SETPIPE_SZ, 4096) };
    let zeros = [0u8; 4096];
    // SAFETY: writes a live buffer into the pipe (past the interposed write);
    // the loop ends at EAGAIN, when the pipe is full.
    while unsafe { libc::syscall(libc::SYS_write, write, zeros.as_ptr(), zeros.len()) } > 0 {}
    close_own(read);
    // The lowest free number, as a real open returns.
    let dup = if flags & libc::O_CLOEXEC != 0 {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    // SAFETY: fcntl on an open descriptor.
    let fd = match check(unsafe { libc::fcntl(write, dup, 0) }) {
        Ok(low) if low < write => {
            close_own(write);
            low
        }
        other => {
            if let Ok(high) = other {
                close_own(high);
            }
            let cloexec = if flags & libc::O_CLOEXEC != 0 {
                libc::FD_CLOEXEC
            } else {
                0
            };
            // SAFETY: fcntl on an open descriptor.
            unsafe { libc::fcntl(write, libc::F_SETFD, cloexec) };
            write
        }
    };
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: fcntl on an open descriptor: clears O_NONBLOCK.
        unsafe { libc::fcntl(fd, libc::F_SETFL, 0) };
    }
    match Set::new(fd) {
        Ok(set) => match registry::insert(Arc::new(set)) {
            Ok(()) => Ok(fd),
            Err(_) => {
                close_own(fd);
                Err(libc::ENXIO)
            }
        },
        Err(err) => {
            close_own(fd);
            Err(err)
        }
    }
}

impl Set {
    /// The pollcache of the instance that `fd` stands for.
    fn new(fd: RawFd) -> Result<Set, c_int> {
        let ino = file::fifo_inode(fd).ok_or(libc::EBADF)?;
        // SAFETY: no pointer argument.
        let epfd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: no pointer argument.
        let wakefd =
            match check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }) {
                Ok(wakefd) => wakefd,
                Err(err) => {
                    close_own(epfd);
                    return Err(err);
                }
            };
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE,
        };
        // SAFETY: both descriptors are open; `event` is live.
        let linked =
            check(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, wakefd, &mut event) });
        // SAFETY: an anonymous shared mapping of one page; the result is
        // checked against MAP_FAILED.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let owner = match (linked, NonNull::new(page.cast::<AtomicI32>())) {
            (Ok(_), Some(owner)) if page != libc::MAP_FAILED => owner,
            (linked, _) => {
                close_own(epfd);
                close_own(wakefd);
                return Err(linked.err().unwrap_or(libc::ENOMEM));
            }
        };
        let flavour = Flavour::from_env();
        let first = match flavour {
            // SAFETY: getpid cannot fail.
            Flavour::Solaris => unsafe { libc::getpid() },
            Flavour::Illumos => -1,
        };
        // SAFETY: the page is fresh, writable, aligned, and ours alone.
        unsafe { owner.as_ptr().write(AtomicI32::new(first)) };
        Ok(Set {
            ino,
            epfd,
            wakefd,
            owner,
            flavour,
            state: Mutex::new(State::default()),
        })
    }

    fn owner(&self) -> &AtomicI32 {
        // SAFETY: the page lives as long as the set.
        unsafe { self.owner.as_ref() }
    }

    /// The ownership check of write and ioctl (D 746-752, 1191-1198): the
    /// first process to use the instance owns it; any other gets `EACCES`.
    fn claim(&self) -> Result<(), c_int> {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        match self
            .owner()
            .compare_exchange(-1, me, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(owner) if owner == me => Ok(()),
            Err(_) => Err(libc::EACCES),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `cv_broadcast(&pcp->pc_cv)`: wakes a `DP_POLL` waiting on the set.
    fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes eight live bytes to the set's eventfd (past the
        // interposed write); a full counter (EAGAIN) is awake already.
        unsafe { libc::syscall(libc::SYS_write, self.wakefd, &one as *const u64, 8) };
    }

    /// `dpwrite` (D 718-1124): applies the `pollfd`s of `buf` in order.
    pub fn write(&self, buf: &[u8]) -> Result<usize, c_int> {
        self.claim()?;
        let count = buf.len() / POLLFD_SIZE;
        // More entries than the descriptor limit (checked above 255, D 780).
        if count > 255 && count as u64 > file::soft_limit() {
            return Err(libc::EINVAL);
        }
        let mut st = self.lock();
        st.created = true;
        let mut added = false;
        let mut failed = None;
        for chunk in buf.chunks_exact(POLLFD_SIZE) {
            // SAFETY: `chunk` is POLLFD_SIZE readable bytes; any bits are a
            // valid `pollfd`.
            let entry = unsafe { chunk.as_ptr().cast::<PollFd>().read_unaligned() };
            let fd = entry.fd;
            let file = file::getf(fd);
            if file.is_none() && file::beyond_table(fd) {
                continue; // D 885-896
            }
            if entry.events == POLLREMOVE {
                // Only the whole mask removes (D 899, 1072-1095).
                remove(&mut st, self.epfd, fd);
                continue;
            }
            st.mapend = st.mapend.max(fd);
            let State {
                entries,
                marked,
                serial,
                ..
            } = &mut *st;
            let pdp = entries.entry(fd).or_default();
            let Some(file) = file else {
                // Closed: cached with no file behind it, and marked so that
                // DP_POLL looks at it (D 972-981).
                marked.insert(fd);
                pdp.events |= entry.events;
                continue;
            };
            // Cached already with the same events and file (D 986-994).
            if pdp.events == entry.events && pdp.file == Some(file) {
                continue;
            }
            // VOP_POLL, then mark whatever it said (D 1010-1052).
            let events = pdp.events | entry.events;
            let linked = attach(self.epfd, pdp, fd, file, events, serial);
            marked.insert(fd);
            if let Err(err) = linked {
                failed = Some(err);
                break;
            }
            pdp.file = Some(file);
            // ORed into what is cached (D 1056).
            pdp.events = events;
            added = true;
        }
        drop(st);
        // A write that added wakes the pollers (D 1105-1107).
        if added {
            self.wake();
        }
        match failed {
            Some(err) => Err(err),
            // The whole length, trailing bytes included (D 1117-1122).
            None => Ok(buf.len()),
        }
    }

    /// `dpioctl` (D 1140-1491) for `request`, whose argument is `arg`;
    /// `mask` is the caller's signal mask, in force while `DP_POLL` waits.
    pub fn ioctl(
        &self,
        request: u32,
        arg: *mut c_void,
        mask: &libc::sigset_t,
    ) -> Result<c_int, c_int> {
        if request == DP_EPOLLCOMPAT {
            // Not emulated: the epoll compatibility of LX zones.
            return Err(libc::ENOTSUP);
        }
        self.claim()?;
        match request {
            DP_POLL => self.dp_poll(arg, mask),
            DP_ISPOLLED => self.dp_ispolled(arg),
            // Not emulated: DP_POLL with a signal mask.
            DP_PPOLL => Err(libc::ENOTSUP),
            _ => Err(libc::EINVAL),
        }
    }

    /// `DP_ISPOLLED` (D 1445-1483): 1, with the cached events written into
    /// `revents`, if the number is cached with a file; else 0.
    fn dp_ispolled(&self, arg: *mut c_void) -> Result<c_int, c_int> {
        let arg = arg.cast::<PollFd>();
        if arg.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes a `pollfd` (trusted: the driver's
        // copyin would catch a bad address with EFAULT).
        let mut query = unsafe { arg.read_unaligned() };
        let st = self.lock();
        if !st.created || query.fd < 0 {
            return Ok(0);
        }
        match st.entries.get(&query.fd) {
            Some(pdp) if pdp.file.is_some() => {
                query.revents = pdp.events;
                // SAFETY: as above; the driver copies the whole struct out.
                unsafe { arg.write_unaligned(query) };
                Ok(1)
            }
            _ => Ok(0),
        }
    }

    /// `DP_POLL` (D 1212-1443).
    fn dp_poll(&self, arg: *mut c_void, mask: &libc::sigset_t) -> Result<c_int, c_int> {
        let now = Instant::now();
        let arg = arg.cast::<DvPoll>();
        if arg.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes a `dvpoll_t`; only the fields before
        // `dp_setp` are read (D 1233-1235). Trusted, as above.
        let dvpoll = unsafe { arg.read_unaligned() };
        let deadline = Deadline::new(dvpoll.dp_timeout, now);
        if dvpoll.dp_nfds == 0 {
            // Just a sleep, which no write wakes (D 1317-1339).
            return sleep(deadline, mask).map(|()| 0);
        }
        let nfds = clamp_nfds(dvpoll.dp_nfds, file::soft_limit(), self.flavour)?;
        if dvpoll.dp_fds.is_null() {
            return Err(libc::EFAULT);
        }
        let mut results = Vec::new();
        let mut st = self.lock();
        loop {
            self.drain(&mut st);
            self.scan(&mut st, nfds, &mut results)?;
            if !results.is_empty() {
                break;
            }
            // A pollwakeup since the scan: scan again (D 1397-1401).
            if self.drain(&mut st) {
                continue;
            }
            let events = match deadline {
                Deadline::Now => break,
                Deadline::Expired if signal_pending(mask) => return Err(libc::EINTR),
                Deadline::Expired => break,
                Deadline::Never | Deadline::At(_) => {
                    drop(st);
                    let woken = self.sleep_on_set(deadline, mask);
                    st = self.lock();
                    woken?
                }
            };
            // Timed out: nothing, without another scan (D 1416-1421).
            if events.is_empty() {
                break;
            }
            self.notify(&mut st, &events);
        }
        drop(st);
        // Nothing is copied out but the entries filled (D 1430-1441).
        for (i, result) in results.iter().enumerate() {
            // SAFETY: the caller's buffer has room for `dp_nfds` entries,
            // and `results` holds at most that many (trusted, as above).
            unsafe { dvpoll.dp_fds.add(i).write_unaligned(*result) };
        }
        Ok(results.len() as c_int)
    }

    /// Takes the pollwakeups queued on the set's epoll instance, without
    /// waiting; tells whether there were any.
    fn drain(&self, st: &mut State) -> bool {
        let mut any = false;
        loop {
            let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
            // SAFETY: `events` has room for 64 entries; a zero timeout never
            // blocks (and signals are blocked).
            let n = unsafe { libc::epoll_wait(self.epfd, events.as_mut_ptr(), 64, 0) };
            let Ok(n) = usize::try_from(n) else {
                return any;
            };
            any |= n > 0;
            self.notify(st, &events[..n]);
            if n < events.len() {
                return any;
            }
        }
    }

    /// `pollnotify` (PL 925-933) for each pollwakeup in `events`: marks the
    /// number whose pollhead woke, if that link is still the number's.
    fn notify(&self, st: &mut State, events: &[libc::epoll_event]) {
        for event in events {
            let key = event.u64;
            if key == WAKE {
                let mut count = 0u64;
                // SAFETY: reads eight bytes into a live u64 (resets the
                // eventfd; EAGAIN if another poller did).
                unsafe { libc::read(self.wakefd, (&mut count as *mut u64).cast(), 8) };
                continue;
            }
            let fd = (key >> 32) as u32 as RawFd;
            let linked = st.entries.get(&fd).is_some_and(
                |pdp| matches!(pdp.head, Head::Linked { key: linked, .. } if linked == key),
            );
            if linked {
                st.marked.insert(fd);
            }
        }
    }

    /// Waits on the set until a pollwakeup, the deadline or a signal.
    /// `Ok(empty)` when the deadline passed.
    fn sleep_on_set(
        &self,
        deadline: Deadline,
        mask: &libc::sigset_t,
    ) -> Result<Vec<libc::epoll_event>, c_int> {
        loop {
            let timeout = match deadline.remaining() {
                None => -1,
                Some(Duration::ZERO) => return Ok(Vec::new()),
                Some(left) => c_int::try_from(ceil_millis(left)).unwrap_or(c_int::MAX),
            };
            let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
            // SAFETY: `events` has room for 64 entries; `mask` is a valid
            // signal mask, in force only while epoll_pwait waits.
            let n = unsafe { libc::epoll_pwait(self.epfd, events.as_mut_ptr(), 64, timeout, mask) };
            match usize::try_from(n) {
                Ok(0) => {} // the deadline, checked above
                Ok(n) => return Ok(events[..n].to_vec()),
                Err(_) => return Err(errno()),
            }
        }
    }

    /// `dp_pcache_poll` (D 248-646): examines the marked numbers from
    /// `pc_mapstart` on, wrapping around, into `out` (at most `nfds`).
    fn scan(&self, st: &mut State, nfds: u64, out: &mut Vec<PollFd>) -> Result<(), c_int> {
        if !st.created {
            return Ok(());
        }
        let ostart = st.mapstart;
        let mut start = ostart;
        let mut end = st.mapend;
        let mut no_wrap = start == 0;
        let mut done = false;
        while (out.len() as u64) < nfds && !done {
            let found = if start <= end {
                st.marked.range(start..=end).next().copied()
            } else {
                None
            };
            let Some(fd) = found else {
                if no_wrap {
                    done = true;
                } else {
                    start = 0;
                    end = ostart - 1;
                    no_wrap = true;
                }
                continue;
            };
            if fd == end {
                if no_wrap {
                    done = true;
                } else {
                    start = 0;
                    end = ostart - 1;
                    no_wrap = true;
                }
            } else {
                start = fd + 1;
            }
            self.poll_one(st, fd, out)?;
        }
        if !done {
            st.mapstart = start;
        }
        Ok(())
    }

    /// One marked number of the scan (D 314-628).
    fn poll_one(&self, st: &mut State, fd: RawFd, out: &mut Vec<PollFd>) -> Result<(), c_int> {
        let State {
            entries,
            marked,
            serial,
            ..
        } = st;
        let Some(pdp) = entries.get_mut(&fd) else {
            marked.remove(&fd);
            return Ok(());
        };
        // Removed, or closed when written: not cached (D 318-325).
        let Some(cached) = pdp.file else {
            return Ok(());
        };
        match file::getf(fd) {
            // Closed without a POLLREMOVE: POLLNVAL, and it stays marked
            // (D 344-357). Its `events` are what the driver's buffer
            // held; here, 0.
            None => {
                out.push(PollFd {
                    fd,
                    events: 0,
                    revents: POLLNVAL,
                });
                return Ok(());
            }
            // Another file at the number: adopted silently (D 367-409).
            Some(file) if file != cached => {
                pdp.file = Some(file);
                pdp.head = Head::None;
            }
            Some(_) => {}
        }
        // A one-shot entry that fired: skipped until re-armed (D 416-420).
        if pdp.events == POLLONESHOT {
            marked.remove(&fd);
            return Ok(());
        }
        loop {
            let revents = file::vop_poll(fd, pdp.events);
            if revents != 0 {
                out.push(PollFd {
                    fd,
                    events: pdp.events,
                    revents,
                });
                if pdp.events & POLLONESHOT != 0 {
                    // Fired: disarmed until written again (D 559-577).
                    detach(self.epfd, pdp, fd);
                    pdp.events = POLLONESHOT;
                    marked.remove(&fd);
                } else if pdp.events & POLLET != 0 {
                    // Edge-triggered: unmarked until its pollhead wakes
                    // (D 578-598).
                    if pdp.head == Head::None {
                        let file = pdp.file.unwrap_or(cached);
                        attach(self.epfd, pdp, fd, file, pdp.events, serial)?;
                    }
                    if matches!(pdp.head, Head::Linked { .. }) {
                        marked.remove(&fd);
                    }
                }
                // Level-triggered: stays marked (D 480-484).
                return Ok(());
            }
            match pdp.head {
                // Idle, with a pollhead that will wake it (D 599-627).
                Head::Linked { .. } => {
                    marked.remove(&fd);
                    return Ok(());
                }
                // No pollhead: examined at every scan.
                Head::Absent { .. } => return Ok(()),
                // Link it, then poll again: an event may have come in
                // between (D 620-625).
                Head::None => {
                    let file = pdp.file.unwrap_or(cached);
                    attach(self.epfd, pdp, fd, file, pdp.events, serial)?;
                }
            }
        }
    }

    /// The number `fd` is about to be closed: the key of its pollhead link,
    /// if process `me` owns the set and the number is linked.
    pub fn linked_key(&self, fd: RawFd, me: libc::pid_t) -> Option<u64> {
        if self.owner().load(Ordering::Acquire) != me {
            return None;
        }
        match self.lock().entries.get(&fd)?.head {
            Head::Linked { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The number `fd`, linked with `key`, was closed: if that was the last
    /// descriptor of its file, the file's teardown wakes its pollhead with
    /// `POLLERR` and unlinks it (sockfs's `sonode_fini`, sockcommon.c 642;
    /// STREAMS' `strclose`, for pipes too, streamio.c 799; PL 2606-2610),
    /// which marks the number: from then on DP_POLL reports it `POLLNVAL`.
    pub fn closed(&self, fd: RawFd, key: u64) {
        if file::still_linked(self.epfd, fd, key) {
            return;
        }
        let mut st = self.lock();
        let State {
            entries, marked, ..
        } = &mut *st;
        if let Some(pdp) = entries.get_mut(&fd) {
            if matches!(pdp.head, Head::Linked { key: k, .. } if k == key) {
                pdp.head = Head::None;
                marked.insert(fd);
                drop(st);
                self.wake();
            }
        }
    }
}

/// `POLLREMOVE` of `fd` (D 1072-1095): a number not cached with a file is
/// skipped, whatever events it has cached.
fn remove(st: &mut State, epfd: RawFd, fd: RawFd) {
    let Some(pdp) = st.entries.get_mut(&fd) else {
        return;
    };
    if pdp.file.is_none() {
        return;
    }
    detach(epfd, pdp, fd);
    pdp.file = None;
    pdp.events = 0;
    st.marked.remove(&fd);
}

/// Links `file`, at number `fd`, to the set's pollhead for `events`
/// (`VOP_POLL` handing back its pollhead, and `pollhead_insert`); a link
/// to the same file is updated in place. A new link's key is the number
/// and the next `serial`.
fn attach(
    epfd: RawFd,
    pdp: &mut PollDat,
    fd: RawFd,
    file: FileId,
    events: c_short,
    serial: &mut u32,
) -> Result<(), c_int> {
    let key = match pdp.head {
        Head::Linked { file: f, key } if f == file => key,
        Head::Absent { file: f } if f == file => return Ok(()),
        _ => {
            *serial = serial.wrapping_add(1);
            (u64::from(fd as u32) << 32) | u64::from(*serial)
        }
    };
    pdp.head = match file::link(epfd, fd, events, key)? {
        Linked::Yes => Head::Linked { file, key },
        Linked::NoPollhead => Head::Absent { file },
    };
    Ok(())
}

/// `pollhead_delete`: unlinks the number's file, if the number still names
/// it (otherwise the file took its link away, or another file's link
/// remains, stale: its key no longer matches).
fn detach(epfd: RawFd, pdp: &mut PollDat, fd: RawFd) {
    if let Head::Linked { file, .. } = pdp.head {
        if file::getf(fd) == Some(file) {
            file::unlink(epfd, fd);
        }
    }
    pdp.head = Head::None;
}

/// `dp_timeout` as the driver reads it (D 1255-1265).
#[derive(Clone, Copy, Debug)]
enum Deadline {
    /// 0: one scan.
    Now,
    /// -1: no deadline.
    Never,
    /// Other negatives: a deadline already past.
    Expired,
    /// Positive: at least that many milliseconds, and at least a tick.
    At(Instant),
}

impl Deadline {
    fn new(timeout: c_int, now: Instant) -> Deadline {
        match timeout {
            0 => Deadline::Now,
            -1 => Deadline::Never,
            t if t < 0 => Deadline::Expired,
            t => Deadline::At(now + Duration::from_millis(t as u64).max(TICK)),
        }
    }

    /// The time left: `None` for no deadline.
    fn remaining(self) -> Option<Duration> {
        match self {
            Deadline::Never => None,
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
            Deadline::Now | Deadline::Expired => Some(Duration::ZERO),
        }
    }
}

/// Whole milliseconds, rounded up.
fn ceil_millis(d: Duration) -> u128 {
    d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0)
}

/// Whether a signal that `mask` does not block is pending.
fn signal_pending(mask: &libc::sigset_t) -> bool {
    // SAFETY: `sigset_t` is plain data, filled by sigpending.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a live `sigset_t`.
    if unsafe { libc::sigpending(&mut pending) } != 0 {
        return false;
    }
    (1..libc::SIGRTMAX()).any(|sig| {
        // SAFETY: both sets are valid; `sig` is a valid signal number.
        unsafe { libc::sigismember(&pending, sig) == 1 && libc::sigismember(mask, sig) == 0 }
    })
}

/// The sleep of a `DP_POLL` with no room for results (D 1317-1339): only
/// the deadline or a signal ends it.
fn sleep(deadline: Deadline, mask: &libc::sigset_t) -> Result<(), c_int> {
    match deadline {
        // No signal check with a zero timeout.
        Deadline::Now => return Ok(()),
        Deadline::Expired if signal_pending(mask) => return Err(libc::EINTR),
        _ => {}
    }
    loop {
        let left = match deadline.remaining() {
            Some(Duration::ZERO) => return Ok(()),
            left => left,
        };
        let ts = left.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |ts| ts as *const _);
        // SAFETY: no pollfds; `ts_ptr` is null or a live timespec; `mask`
        // is a valid signal mask, in force while ppoll waits.
        if unsafe { libc::ppoll(std::ptr::null_mut(), 0, ts_ptr, mask) } < 0 {
            return Err(errno());
        }
    }
}

/// Closing `fd` (or replacing it with `dup2`): what to do about it
/// afterwards.
#[derive(Debug, Default)]
pub struct Closing {
    /// `fd` stands for this instance (its pipe inode).
    instance: Option<u64>,
    /// The sets that link `fd` to their pollhead, with the key.
    linked: Vec<(Arc<Set>, u64)>,
}

/// Before `fd` is closed: the instance it stands for, and the links of its
/// file; `None` if neither.
pub fn before_close(fd: RawFd) -> Option<Closing> {
    let instance = registry::instance_of(fd);
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let linked: Vec<(Arc<Set>, u64)> = registry::all()
        .into_iter()
        .filter_map(|set| set.linked_key(fd, me).map(|key| (set, key)))
        .collect();
    (instance.is_some() || !linked.is_empty()).then_some(Closing { instance, linked })
}

/// After `fd` was closed: the teardown of the files it linked, and of the
/// instance it stood for if the process has no descriptor of it left
/// (each process's copy of the driver's state is its own: a forked child
/// that keeps a descriptor keeps its copy).
pub fn after_close(fd: RawFd, closing: Closing) {
    for (set, key) in closing.linked {
        set.closed(fd, key);
    }
    if let Some(ino) = closing.instance {
        if !process_holds(ino) {
            registry::remove(ino);
        }
    }
}

/// Whether a descriptor of this process is the pipe of inode `ino`.
fn process_holds(ino: u64) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return true;
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .any(|fd| file::fifo_inode(fd) == Some(ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illumos_clamps_dp_nfds_above_twice_the_limit() {
        let illumos = Flavour::Illumos;
        assert_eq!(clamp_nfds(1000, 1000, illumos), Ok(1000));
        assert_eq!(clamp_nfds(2001, 1000, illumos), Ok(2001));
        assert_eq!(clamp_nfds(2002, 1000, illumos), Ok(1000));
        assert_eq!(clamp_nfds(u64::MAX, 1000, illumos), Ok(1000));
    }

    #[test]
    fn solaris_refuses_dp_nfds_at_the_limit() {
        let solaris = Flavour::Solaris;
        assert_eq!(clamp_nfds(999, 1000, solaris), Ok(999));
        assert_eq!(clamp_nfds(1000, 1000, solaris), Err(libc::EINVAL));
        assert_eq!(clamp_nfds(1024, 1000, solaris), Err(libc::EINVAL));
    }

    #[test]
    fn timeouts_read_as_the_driver_reads_them() {
        let now = Instant::now();
        assert!(matches!(Deadline::new(0, now), Deadline::Now));
        assert!(matches!(Deadline::new(-1, now), Deadline::Never));
        assert!(matches!(Deadline::new(-2, now), Deadline::Expired));
        assert!(matches!(Deadline::new(1, now), Deadline::At(at) if at == now + TICK));
        assert!(
            matches!(Deadline::new(25, now), Deadline::At(at) if at == now + Duration::from_millis(25))
        );
        assert_eq!(ceil_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_millis(Duration::from_millis(3)), 3);
    }
}
