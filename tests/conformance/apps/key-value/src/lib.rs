//! Spin's key-value store (`fermyon:spin/key-value@2.0.0`) as a component sees it: a label
//! the manifest does not grant is `access-denied`; the `default` store starts empty, and
//! its keys are set, overwritten, listed and deleted (deleting an absent key is no error),
//! leaving it empty again.

// `generate!` and `export!` expand to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

use conformance_helper::{check, check_eq, Failure};

wit_bindgen::generate!({
    path: "../../wit",
    world: "local:conformance/key-value",
    generate_all,
});

use fermyon::spin::key_value::{Error, Store};

conformance_helper::exercise!(exercise);

fn exercise() -> Result<(), Failure> {
    check(
        matches!(Store::open("forbidden"), Err(Error::AccessDenied)),
        || "a store the manifest does not grant opened".to_owned(),
    )?;
    let store = Store::open("default").map_err(Failure::of)?;
    store.delete("bar").map_err(Failure::of)?;
    expect(&store, &[], None)?;
    store.set("bar", b"baz").map_err(Failure::of)?;
    expect(&store, &["bar"], Some(b"baz"))?;
    store.set("bar", b"wow").map_err(Failure::of)?;
    expect(&store, &["bar"], Some(b"wow"))?;
    store.set("qux", b"yay").map_err(Failure::of)?;
    expect(&store, &["bar", "qux"], Some(b"wow"))?;
    store.delete("bar").map_err(Failure::of)?;
    store.delete("bar").map_err(Failure::of)?;
    store.delete("qux").map_err(Failure::of)?;
    expect(&store, &[], None)
}

/// The store holds exactly `keys`, and `bar` holds `bar`.
fn expect(store: &Store, keys: &[&str], bar: Option<&[u8]>) -> Result<(), Failure> {
    let mut listed = store.get_keys().map_err(Failure::of)?;
    listed.sort();
    check_eq(
        "keys",
        listed.as_slice(),
        keys.iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .as_slice(),
    )?;
    check_eq(
        "exists(bar)",
        store.exists("bar").map_err(Failure::of)?,
        bar.is_some(),
    )?;
    check_eq(
        "get(bar)",
        store.get("bar").map_err(Failure::of)?.as_deref(),
        bar,
    )
}
