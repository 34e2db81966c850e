fn main() {
    eprintln!("doris-sim: not implemented yet");
    std::process::exit(2);
}
