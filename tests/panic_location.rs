//! Panics from misuse point at the caller's line, not into green's source. Its own test binary:
//! the test sets the process's panic hook, which a test running beside it could see.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

#[test]
fn panics_from_misuse_point_at_the_callers_line() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| l.file().to_owned()).unwrap_or_default();
        let text = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        record.lock().unwrap().push((at, text));
    }));
    type Call = (&'static str, Box<dyn Fn()>);
    let calls: [Call; 6] = [
        ("spawn", Box::new(|| drop(green::spawn(|| ())))),
        ("spawn_local", Box::new(|| drop(green::spawn_local(|| ())))),
        ("spawn_blocking", Box::new(|| drop(green::spawn_blocking(|| ())))),
        ("workers(0)", Box::new(|| drop(green::Runtime::builder().workers(0)))),
        ("budget(0)", Box::new(|| drop(green::Builder::new().budget(0)))),
        ("scope", Box::new(|| green::scope(|_| ()))),
    ];
    for (what, call) in &calls {
        assert!(panic::catch_unwind(AssertUnwindSafe(call)).is_err(), "{what} did not panic");
    }
    panic::set_hook(previous);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), calls.len(), "{seen:?}");
    for ((what, _), (file, text)) in calls.iter().zip(seen.iter()) {
        assert!(file.ends_with("panic_location.rs"), "{what}: the panic points at {file}, not the caller: {text}");
        assert!(text.contains("outside a green runtime") || !["spawn", "scope"].contains(what), "{what}: {text}");
    }
}
