// Settings go to the runtime builder, not to the attribute.
#[green::main(worker_threads = 2)]
fn main() {}

// `crate` names the green crate: it needs a value.
#[green::main(crate)]
fn other() {}
