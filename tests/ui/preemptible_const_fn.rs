// A tick cannot run at compile time.
#[green::preemptible]
const fn square(x: u32) -> u32 {
    x * x
}

fn main() {
    let _ = square(3);
}
