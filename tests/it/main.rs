//! Integration tests, one binary: the real `amlprobe` against loopback servers (loopback), a
//! fake ARM and Entra ID (discovery), its
//! HTML pages (html, which tests/html/check.sh then opens in Chromium), the operational
//! commands and `serve` (operations), the built-in suites against the Azure documentation
//! (suites), and that the tests' own environment never reaches the binary (hermetic). `support`
//! holds the servers and helpers they share.

mod discovery;
mod hermetic;
mod html;
mod loopback;
mod operations;
mod suites;
mod support;
