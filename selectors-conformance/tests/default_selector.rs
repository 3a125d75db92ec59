//! The shared conformance suite, run against the facade's `DefaultSelector`
//! and against `Box<dyn Selector>` (each backend crate runs it against its
//! own selector), on Unix and on Windows (the suite compiles out the cases
//! Windows cannot have).

mod util;

use util::{new_boxed, new_default, DEFAULT};

selectors_conformance::conformance_suite!(default_selector, new_default, DEFAULT);
selectors_conformance::conformance_suite!(boxed_dyn, new_boxed, DEFAULT);
