//! A tool's own interfaces for its plugins: added to the linker every session is linked with, each with state of
//! the tool's own type in every session's store ([`RuntimeBuilder::link`](crate::RuntimeBuilder::link)).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use wasmtime::component::Linker;

use crate::state::SessionState;

/// Adds a tool's interfaces to a linker.
type AddToLinker = dyn Fn(&mut Linker<SessionState>) -> wasmtime::Result<()> + Send + Sync;
/// Makes a session's state for them when the session was given none.
type MakeState = dyn Fn() -> Box<dyn Any + Send> + Send + Sync;

/// The tool's interfaces, and the state types their sessions hold.
#[derive(Clone, Default)]
pub(crate) struct Extensions {
    linkers: Vec<Arc<AddToLinker>>,
    states: Vec<(TypeId, &'static str, Arc<MakeState>)>,
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let states: Vec<&str> = self.states.iter().map(|(_, name, _)| *name).collect();
        f.debug_struct("Extensions").field("linkers", &self.linkers.len()).field("states", &states).finish()
    }
}

impl Extensions {
    pub(crate) fn add<T: Default + Send + 'static>(
        &mut self,
        add: impl Fn(&mut Linker<SessionState>) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) {
        self.linkers.push(Arc::new(add));
        if !self.states.iter().any(|(id, _, _)| *id == TypeId::of::<T>()) {
            let make: Arc<MakeState> = Arc::new(|| Box::new(T::default()));
            self.states.push((TypeId::of::<T>(), std::any::type_name::<T>(), make));
        }
    }

    pub(crate) fn link(&self, linker: &mut Linker<SessionState>) -> wasmtime::Result<()> {
        self.linkers.iter().try_for_each(|add| add(linker))
    }

    /// A session's states: those it was given, and a default one of each other type the interfaces need.
    pub(crate) fn states(&self, mut given: Vec<Box<dyn Any + Send>>) -> HostStates {
        for (id, _, make) in &self.states {
            if !given.iter().any(|state| (**state).type_id() == *id) {
                given.push(make());
            }
        }
        HostStates(given)
    }
}

/// The tool's state in one session's store.
#[derive(Default)]
pub(crate) struct HostStates(Vec<Box<dyn Any + Send>>);

impl HostStates {
    pub(crate) fn get<T: 'static>(&mut self) -> Option<&mut T> {
        self.0.iter_mut().find_map(|state| state.downcast_mut::<T>())
    }
}
