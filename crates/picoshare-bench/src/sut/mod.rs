//! The server under test and the machine it runs on.

pub mod proc;
