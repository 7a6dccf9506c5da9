//! Misuse gets an error that names the value and what to do, where the call returns one, and
//! a panic that points at the caller's line, where it does not.

use std::io;
use std::sync::Arc;

/// More than the largest stack a green thread can have (1 GiB).
const TOO_BIG: usize = 2 << 30;

#[test]
fn a_stack_too_large_is_refused_at_spawn() {
    green::run(|| {
        let e = green::Builder::new().stack_size(TOO_BIG).spawn(|| ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(&TOO_BIG.to_string()), "{e}");
        // The largest class itself is fine.
        let ok = green::Builder::new().stack_size(1 << 30).spawn(|| 7).unwrap();
        assert_eq!(ok.join().unwrap(), 7);
    });
}

#[test]
fn a_default_stack_too_large_is_refused_at_build() {
    let e = green::Runtime::builder().stack_size(TOO_BIG).build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains(&TOO_BIG.to_string()), "{e}");
    let e = green::Runtime::builder().stack_size(TOO_BIG).run(|| ()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_thread_name_with_a_nul_is_refused_at_build() {
    let e = green::Runtime::builder().thread_name("bad\0name").build().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("NUL"), "{e}");
}

/// A number of workers no runtime could run is an error naming it, not an abort on the
/// allocation of a trillion workers' queues.
#[test]
fn an_absurd_number_of_workers_is_refused_at_build() {
    let Err(err) = green::Runtime::builder().workers(1 << 40).build() else { panic!("built a trillion workers") };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let message = err.to_string();
    assert!(message.contains("1099511627776 workers") && message.contains("65536 at most"), "{message}");
}

#[test]
fn a_worker_the_runtime_lacks_is_an_error_naming_it() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let e = green::Builder::new().worker(5).spawn(|| ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let text = e.to_string();
        assert!(text.contains("worker(5)") && text.contains("2 worker"), "{text}");
        // The last one that exists works.
        assert_eq!(green::Builder::new().worker(1).spawn(|| 3).unwrap().join().unwrap(), 3);
    });
    let e = green::Builder::new().worker(2).spawn_on(rt.handle(), || ()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn builder_spawn_outside_a_runtime_is_an_error() {
    let e = green::Builder::new().spawn(|| ()).unwrap_err();
    assert!(e.to_string().contains("outside a green runtime"), "{e}");
}

#[test]
fn a_join_error_names_the_green_thread_and_converts_with_question_mark() {
    fn boxed(e: green::JoinError) -> Box<dyn std::error::Error + Send + Sync> {
        e.into()
    }
    green::run(|| {
        let failed = green::Builder::new().name("parser".into()).spawn(|| panic!("bad token")).unwrap();
        let e = failed.join().unwrap_err();
        assert_eq!(e.name(), Some("parser"));
        let text = e.to_string();
        assert!(text.contains("\"parser\" panicked: bad token"), "{text}");
        let shared = Arc::new(e);
        let elsewhere = shared.clone();
        let text_there = std::thread::spawn(move || elsewhere.to_string()).join().unwrap();
        assert_eq!(text_there, text);
        let e = Arc::into_inner(shared).unwrap();
        assert_eq!(boxed(e).to_string(), text);
    });
}
