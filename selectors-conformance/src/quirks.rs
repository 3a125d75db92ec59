//! A backend's documented differences from the others, as data
//! ([`Quirks`]), and the kernel interface it names ([`Kind`]).

use selectors_core::{FileObject, RawFd, Selector};

use crate::helpers::{EPERM, SELECT_FD_LIMIT};

/// The kernel interface of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Epoll,
    Kqueue,
    Devpoll,
    Poll,
    Select,
}

impl Kind {
    /// The name [`Selector::backend`] returns.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Epoll => "epoll",
            Kind::Kqueue => "kqueue",
            Kind::Devpoll => "devpoll",
            Kind::Poll => "poll",
            Kind::Select => "select",
        }
    }
}

/// A backend's documented differences from the others, as data: a suite is
/// instantiated with one, so no test switches on backend names. Every
/// conformance test checks first that the selector is of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// The kernel interface (its rules for descriptors closed while
    /// registered, which the reliability tests model).
    pub kind: Kind,
    /// A regular file is refused with this error (epoll: `EPERM`); without
    /// one, it is accepted and always ready in both directions.
    pub regular_file_errno: Option<i32>,
    /// The first descriptor it cannot watch, if capped (`select(2)` at
    /// `FD_SETSIZE`, except on Linux, Android and FreeBSD).
    pub fd_limit: Option<RawFd>,
    /// libkqueue's emulation of kqueue on Linux (`--cfg selectors_libkqueue`),
    /// with its deviations: at most [`LIBKQUEUE_MAX_KEVENT`] ready entries
    /// per select, filters kept after `close`, descriptors of its own, a
    /// socket's pending error read (so cleared) when it reports the socket.
    pub libkqueue: bool,
    /// The emulation of the /dev/poll driver on Linux (`--cfg
    /// selectors_devpoll_emulation`), which keeps each set's pollheads in
    /// an epoll instance of its own: `/proc` shows one watch per
    /// registered descriptor there, plus one of the emulation's.
    pub devpoll_emulation: bool,
    /// Its own descriptor, polled, shows `POLLERR` whatever its set holds
    /// (/dev/poll: the driver's `dppoll` answers so), where epoll's and
    /// kqueue's show the set's readiness.
    pub descriptor_polls_as_error: bool,
}

/// libkqueue's `MAX_KEVENT`: the most entries one `kevent()` call reports.
pub const LIBKQUEUE_MAX_KEVENT: usize = 512;

impl Quirks {
    const PORTABLE: Quirks = Quirks {
        kind: Kind::Poll,
        regular_file_errno: None,
        fd_limit: None,
        libkqueue: false,
        devpoll_emulation: false,
        descriptor_polls_as_error: false,
    };

    /// epoll(7): refuses regular files.
    pub const EPOLL: Quirks = Quirks {
        kind: Kind::Epoll,
        regular_file_errno: Some(EPERM),
        ..Quirks::PORTABLE
    };

    /// kqueue(2), or libkqueue's emulation of it where that is what builds.
    pub const KQUEUE: Quirks = Quirks {
        kind: Kind::Kqueue,
        libkqueue: cfg!(libkqueue),
        ..Quirks::PORTABLE
    };

    /// /dev/poll, or the emulation of its driver where that is what builds.
    pub const DEVPOLL: Quirks = Quirks {
        kind: Kind::Devpoll,
        devpoll_emulation: cfg!(devpoll_emulation),
        descriptor_polls_as_error: true,
        ..Quirks::PORTABLE
    };

    /// poll(2).
    pub const POLL: Quirks = Quirks::PORTABLE;

    /// select(2): capped at `FD_SETSIZE` where the platform's `fd_set` is
    /// (not on Linux, Android, FreeBSD, nor Windows, whose sets are arrays).
    pub const SELECT: Quirks = Quirks {
        kind: Kind::Select,
        fd_limit: SELECT_FD_LIMIT,
        ..Quirks::PORTABLE
    };

    /// The quirks of the backend named `backend` (what [`Selector::backend`]
    /// and `SelectorImpl::BACKEND` say): for a selector whose backend the
    /// platform chooses, such as the facade's `DefaultSelector`.
    ///
    /// # Panics
    ///
    /// For a name that is no backend's.
    pub const fn of(backend: &str) -> Quirks {
        match backend.as_bytes() {
            b"epoll" => Quirks::EPOLL,
            b"kqueue" => Quirks::KQUEUE,
            b"devpoll" => Quirks::DEVPOLL,
            b"poll" => Quirks::POLL,
            b"select" => Quirks::SELECT,
            _ => panic!("no such backend"),
        }
    }

    /// The most ready entries one select reports, if capped.
    pub const fn max_ready_per_select(&self) -> Option<usize> {
        if self.libkqueue {
            Some(LIBKQUEUE_MAX_KEVENT)
        } else {
            None
        }
    }

    /// Panics unless `sel` is of this backend: the quirks describe it.
    pub fn check<F: FileObject, T, S: Selector<F, T> + ?Sized>(&self, sel: &S) {
        assert_eq!(sel.backend(), self.kind.name(), "quirks of another backend");
    }
}
