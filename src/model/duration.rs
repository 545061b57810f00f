//! Durations in user text, written the way the flags take them (`500ms`, `2s`), so a message
//! reads like the value that caused it and can be pasted back.

use std::fmt;
use std::time::Duration;

/// Shows a duration as `2s` when it is whole seconds, else as rounded milliseconds (`300ms`,
/// `1500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagDuration(pub Duration);

impl fmt::Display for FlagDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = (self.0.as_micros() + 500) / 1000;
        if ms >= 1000 && ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_read_as_seconds_and_the_rest_as_milliseconds() {
        let shown = |d: Duration| FlagDuration(d).to_string();
        assert_eq!(shown(Duration::from_secs(2)), "2s");
        assert_eq!(shown(Duration::from_secs(90)), "90s");
        assert_eq!(shown(Duration::from_millis(300)), "300ms");
        assert_eq!(shown(Duration::from_millis(1500)), "1500ms");
        assert_eq!(shown(Duration::from_micros(299_600)), "300ms");
        assert_eq!(shown(Duration::ZERO), "0ms");
    }
}
