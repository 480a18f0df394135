//! Helpers the benchmarks share (each bench is its own crate and includes what it needs).
#![allow(unreachable_pub, dead_code)]

pub mod queue;
