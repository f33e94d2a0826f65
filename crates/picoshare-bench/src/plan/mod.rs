//! What to run: the units every option is written in.

pub mod units;
