//! `multipart/form-data` bodies built by hand, for exact control over part
//! order, filename bytes and part headers (what a form library would tidy up).

/// A `multipart/form-data` body written byte by byte, so tests control part
/// order, filename bytes and part headers exactly.
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

impl Multipart {
    pub fn new() -> Self {
        Multipart {
            boundary: format!("----picoshare-it-{:016x}", rand::random::<u64>()),
            body: Vec::new(),
        }
    }

    /// A plain form field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.open_part(&format!("form-data; name=\"{name}\""), None);
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file field. The filename is sent as a quoted-string: raw UTF-8,
    /// with `\` and `"` backslash-escaped. `content_type: None` leaves the
    /// part's Content-Type header out.
    pub fn file(self, name: &str, filename: &str, content_type: Option<&str>, data: &[u8]) -> Self {
        let quoted = filename.replace('\\', "\\\\").replace('"', "\\\"");
        self.file_with_disposition(
            &format!("form-data; name=\"{name}\"; filename=\"{quoted}\""),
            content_type,
            data,
        )
    }

    /// A part with a hand-written Content-Disposition value.
    pub fn file_with_disposition(
        mut self,
        disposition: &str,
        content_type: Option<&str>,
        data: &[u8],
    ) -> Self {
        self.open_part(disposition, content_type);
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn open_part(&mut self, disposition: &str, content_type: Option<&str>) {
        self.body
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        self.body
            .extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        if let Some(ct) = content_type {
            self.body
                .extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        self.body.extend_from_slice(b"\r\n");
    }

    /// The request's Content-Type header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The complete body, closing delimiter included.
    pub fn finish(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.body
    }
}
