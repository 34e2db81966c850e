//! Stream Load throughput into doris-sim (filled in once doris-sim is merged).

fn main() {
    divan::main();
}
