//! Downloads: a file at `/-{id}` ([`mod@file`]) and a share's ZIP at
//! `/s/{id}/zip` ([`zip`]), streamed from the store.

pub mod file;
pub mod zip;
