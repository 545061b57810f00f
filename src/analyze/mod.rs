//! Working on saved reports: `diff` (what changed between two runs) and `merge` (a fleet's
//! node × flow matrix).

pub mod diff;
pub mod heatmap;
pub mod matrix;
pub mod saved;
