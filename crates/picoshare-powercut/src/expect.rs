//! What the workload's history (`history.rs`) requires of one cut, for the
//! checks of `check.rs`: which changes must be there, which may be, and
//! what each uploaded file may look like.

use std::collections::HashMap;

use crate::content::Content;
use crate::history::{History, Op, UploadKind};

/// What the workload's history requires of a cut: a change acknowledged at
/// or before its flush (`at`) must be there; a change whose request was sent
/// after the last event the cut keeps (`horizon`) cannot be; anything
/// between may or may not be.
pub(crate) struct Expect<'a> {
    pub(crate) history: &'a History,
    pub(crate) at: u64,
    pub(crate) horizon: u64,
}

pub(crate) struct FileExpect {
    pub(crate) kind: UploadKind,
    pub(crate) content: Content,
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    /// (filename, note) in the order they were set, each with the sequence
    /// number its request was sent at.
    pub(crate) states: Vec<(String, Option<String>, u64)>,
    /// How many of the edits were acknowledged by the cut.
    pub(crate) edits_required: usize,
    /// The delete's request: sent, acknowledged.
    pub(crate) delete: Option<(u64, u64)>,
    /// For a one-shot file: whether it may be downloaded once, and its one
    /// download's request (sent, received to the last byte).
    pub(crate) one_shot: bool,
    pub(crate) downloaded: Option<(u64, u64)>,
}

impl FileExpect {
    /// The (filename, note) pairs the file may show: from the last edit
    /// acknowledged by the cut to the last one sent before its horizon.
    pub(crate) fn allowed(&self, horizon: u64) -> Vec<(String, Option<String>)> {
        self.states
            .iter()
            .enumerate()
            .filter(|(i, s)| *i >= self.edits_required && (*i == 0 || s.2 < horizon))
            .map(|(_, s)| (s.0.clone(), s.1.clone()))
            .collect()
    }
}

impl Expect<'_> {
    pub(crate) fn required(&self, acked: u64) -> bool {
        acked <= self.at
    }

    pub(crate) fn possible(&self, sent: u64) -> bool {
        sent < self.horizon
    }

    pub(crate) fn files(&self) -> HashMap<String, FileExpect> {
        let mut files: HashMap<String, FileExpect> = HashMap::new();
        for step in &self.history.steps {
            match &step.op {
                Op::Upload {
                    id,
                    kind,
                    content,
                    filename,
                    note,
                    ..
                } => {
                    files.insert(
                        id.clone(),
                        FileExpect {
                            kind: *kind,
                            content: *content,
                            sent: step.sent,
                            acked: step.acked,
                            states: vec![(filename.clone(), note.clone(), step.sent)],
                            edits_required: 0,
                            delete: None,
                            one_shot: false,
                            downloaded: None,
                        },
                    );
                }
                Op::Edit { id, filename, note } => {
                    if let Some(f) = files.get_mut(id) {
                        f.states.push((filename.clone(), note.clone(), step.sent));
                        if self.required(step.acked) {
                            f.edits_required = f.states.len() - 1;
                        }
                    }
                }
                Op::Delete { id } => {
                    if let Some(f) = files.get_mut(id) {
                        f.delete = Some((step.sent, step.acked));
                    }
                }
                Op::OneShot { id } => {
                    if let Some(f) = files.get_mut(id) {
                        f.one_shot = true;
                    }
                }
                Op::Downloaded { id } => {
                    if let Some(f) = files.get_mut(id) {
                        f.downloaded = Some((step.sent, step.acked));
                    }
                }
                _ => {}
            }
        }
        files
    }
}
