//! Tasks that each answer some items of a keep-alive list (a `$batch`, or single requests). A
//! task that panics answers its items with the panic, so no item is ever left without an answer.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{Id, JoinError, JoinSet};

use super::KeepAliveSuccess;
use crate::error::CoreError;

/// An item's answer, tagged with its position in the caller's list.
pub type ItemOutcome = (usize, Result<KeepAliveSuccess, CoreError>);

#[derive(Default)]
pub struct ItemTasks {
    tasks: JoinSet<Vec<ItemOutcome>>,
    /// The items (position, call id) each running task answers.
    items: HashMap<Id, Vec<(usize, String)>>,
}

impl ItemTasks {
    /// Starts `work` on the current runtime; it answers `items` (position, call id).
    pub fn spawn<F>(&mut self, items: Vec<(usize, String)>, work: F)
    where
        F: Future<Output = Vec<ItemOutcome>> + Send + 'static,
    {
        let id = self.tasks.spawn(work).id();
        self.items.insert(id, items);
    }

    /// The answers of the next task to finish; `None` when none is left.
    pub async fn join_next(&mut self) -> Option<Vec<ItemOutcome>> {
        let joined = self.tasks.join_next_with_id().await?;
        Some(self.answers(joined))
    }

    /// The answers of a task that has already finished, without waiting.
    pub fn try_join_next(&mut self) -> Option<Vec<ItemOutcome>> {
        let joined = self.tasks.try_join_next_with_id()?;
        Some(self.answers(joined))
    }

    fn answers(&mut self, joined: Result<(Id, Vec<ItemOutcome>), JoinError>) -> Vec<ItemOutcome> {
        match joined {
            Ok((id, answers)) => {
                self.items.remove(&id);
                answers
            }
            Err(error) => {
                let items = self.items.remove(&error.id()).unwrap_or_default();
                let failure = CoreError::from_join(error);
                items.into_iter().map(|(index, call_id)| (index, Err(failure.clone().with_call_id(&call_id)))).collect()
            }
        }
    }
}
