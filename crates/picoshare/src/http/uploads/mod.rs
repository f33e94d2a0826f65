//! Uploads, streamed into the store as they arrive: the owner's
//! ([`owner`]: multipart and raw), a guest's through a guest link
//! ([`guest`]), and resumable uploads of both ([`tus`]); [`multipart`] reads
//! the multipart bodies.

pub mod guest;
pub mod multipart;
pub mod owner;
pub mod tus;
