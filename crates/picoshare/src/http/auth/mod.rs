//! Who is calling, and what they may do: the owner's session and API tokens
//! ([`session`]), the limit on wrong passphrases ([`login_limit`]), and the
//! passwords and download limits of protected files ([`protect`]).

pub(crate) mod login_limit;
pub(crate) mod protect;
pub(crate) mod session;
