//! Tests of the code's shape, read from `src/` as text: no import cycles between modules, and the tidy
//! invariants ARCHITECTURE.md states. They need no database and no build of the service.

mod imports;
mod source;
mod tidy;
