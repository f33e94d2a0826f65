//! Entry and guest-link identifiers, and the random hex of tokens and nonces.
//!
//! PicoShare IDs are random strings over a 57-character alphabet that leaves out
//! look-alike characters (`l`, `I`, `O`, `0`, `1`). Entry IDs have 10 characters,
//! guest-link IDs 16. The parse errors reproduce the original's wording because the
//! web UI shows them to users verbatim.

use rand::{Rng, RngCore};
use std::fmt;

/// The characters an ID may contain.
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Length of an entry ID.
const ENTRY_ID_LEN: usize = 10;
/// Length of a guest-link ID.
const GUEST_LINK_ID_LEN: usize = 16;
/// Length of a resumable upload's ID (about 140 random bits: the ID in an
/// upload's URL is all a guest needs to continue it).
const TUS_UPLOAD_ID_LEN: usize = 24;
/// Length of an API token's ID (public: it names the token in the list and
/// in `DELETE /api/tokens/{id}`; the token itself is another, secret value).
const API_TOKEN_ID_LEN: usize = 12;
/// Length of a login session's ID (it names the session on the sessions
/// page; the cookie's token is another, secret value).
const SESSION_ID_LEN: usize = 12;
/// Length of a share's ID (public: it is the share page's link `/s/{id}`;
/// a length no other ID has, so one is never mistaken for another).
const SHARE_ID_LEN: usize = 14;

/// Why a string is not a valid ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IdError {
    /// Wrong number of bytes.
    #[error("entry ID ({id}) has invalid length: got {got}, want {want}")]
    Length {
        /// The rejected input, with control characters escaped.
        id: String,
        /// Its length in bytes.
        got: usize,
        /// The required length.
        want: usize,
    },
    /// A character outside [`ALPHABET`].
    #[error("entry ID ({id}) contains invalid character: {ch:?}")]
    Character {
        /// The rejected input, with control characters escaped.
        id: String,
        /// The first offending character.
        ch: char,
    },
}

/// Lower-case hex digits of `bytes`, two per byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `n` random bytes from the operating system's generator, as hex (`2n`
/// digits): session and API tokens, CSP nonces, multipart boundaries.
pub(crate) fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex(&raw)
}

/// A random string of `len` characters from [`ALPHABET`] (for internal keys).
pub(crate) fn random_token(len: usize) -> String {
    random_id(len)
}

fn random_id(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn printable(raw: &str) -> String {
    raw.chars()
        .flat_map(char::escape_default)
        .take(64)
        .collect()
}

fn check(raw: &str, want: usize) -> Result<(), IdError> {
    if raw.len() != want {
        return Err(IdError::Length {
            id: printable(raw),
            got: raw.len(),
            want,
        });
    }
    if let Some(ch) = raw
        .chars()
        .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
    {
        return Err(IdError::Character {
            id: printable(raw),
            ch,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(String);

        impl $name {
            /// A new random ID.
            pub(crate) fn generate() -> Self {
                Self(random_id($len))
            }

            /// Validates `raw` as an ID of this kind.
            ///
            /// # Errors
            /// [`IdError`] if the length or a character is wrong.
            pub(crate) fn parse(raw: &str) -> Result<Self, IdError> {
                check(raw, $len).map(|()| Self(raw.to_owned()))
            }

            /// The ID as text.
            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The 10-character ID of an uploaded file.
    EntryId,
    ENTRY_ID_LEN
);
id_type!(
    /// The 16-character ID of a guest upload link.
    GuestLinkId,
    GUEST_LINK_ID_LEN
);

id_type!(
    /// The 24-character ID of a resumable (tus) upload.
    TusUploadId,
    TUS_UPLOAD_ID_LEN
);
id_type!(
    /// The 12-character ID of an API token.
    ApiTokenId,
    API_TOKEN_ID_LEN
);
id_type!(
    /// The 14-character ID of a share (several files behind one link).
    ShareId,
    SHARE_ID_LEN
);

id_type!(
    /// The 12-character ID of a login session (not its secret token).
    SessionId,
    SESSION_ID_LEN
);

/// What the logs name a link by (an entry, share, guest link or resumable
/// upload ID), since the IDs are the links' only secret: the first 8 hex
/// digits of the ID's SHA-256. It tells one link's lines from another's,
/// and matches the ID in question (`printf %s ID | sha256sum`), but cannot
/// be turned back into it: millions of IDs share each value. (At the `debug`
/// level, a stored upload's line also names its ID.)
pub(crate) fn log_ref(id: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(id.as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_refs_are_short_hashes() {
        assert_eq!(log_ref("abc"), "ba7816bf");
        assert_ne!(log_ref("abcdefghij"), log_ref("abcdefghik"));
    }

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        let r = random_hex(16);
        assert_eq!(r.len(), 32);
        assert!(r
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(r, random_hex(16));
    }

    #[test]
    fn generated_ids_parse_back() {
        for _ in 0..100 {
            let id = EntryId::generate();
            assert_eq!(EntryId::parse(id.as_str()), Ok(id.clone()));
            let g = GuestLinkId::generate();
            assert_eq!(GuestLinkId::parse(g.as_str()).unwrap(), g);
        }
    }

    #[test]
    fn wrong_length_is_reported_like_the_original() {
        let err = EntryId::parse("abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry ID (abc) has invalid length: got 3, want 10"
        );
    }

    #[test]
    fn look_alike_characters_are_rejected() {
        for bad in [
            "abcdefghi0",
            "abcdefghil",
            "abcdefghiI",
            "abcdefghiO",
            "abcdefgh-1",
        ] {
            assert!(matches!(
                EntryId::parse(bad),
                Err(IdError::Character { .. })
            ));
        }
        assert!(EntryId::parse("abcdéfghi").is_err());
    }
}
