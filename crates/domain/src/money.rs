//! Money as integer minor units plus an ISO 4217 currency code. Never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A three-letter upper-case ISO 4217 currency code such as `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

/// The ISO 4217 codes of the currencies in circulation, sorted.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VED", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
];

/// The text was not a three-letter upper-case currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a three-letter currency code such as EUR")]
pub struct InvalidCurrency(pub String);

impl Currency {
    /// Parses a code such as `EUR`.
    pub fn parse(code: &str) -> Result<Self, InvalidCurrency> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code.to_owned()))
        } else {
            Err(InvalidCurrency(code.to_owned()))
        }
    }

    /// Parses a code of a currency in circulation (ISO 4217, without the
    /// fund, metal and testing codes): what a new store may price in.
    pub fn parse_iso4217(code: &str) -> Result<Self, InvalidCurrency> {
        let currency = Currency::parse(code)?;
        if ISO_4217.binary_search(&code).is_ok() {
            Ok(currency)
        } else {
            Err(InvalidCurrency(code.to_owned()))
        }
    }

    /// The code, e.g. `EUR`.
    pub fn code(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidCurrency;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl std::str::FromStr for Currency {
    type Err = InvalidCurrency;
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::parse(code)
    }
}

impl PartialEq<&str> for Currency {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in minor units (cents) of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// Formats as `12.50 EUR` (two decimals; the currencies we ship use two).
    pub fn display(&self) -> String {
        format_minor(self.minor, &self.currency)
    }
}

/// Formats minor units as `12.50 EUR`.
pub fn format_minor(minor: i64, currency: &Currency) -> String {
    format_amount(minor, currency.code())
}

/// Formats minor units of the currency coded `code` as `12.50 EUR`: what
/// pages and paper show.
pub fn format_amount(minor: i64, code: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {code}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_ok());
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
    }

    #[test]
    fn new_stores_price_in_currencies_in_circulation() {
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
        for code in ["EUR", "USD", "GBP", "JPY", "CHF", "AED", "ZWG"] {
            assert!(Currency::parse_iso4217(code).is_ok(), "{code}");
        }
        for code in ["XYZ", "EUROS", "eur", "XAU", "XXX", ""] {
            assert!(Currency::parse_iso4217(code).is_err(), "{code}");
        }
    }

    #[test]
    fn minor_units_format_with_two_decimals() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(format_minor(1250, &eur), "12.50 EUR");
        assert_eq!(format_minor(5, &eur), "0.05 EUR");
        assert_eq!(format_minor(-199, &eur), "-1.99 EUR");
    }
}
