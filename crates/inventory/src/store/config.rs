//! What the store reads from the writing component's variables: where events go and when
//! stock counts as low.

use crate::store::error::StoreError;

/// Where events go and when stock counts as low: the `order_events_urls` and
/// `low_stock_threshold` variables of the writing component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    pub receivers: Vec<String>,
    pub low_stock_threshold: i64,
}

impl OutboxConfig {
    pub fn from_variables() -> Result<Self, StoreError> {
        let threshold = variable("low_stock_threshold")?;
        Ok(Self {
            receivers: configured_receivers()?,
            low_stock_threshold: threshold.trim().parse().map_err(|_| {
                StoreError::Misconfigured(format!(
                    "the variable `low_stock_threshold` must be an integer, not {threshold:?}"
                ))
            })?,
        })
    }
}

/// The receivers `order_events_urls` names.
pub fn configured_receivers() -> Result<Vec<String>, StoreError> {
    Ok(parse_receivers(&variable("order_events_urls")?))
}

fn variable(name: &str) -> Result<String, StoreError> {
    crate::store::spin::variable(name).map_err(|err| {
        StoreError::Misconfigured(format!(
            "the variable `{name}` is not available to this component ({err}); declare it in \
             `[component.<id>.variables]`"
        ))
    })
}

/// `order_events_urls`: comma-separated, blanks and repeats ignored.
pub fn parse_receivers(text: &str) -> Vec<String> {
    let mut receivers: Vec<String> = Vec::new();
    for url in text.split(',').map(str::trim).filter(|url| !url.is_empty()) {
        if !receivers.iter().any(|known| known == url) {
            receivers.push(url.to_owned());
        }
    }
    receivers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_are_comma_separated_and_blanks_and_repeats_are_ignored() {
        assert_eq!(
            parse_receivers(" http://a/x , ,http://b/y,http://a/x"),
            vec!["http://a/x".to_owned(), "http://b/y".to_owned()]
        );
        assert!(parse_receivers("").is_empty());
    }
}
