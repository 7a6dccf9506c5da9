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

#[test]
fn the_body_runs_on_a_green_thread_and_returns_its_value() {
    assert!(green::try_current().is_none());
    assert_eq!(entry(), Ok(15));
    assert!(failing().is_err());
    unit();
}
