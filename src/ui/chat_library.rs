//! The chat's saved conversations as the sidebar lists them (LM Studio's): which one is open,
//! the others, and new / open / rename / delete, each written through the
//! [`ConversationStore`] thread. Without a store (no folder set) they live in memory only.

use super::chat_store::{new_id, now_s, ConversationStore};
use crate::generate::conversation::{Conversation, SavedConversation};

/// The title of a conversation that has no message yet.
pub const NEW_TITLE: &str = "New conversation";

/// Longest title taken from a first message.
const TITLE_CHARS: usize = 48;

/// The saved conversations and the open one's id.
pub struct Library {
    pub store: Option<ConversationStore>,
    /// Saved conversations, most recently updated first (the open one's last saved copy too).
    pub saved: Vec<SavedConversation>,
    /// The open conversation's id (it is saved under it once it has a message).
    pub current: String,
    /// Files that could not be read (skipped) and failed writes, for the sidebar.
    pub problems: Vec<String>,
    /// The store has answered with what it read.
    pub loaded: bool,
}

impl Default for Library {
    fn default() -> Self {
        Self {
            store: None,
            saved: Vec::new(),
            current: new_id(),
            problems: Vec::new(),
            loaded: false,
        }
    }
}

impl Library {
    fn index(&self, id: &str) -> Option<usize> {
        self.saved.iter().position(|c| c.id == id)
    }

    /// The title of the open conversation.
    pub fn current_title(&self) -> &str {
        self.index(&self.current)
            .map_or(NEW_TITLE, |i| self.saved[i].title.as_str())
    }

    /// Whether the open conversation is in the list (it has been saved).
    pub fn current_is_saved(&self) -> bool {
        self.index(&self.current).is_some()
    }

    /// Saves `conversation` as the open one, first in the list; a conversation with no turn
    /// that was never saved is not.
    pub fn save_current(&mut self, conversation: &Conversation) -> Result<(), String> {
        let old = self.index(&self.current).map(|i| self.saved.remove(i));
        if conversation.turns.is_empty() && old.is_none() {
            return Ok(());
        }
        let now = now_s();
        let title = match &old {
            Some(o) if !o.title.is_empty() && o.title != NEW_TITLE => o.title.clone(),
            _ => conversation.title(TITLE_CHARS).unwrap_or_else(|| NEW_TITLE.into()),
        };
        let c = SavedConversation {
            id: self.current.clone(),
            title,
            created: old.as_ref().map_or(now, |o| o.created),
            updated: now,
            conversation: conversation.clone(),
        };
        self.saved.insert(0, c.clone());
        self.write(c)
    }

    fn write(&mut self, c: SavedConversation) -> Result<(), String> {
        match &self.store {
            Some(s) => s.save(c),
            None => Ok(()),
        }
    }

    /// Opens the saved conversation `id`: its turns, or `None` when there is no such one.
    pub fn open(&mut self, id: &str) -> Option<Conversation> {
        let c = self.saved.get(self.index(id)?)?.conversation.clone();
        self.current = id.to_string();
        Some(c)
    }

    /// A new, empty conversation becomes the open one.
    pub fn start_new(&mut self) {
        self.current = new_id();
    }

    /// Renames the saved conversation `id` (an empty title is refused).
    pub fn rename(&mut self, id: &str, title: &str) -> Result<(), String> {
        let title = title.trim();
        if title.is_empty() {
            return Err("a conversation needs a title".into());
        }
        let i = self
            .index(id)
            .ok_or("send a message first: this conversation is not saved yet")?;
        self.saved[i].title = title.to_string();
        let c = self.saved[i].clone();
        self.write(c)
    }

    /// Deletes the saved conversation `id` (from disk too). True when it was the open one.
    pub fn delete(&mut self, id: &str) -> Result<bool, String> {
        if let Some(i) = self.index(id) {
            self.saved.remove(i);
            if let Some(s) = &self.store {
                s.delete(id)?;
            }
        }
        Ok(id == self.current)
    }

    /// Takes what the store read: conversations not already listed (saved meanwhile) join the
    /// list; the files it could not read are reported.
    pub fn merge_read(&mut self, read: Vec<SavedConversation>, errors: Vec<String>) {
        for c in read {
            if self.index(&c.id).is_none() {
                self.saved.push(c);
            }
        }
        self.saved
            .sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
        self.problems.extend(errors);
        self.loaded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::conversation::Turn;

    fn conv(text: &str) -> Conversation {
        Conversation {
            turns: vec![Turn::User(text.into())],
        }
    }

    #[test]
    fn new_open_rename_delete_in_memory() {
        let mut l = Library::default();
        l.save_current(&Conversation::default()).unwrap();
        assert!(l.saved.is_empty(), "an empty new conversation is not listed");
        l.save_current(&conv("What is 2+2?\nShow work.")).unwrap();
        assert_eq!(l.current_title(), "What is 2+2?");
        let first = l.current.clone();
        l.start_new();
        l.save_current(&conv("Second")).unwrap();
        assert_eq!(l.saved.len(), 2);
        assert_eq!(l.open(&first), Some(conv("What is 2+2?\nShow work.")));
        l.rename(&first, "  Sums ").unwrap();
        assert_eq!(l.current_title(), "Sums");
        assert!(l.rename(&first, " ").is_err());
        // A later save keeps the new title.
        l.save_current(&conv("What is 2+2? again")).unwrap();
        assert_eq!(l.current_title(), "Sums");
        assert!(l.delete(&first).unwrap());
        assert_eq!(l.saved.len(), 1);
        assert!(l.open(&first).is_none());
    }
}
