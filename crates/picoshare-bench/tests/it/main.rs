//! The bench's integration tests, one binary: the bench against the real
//! server (e2e, calibrate, small and entries, load), the doctor on the real
//! machine, and the reports of a fixed result file.

mod helpers;

mod calibrate;
mod doctor;
mod e2e;
mod load;
mod report;
mod small;
mod stall;
