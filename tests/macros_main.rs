//! `#[green::main]` runs a function's body as the first green thread of a runtime, keeping its
//! return value, `return` and `?`.

use std::num::ParseIntError;
use std::time::Duration;

#[green::main]
fn entry() -> Result<u32, ParseIntError> {
    assert!(green::try_current().is_some(), "the body runs on a green thread");
    let children: Vec<_> = ["4", "5", "6"]
        .into_iter()
        .map(|s| {
            green::spawn(move || {
                green::sleep(Duration::from_millis(1));
                s.parse::<u32>()
            })
        })
        .collect();
    let mut total = 0;
    for child in children {
        total += child.join().unwrap()?;
    }
    if total > 100 {
        return Ok(0);
    }
    Ok(total)
}

#[green::main]
fn failing() -> Result<u32, ParseIntError> {
    let n: u32 = "x".parse()?;
    Ok(n)
}

#[green::main]
fn unit() {
    green::yield_now();
}

/// A `return` that is taken: it leaves the body's function with its value, not `main`
/// with a wrong type or the runtime still running.
#[green::main]
fn returns_early() -> Vec<u32> {
    let found: Vec<u32> = (1..=3).map(|i| green::spawn(move || i * 10).join().unwrap()).collect();
    if found.len() == 3 {
        return found;
    }
    Vec::new()
}

/// `impl Trait` nested in the return type, which a closure's return type may not hold.
#[green::main]
fn nested_impl_trait() -> Result<u32, impl std::fmt::Debug> {
    let n: Result<u32, ParseIntError> = "4".parse();
    n.map(|n| n + green::spawn(|| 1).join().unwrap())
}

/// A function that never returns: it compiles (it is not called).
#[allow(dead_code)]
#[green::main]
fn never_returns() -> ! {
    std::process::exit(0)
}

#[test]
fn the_body_runs_on_a_green_thread_and_returns_its_value() {
    assert_eq!(nested_impl_trait().unwrap(), 5);
    assert!(green::try_current().is_none());
    assert_eq!(entry(), Ok(15));
    assert!(failing().is_err());
    unit();
    assert_eq!(returns_early(), [10, 20, 30]);
}

/// On an associated function, the body names `Self` and the `impl`'s generic parameters, as
/// without the attribute (as a nested function, it could not: E0401).
struct App<T>(T);

impl<T: Default + PartialEq + std::fmt::Debug + Send + 'static> App<T> {
    #[green::main]
    fn start() -> Self {
        let value = green::spawn(T::default).join().unwrap();
        Self(value)
    }
}

#[test]
fn an_associated_function_sees_self() {
    assert_eq!(App::<u32>::start().0, 0);
}

/// A test written as the docs say, with `#[test]` beside the attribute.
#[test]
#[green::main]
fn a_test_body_runs_on_a_green_thread() {
    assert!(green::try_current().is_some(), "the body runs on a green thread");
    assert_eq!(green::spawn(|| 2).join().unwrap(), 2);
}
