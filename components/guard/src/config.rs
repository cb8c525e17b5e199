//! The guard's configuration: the importing component's Spin variables, read per call
//! (a fresh instance per request has nothing to cache them in).

use spin_sdk::variables;

/// A variable's value; an undefined variable is a deployment mistake, reported by name.
pub fn get(name: &str) -> Result<String, String> {
    variables::get(name).map_err(|err| {
        format!("the variable `{name}` is not available to this component ({err}); declare it in `[component.<id>.variables]`")
    })
}

/// A variable that must be a positive integer.
pub fn positive(name: &str) -> Result<u64, String> {
    let raw = get(name)?;
    match raw.trim().parse::<u64>() {
        Ok(value) if value > 0 => Ok(value),
        _ => Err(format!(
            "the variable `{name}` must be a positive integer, not {raw:?}"
        )),
    }
}
