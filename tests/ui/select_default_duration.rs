// crossbeam's timed default, `default(duration)`, is `timeout(duration)` in green::select!.
fn main() {
    let (_tx, rx) = green::sync::mpmc::channel::<u8>();
    green::select! {
        recv(rx) -> _msg => {},
        default(std::time::Duration::from_millis(10)) => {},
    }
}
