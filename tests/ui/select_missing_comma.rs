// A body that is an expression needs a comma after it, unless it is the last arm.
fn main() {
    let (_tx_a, rx_a) = green::sync::mpmc::channel::<u8>();
    let (_tx_b, rx_b) = green::sync::mpmc::channel::<u8>();
    let _ = green::select! {
        recv(rx_a) -> msg => msg.is_ok()
        recv(rx_b) -> msg => msg.is_ok()
    };
}
