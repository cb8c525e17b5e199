//! What the store interfaces (SQLite databases, key-value stores) share, as Spin's factors
//! do: the app's stores by label, each opened once per load and kept by a reload where it is
//! still configured the same (its data and its open connections untouched); and the labels
//! a component may open, refused by name otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::ResourceTable;

use crate::factor::{AppContext, ComponentContext, Factor, InstanceContext};
use crate::manifest::Component;

/// The app's stores of one kind: `T` open, by label, and how each was configured (`C`).
pub struct Stores<C, T> {
    open: Arc<HashMap<String, T>>,
    configs: BTreeMap<String, C>,
}

impl<C: PartialEq + Clone, T: Clone> Stores<C, T> {
    /// Opens the store of every label in `labels` as `configured`; one `previous` has open
    /// with the same configuration is kept. A label with no configuration is `undefined`.
    pub fn open(
        labels: Vec<String>,
        configured: &BTreeMap<String, C>,
        previous: Option<&Self>,
        undefined: impl Fn(&str) -> anyhow::Error,
        mut open: impl FnMut(&str, &C) -> Result<T>,
    ) -> Result<Self> {
        let mut stores = HashMap::new();
        let mut configs = BTreeMap::new();
        for label in labels {
            let config = configured.get(&label).ok_or_else(|| undefined(&label))?;
            let kept = previous
                .filter(|p| p.configs.get(&label) == Some(config))
                .and_then(|p| p.open.get(&label));
            let store = match kept {
                Some(store) => store.clone(),
                None => open(&label, config)?,
            };
            configs.insert(label.clone(), config.clone());
            stores.insert(label, store);
        }
        Ok(Self {
            open: Arc::new(stores),
            configs,
        })
    }

    pub fn get(&self, label: &str) -> Option<&T> {
        self.open.get(label)
    }

    /// What `component`, listing `granted`, may open.
    pub fn grant(&self, component: &str, granted: &[String]) -> Grant<T> {
        Grant {
            component: component.into(),
            stores: Arc::clone(&self.open),
            granted: granted.into(),
        }
    }
}

/// The stores one component may open.
#[derive(Clone)]
pub struct Grant<T> {
    /// Whose grant it is (empty: a dependency's, with nothing granted).
    pub component: Arc<str>,
    stores: Arc<HashMap<String, T>>,
    granted: Arc<[String]>,
}

/// A store interface (SQLite databases, key-value stores): its components are granted
/// stores by label, and each instance keeps what it opened in a table of its own (`Opened`).
/// This trait is what differs between them; their [`Factor`] is written once, below.
pub trait StoreFactor {
    /// How one label is configured.
    type Config: PartialEq + Clone + Send + Sync + 'static;
    /// One label's store, open.
    type Store: Clone + Send + Sync + 'static;

    /// The top-level keys of the runtime config file this interface reads.
    const RUNTIME_CONFIG_KEYS: &'static [&'static str];

    /// Opens the stores the components use; keeps those `previous` has open where they are
    /// still configured the same.
    fn open(
        ctx: &AppContext<'_>,
        previous: Option<&Stores<Self::Config, Self::Store>>,
    ) -> Result<Stores<Self::Config, Self::Store>>;

    /// The labels `component` lists.
    fn granted(component: &Component) -> &[String];
}

impl<F: StoreFactor> Factor for F {
    type AppState = Stores<F::Config, F::Store>;
    type ComponentState = Grant<F::Store>;
    type InstanceState = Opened<F::Store>;

    const RUNTIME_CONFIG_KEYS: &'static [&'static str] = F::RUNTIME_CONFIG_KEYS;

    fn configure_app(
        ctx: &AppContext<'_>,
        previous: Option<&Self::AppState>,
    ) -> Result<Self::AppState> {
        F::open(ctx, previous)
    }

    fn configure_component(
        app: &Self::AppState,
        ctx: &ComponentContext<'_>,
    ) -> Result<Self::ComponentState> {
        Ok(app.grant(ctx.id, F::granted(ctx.component)))
    }

    fn instance(component: &Self::ComponentState, _ctx: &InstanceContext) -> Self::InstanceState {
        Opened::new(component)
    }

    fn denied() -> Option<Self::InstanceState> {
        Some(Opened::denied())
    }
}

/// An instance's share of a store interface, the same for every one: what its component
/// was granted, and the handles it opened, in a resource table of its own.
pub struct Opened<T> {
    pub grant: Grant<T>,
    pub table: ResourceTable,
}

impl<T: Clone> Opened<T> {
    pub fn new(grant: &Grant<T>) -> Self {
        Self {
            grant: grant.clone(),
            table: ResourceTable::new(),
        }
    }

    /// What a dependency without the component's configuration may open: nothing.
    pub fn denied() -> Self {
        Self::new(&Grant::denied())
    }
}

/// Why a store did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The component does not list it.
    AccessDenied,
    /// The component lists it, but the app defines no such store.
    NoSuchStore,
}

impl<T: Clone> Grant<T> {
    /// Nothing at all (a dependency without the component's configuration).
    pub fn denied() -> Self {
        Self {
            component: Arc::from(""),
            stores: Arc::default(),
            granted: Arc::from(Vec::new()),
        }
    }

    /// The store `label`, if this component may open it.
    pub fn open(&self, label: &str) -> Result<T, Refused> {
        if !self.granted.iter().any(|g| g == label) {
            return Err(Refused::AccessDenied);
        }
        self.stores.get(label).cloned().ok_or(Refused::NoSuchStore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(previous: Option<&Stores<&'static str, u32>>) -> Result<Stores<&'static str, u32>> {
        let configured = BTreeMap::from([("a".to_owned(), "x"), ("b".to_owned(), "y")]);
        let mut next = 10;
        Stores::open(
            vec!["a".into(), "b".into()],
            &configured,
            previous,
            |label| anyhow::anyhow!("{label} is not defined"),
            |_, _| {
                next += 1;
                Ok(next)
            },
        )
    }

    #[test]
    fn a_reload_keeps_what_is_configured_the_same() {
        let first = stores(None).unwrap();
        assert_eq!((first.get("a"), first.get("b")), (Some(&11), Some(&12)));
        let again = stores(Some(&first)).unwrap();
        assert_eq!((again.get("a"), again.get("b")), (Some(&11), Some(&12)));
    }

    #[test]
    fn an_undefined_label_is_an_error_naming_it() {
        let err = Stores::<&str, u32>::open(
            vec!["c".into()],
            &BTreeMap::new(),
            None,
            |label| anyhow::anyhow!("{label} is not defined"),
            |_, _| Ok(1),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "c is not defined");
    }

    #[test]
    fn a_store_not_granted_is_access_denied_and_an_unknown_one_no_such_store() {
        let grant = stores(None)
            .unwrap()
            .grant("c", &["a".into(), "ghost".into()]);
        assert_eq!(grant.open("a"), Ok(11));
        assert_eq!(grant.open("b"), Err(Refused::AccessDenied));
        assert_eq!(grant.open("ghost"), Err(Refused::NoSuchStore));
        assert_eq!(Grant::<u32>::denied().open("a"), Err(Refused::AccessDenied));
    }
}
