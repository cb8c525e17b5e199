//! What the store interfaces (SQLite databases, key-value stores) share, as Spin's factors
//! do: the app's stores by label, each opened once per load and kept by a reload where it is
//! still configured the same (its data and its open connections untouched); and the labels
//! a component may open, refused by name otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;

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

    /// What a component listing `granted` may open.
    pub fn grant(&self, granted: &[String]) -> Grant<T> {
        Grant {
            stores: Arc::clone(&self.open),
            granted: granted.into(),
        }
    }
}

/// The stores one component may open.
#[derive(Clone)]
pub struct Grant<T> {
    stores: Arc<HashMap<String, T>>,
    granted: Arc<[String]>,
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
        let grant = stores(None).unwrap().grant(&["a".into(), "ghost".into()]);
        assert_eq!(grant.open("a"), Ok(11));
        assert_eq!(grant.open("b"), Err(Refused::AccessDenied));
        assert_eq!(grant.open("ghost"), Err(Refused::NoSuchStore));
        assert_eq!(Grant::<u32>::denied().open("a"), Err(Refused::AccessDenied));
    }
}
