//! Wire formats amlprobe speaks, each encoded and decoded in one place.

pub mod http1;
pub mod json;
pub mod smb2;
