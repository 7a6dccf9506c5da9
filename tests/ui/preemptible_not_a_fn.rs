#[green::preemptible]
struct Counter {
    n: u32,
}

trait Work {
    // No body to put ticks in.
    #[green::preemptible]
    fn run(&self);
}

fn main() {}
