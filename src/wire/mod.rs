//! Wire formats the probes speak, encoded and decoded without I/O.

pub mod smb2;
