//! Prices: exact integer cents, parsed from a JSON number's own digits.

use serde_json::{Number, Value};

use crate::fields::{error_texts, from_checked, Decimal};

/// The highest price, in whole units.
pub const MAX_PRICE: i64 = 1_000_000_000;
pub const MAX_PRICE_CENTS: i64 = MAX_PRICE * 100;

error_texts!(PriceError {
    NotANumber => "must be a number",
    Negative => "must not be negative",
    TooPrecise => "must have at most 2 decimal places",
    TooLarge => "must be at most {MAX_PRICE}",
});

/// A price in exact minor units (cents): parsed from the JSON number's own digits, never
/// through a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(i64);

// In cents.
from_checked!(Price(i64));

impl Price {
    pub fn parse(value: &Value) -> Result<Self, PriceError> {
        match value {
            Value::Number(number) => Self::parse_number(number),
            _ => Err(PriceError::NotANumber),
        }
    }

    fn parse_number(number: &Number) -> Result<Self, PriceError> {
        let decimal = Decimal::parse(number).ok_or(PriceError::NotANumber)?;
        if decimal.negative && !decimal.is_zero() {
            return Err(PriceError::Negative);
        }
        let cents = decimal.to_scaled(2).ok_or(PriceError::TooPrecise)?;
        Self::try_from_cents(cents.ok_or(PriceError::TooLarge)?)
    }

    /// A price from a count of cents, checked: 0 to `MAX_PRICE_CENTS`.
    pub fn try_from_cents(cents: i64) -> Result<Self, PriceError> {
        match cents {
            ..0 => Err(PriceError::Negative),
            0..=MAX_PRICE_CENTS => Ok(Self(cents)),
            _ => Err(PriceError::TooLarge),
        }
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// The price as a JSON number with no trailing zeros: 1250 -> 12.5, 1200 -> 12.
    pub fn to_json(self) -> Number {
        let (units, cents) = (self.0 / 100, (self.0 % 100).abs());
        let text = match cents {
            0 => units.to_string(),
            c if c % 10 == 0 => format!("{units}.{}", c / 10),
            c => format!("{units}.{c:02}"),
        };
        text.parse().unwrap_or_else(|_| Number::from(units))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(text: &str) -> Result<i64, PriceError> {
        Price::parse(&serde_json::from_str(text).unwrap()).map(Price::cents)
    }

    #[test]
    fn prices_are_exact_in_cents() {
        assert_eq!(price("12.5"), Ok(1250));
        assert_eq!(price("0.1"), Ok(10));
        assert_eq!(price("19.99"), Ok(1999));
        assert_eq!(price("1.10"), Ok(110));
        assert_eq!(price("0"), Ok(0));
        assert_eq!(price("-0"), Ok(0));
        assert_eq!(price("1e2"), Ok(10000));
        assert_eq!(price("125e-1"), Ok(1250));
        assert_eq!(price("1000000000"), Ok(100_000_000_000));
        assert_eq!(price("1.000"), Ok(100));
    }

    #[test]
    fn bad_prices_are_refused_with_the_reason() {
        assert_eq!(price("1.005"), Err(PriceError::TooPrecise));
        assert_eq!(price("-1"), Err(PriceError::Negative));
        assert_eq!(price("1000000000.01"), Err(PriceError::TooLarge));
        assert_eq!(price("1e300"), Err(PriceError::TooLarge));
        assert_eq!(price("1e-300"), Err(PriceError::TooPrecise));
        assert_eq!(price("\"12\""), Err(PriceError::NotANumber));
        assert_eq!(
            price("99999999999999999999999999"),
            Err(PriceError::TooLarge)
        );
    }

    #[test]
    fn cents_are_checked_against_the_same_bounds() {
        assert_eq!(Price::try_from_cents(0).map(Price::cents), Ok(0));
        assert_eq!(
            Price::try_from_cents(MAX_PRICE_CENTS).map(Price::cents),
            Ok(MAX_PRICE_CENTS)
        );
        assert_eq!(Price::try_from_cents(-1), Err(PriceError::Negative));
        assert_eq!(
            Price::try_from_cents(MAX_PRICE_CENTS + 1),
            Err(PriceError::TooLarge)
        );
    }

    #[test]
    fn prices_render_without_trailing_zeros() {
        assert_eq!(Price::from_checked(1250).to_json().to_string(), "12.5");
        assert_eq!(Price::from_checked(1200).to_json().to_string(), "12");
        assert_eq!(Price::from_checked(1205).to_json().to_string(), "12.05");
        assert_eq!(Price::from_checked(5).to_json().to_string(), "0.05");
    }
}
