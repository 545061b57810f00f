//! Wire formats spoken by more than one part of amlprobe, each parsed in one place.
pub mod http1;
