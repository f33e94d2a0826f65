//! The bench's integration tests, one binary: the bench against the real
//! server (e2e, the `ref:` reference, calibrate, small and entries, load,
//! stall), the doctor on the real machine, and the reports of a fixed
//! result file. Shared helpers are in `helpers`. (The layout of the sources,
//! no import circle and no oversized file, is checked by
//! `scripts/check-layout.py`, for every crate of the workspace.)

mod helpers;

mod calibrate;
mod doctor;
mod e2e;
mod load;
mod reference;
mod report;
mod small;
mod stall;
