//! `ward-tests`: end-to-end tests that run real processes against real
//! directories and sockets. The tests are in `tests/e2e/`; the helper
//! programs they drive are in `src/bin/`.
