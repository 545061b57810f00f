//! Progress bar on stderr, only when stderr is a terminal, so cloud-init and Kubernetes logs stay clean.

use crate::engine::{ProgressEvent, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// A progress callback and the bar behind it (hidden when not wanted).
pub fn bar(wanted: bool) -> (ProgressFn, ProgressBar) {
    let pb = if wanted && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} probing [{bar:30}] {pos}/{len} {wide_msg}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.enable_steady_tick(Duration::from_millis(100));
    let handle = pb.clone();
    let callback: ProgressFn = Arc::new(move |event| match event {
        ProgressEvent::Planned(n) => handle.set_length(n),
        ProgressEvent::Step(what) => {
            handle.set_message(what);
            handle.inc(1);
        }
    });
    (callback, pb)
}
