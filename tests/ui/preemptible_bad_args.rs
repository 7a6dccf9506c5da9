#[green::preemptible(every = 16)]
fn busy() {}

fn main() {
    busy();
}
