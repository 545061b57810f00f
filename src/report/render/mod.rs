//! Renderers: each turns a [`crate::report::Report`] (or a listing or matrix) into one output
//! format. They never probe and never decide a verdict.

pub mod html;
pub mod junit;
pub mod listing;
pub mod prometheus;
pub mod table;

/// Each renderer's output for one fixed report, pinned: a change to any format shows up as a
/// snapshot diff to review (`INSTA_UPDATE=always cargo test snapshots` rewrites them).
#[cfg(test)]
mod snapshots {
    use crate::report::test_support::sample_report;

    #[test]
    fn table() {
        insta::assert_snapshot!(super::table::render(&sample_report(), false));
    }

    #[test]
    fn table_all() {
        insta::assert_snapshot!(super::table::render_all(&sample_report(), false));
    }

    #[test]
    fn json() {
        insta::assert_snapshot!(sample_report().to_json());
    }

    #[test]
    fn junit() {
        insta::assert_snapshot!(super::junit::render(&sample_report()));
    }

    #[test]
    fn prometheus() {
        insta::assert_snapshot!(super::prometheus::render(&sample_report()));
    }
}
