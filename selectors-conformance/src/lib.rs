//! The conformance suite every backend of selectors-rs runs, so that the
//! backends agree by construction; and, in this package's `tests/`, the
//! tests that run every backend at once.
//!
//! The suite ports CPython's `Lib/test/test_selectors.py` case by case
//! (names are CPython's), adapted to Rust types, plus the guarantees this
//! project makes beyond CPython (strong guarantee on failed `modify`,
//! uniform errors and use-after-close behaviour). Every test runs against
//! the real kernel with real descriptors (socket pairs: Unix-domain on
//! Unix, TCP on the loopback on Windows). The cases that cannot apply on
//! Windows (files, pipes, Unix signals, `dup2`, descriptor limits) are
//! compiled out there, each with its reason in the list of
//! [`conformance_suite!`].
//!
//! # Running the suite against a backend
//!
//! Each backend crate has this package as a dev-dependency (it is never
//! published) and instantiates the suite in its `tests/conformance.rs`
//! with [`conformance_suite!`]: a module name, a generic constructor, the
//! backend's [`Quirks`], and optionally the names of tests that need more
//! than [`Selector`](selectors_core::Selector). The epoll backend's reads:
//!
//! ```text
//! use selectors_epoll::{EpollSelector, FileObject, Result};
//!
//! fn new_selector<F: FileObject, T>() -> Result<EpollSelector<F, T>> {
//!     EpollSelector::new()
//! }
//!
//! selectors_conformance::conformance_suite!(
//!     epoll,
//!     new_selector,
//!     selectors_conformance::Quirks::EPOLL,
//!     test_fileno
//! );
//! ```
//!
//! which generates `epoll::test_register`, `epoll::test_modify`, …, one
//! `#[test]` each; the trailing names (`test_fileno`,
//! `test_close_inside_a_handler_quiets_the_kernel_object`), which need
//! `AsFd` (and `AsRawFd`), are for the backends with a kernel descriptor of
//! their own.
//!
//! # Layout
//!
//! Each test is a generic function `test_*(new, quirks)` over `Selector`,
//! in a module per subject: registering, modifying, look-ups, closing,
//! `select` and its timeouts, scale, the waker, keys, dispatching,
//! descriptor numbers reused within one call. All are
//! re-exported here, where the macro finds them by name. The helpers they
//! share (socket pairs, [`ready_fds`], what differs between Unix and
//! Windows) are public: the backend crates' own tests use them too.
//!
//! # The cross-backend tests
//!
//! This package's `tests/` hold the tests that run every backend of the
//! host, through the facade `selectors`: this suite against
//! `DefaultSelector` and `Box<dyn Selector>` (`default_selector`), the
//! bad-input matrix (`bad_input`), registrations by the thousand and the
//! leak checks (`scale`), signal storms and timeout precision
//! (`signals_and_time`), no allocation in steady state (`no_alloc`), and
//! the model-based differential tests (`differential`). They test every
//! backend, not one crate, so they live here beside the suite rather than
//! in a published crate. `tests/util` instantiates each of their generic
//! tests once per backend (`per_backend!`, built on [`instantiate_tests!`]).
#![allow(missing_docs, clippy::missing_panics_doc)]

mod helpers;
mod quirks;

// The tests, one module per subject.
mod close;
mod dispatch;
mod keys;
mod lookup;
mod modify;
mod register;
mod reuse;
mod scale;
mod select;
mod waker;

pub use helpers::*;
pub use quirks::{Kind, Quirks, LIBKQUEUE_MAX_KEVENT};

// Every test at the crate root, where `conformance_suite!` finds it by name.
pub use close::*;
pub use dispatch::*;
pub use keys::*;
pub use lookup::*;
pub use modify::*;
pub use register::*;
pub use reuse::*;
pub use scale::*;
pub use select::*;
pub use waker::*;

/// Instantiates the conformance suite as `mod $name`, with `$new` a generic
/// constructor `fn<F: FileObject, T>() -> Result<impl Selector<F, T>>` and
/// `$quirks` the backend's documented differences (a [`Quirks`]); trailing
/// names add optional tests of this crate (`test_fileno`).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $new:ident, $quirks:expr $(, $extra:ident)* $(,)?) => {
        $crate::instantiate_tests!($name, [$crate], super::$new, $quirks;
            test_register,
            test_register_bad_fd,
            // Winsock's select takes sockets only: a file is no file object.
            #[cfg(unix)] test_register_file,
            test_unregister,
            test_unregister_after_fd_close,
            // Reuses numbers on purpose with dup2, which Windows lacks.
            #[cfg(unix)] test_unregister_after_fd_close_and_reuse,
            test_unregister_after_socket_close,
            test_modify,
            test_modify_unregister,
            test_modify_invalid_events,
            test_close,
            test_context_manager,
            test_get_key,
            test_get_map,
            test_select,
            test_select_read_write,
            test_select_hangup,
            test_select_into_dispatch,
            test_selector,
            test_empty_select,
            test_empty_select_timeout,
            test_timeout,
            // Unix signals (PEP 475); Winsock has no EINTR.
            #[cfg(unix)] test_select_interrupt_noraise,
            test_above_fd_setsize,
            test_waker_wakes_blocked_select,
            test_waker_coalesces,
            test_waker_races_lose_nothing,
            // Unix signals.
            #[cfg(unix)] test_waker_from_signal_handler,
            test_waker_after_close_and_drop,
            test_key_mut_changes_only_data,
            test_with_fileobj_mut,
            test_fd_wrapper_and_try_register,
            test_dispatch_callbacks,
            test_dispatch_lends_the_key,
            test_selector_through_mut_ref,
            test_failed_connect_is_write_ready,
            test_dispatch_skips_registrations_of_the_round,
            test_close_inside_a_handler,
            test_waker_avoids_stale_registrations,
            test_waker_avoids_the_lent_key,
            test_waker_avoids_a_lent_raw_descriptor,
            test_a_panicking_file_object_leaves_the_selector_consistent,
            // A file handle is refused only where select takes sockets only.
            #[cfg(windows)] test_register_non_socket
            $(, $extra)*
        );
    };
}

/// Instantiates generic tests for one backend as `mod $name`: one `#[test]`
/// per listed name, calling the function of that name in the module
/// `$($tests)+` (a path, in brackets) with `|| $new()` and the backend's
/// [`Quirks`] `$quirks`. `$new` and `$quirks` are seen from inside the new
/// module. A name may carry attributes (`#[cfg(unix)] name`), which its test
/// gets.
///
/// The one place that turns a generic test into `#[test]` functions: used
/// by [`conformance_suite!`](crate::conformance_suite), and by this
/// package's cross-backend tests for their own generic tests
/// (`per_backend!` in `tests/util`).
///
/// ```text
/// selectors_conformance::instantiate_tests!(
///     epoll, [super], crate::util::new_epoll, selectors_conformance::Quirks::EPOLL;
///     bad_arguments
/// );
/// ```
#[macro_export]
macro_rules! instantiate_tests {
    (
        $name:ident, [$($tests:tt)+], $new:path, $quirks:expr;
        $($(#[$attr:meta])* $test:ident),* $(,)?
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            const QUIRKS: $crate::Quirks = $quirks;
            $crate::instantiate_tests!(@each [$($tests)+], $new; $($(#[$attr])* $test),*);
        }
    };
    // One test at a time: the path `$tests` repeats inside each test, which
    // a single repetition over the names cannot express. Attributes before
    // a name (`#[cfg(unix)]`) go on its test.
    (
        @each [$($tests:tt)+], $new:path;
        $(#[$attr:meta])* $test:ident $(, $(#[$rest_attr:meta])* $rest:ident)*
    ) => {
        $(#[$attr])*
        #[test]
        fn $test() {
            $($tests)+::$test(|| $new(), QUIRKS);
        }
        $crate::instantiate_tests!(@each [$($tests)+], $new; $($(#[$rest_attr])* $rest),*);
    };
    (@each [$($tests:tt)+], $new:path;) => {};
}
