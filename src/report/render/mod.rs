//! Renderers: each turns a [`crate::report::Report`] (or a listing or matrix) into one output
//! format. They never probe and never decide a verdict.

pub mod heatmap;
pub mod html;
pub mod junit;
pub mod listing;
pub mod prometheus;
pub mod table;
