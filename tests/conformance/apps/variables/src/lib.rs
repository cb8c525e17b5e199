//! Spin's variables (`fermyon:spin/variables@2.0.0`) as a component sees it: its own
//! variable has its value; a valid name it was not given is `undefined`; a name that breaks
//! Spin's rules is `invalid-name`, whatever it was given.

// `generate!` and `export!` expand to the ABI glue, which is `unsafe`.
#![allow(unsafe_code)]

use conformance_helper::{check, check_eq, Failure};

wit_bindgen::generate!({
    path: "../../wit",
    world: "local:conformance/variables",
    generate_all,
});

use fermyon::spin::variables::{get, Error};

conformance_helper::exercise!(exercise);

fn exercise() -> Result<(), Failure> {
    check_eq(
        "greeting",
        get("greeting").map_err(Failure::of)?.as_str(),
        "hello",
    )?;
    let missing = get("not_given");
    check(matches!(missing, Err(Error::Undefined(_))), || {
        format!("not_given: {missing:?}")
    })?;
    for name in [
        "has-dash",
        "has!bang",
        "9starts_with_digit",
        "Upper",
        "double__underscore",
    ] {
        let got = get(name);
        check(matches!(got, Err(Error::InvalidName(_))), || {
            format!("{name}: {got:?}")
        })?;
    }
    Ok(())
}
