//! doris-sim: an Apache Doris Stream Load emulator (see `README.md` in this crate).
