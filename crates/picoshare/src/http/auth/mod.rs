//! Who is calling, and what they may do: the owner's session and API tokens
//! ([`session`]), the limit on wrong passphrases ([`login_limit`]), the
//! passwords and download limits of protected files ([`protect`]), and the
//! argon2id hashes those need, a few at a time ([`hashing`]).

pub(crate) mod hashing;
pub(crate) mod login_limit;
pub(crate) mod protect;
pub(crate) mod session;
