//! The bench's integration tests, one binary: the bench against the real
//! server (e2e, the `ref:` reference, calibrate, small and entries, load,
//! stall), the doctor on the real machine, the reports of a fixed result
//! file, and the layout of the sources (no import cycle, no oversized file).
//! Shared helpers are in `helpers`.

mod helpers;

mod calibrate;
mod doctor;
mod e2e;
mod layout;
mod load;
mod reference;
mod report;
mod small;
mod stall;
