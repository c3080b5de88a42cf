//! A boolean condition over stored events: what a hunting query's search part becomes
//! once it reaches the store. [`FieldFilter`](crate::FieldFilter)s are its flat,
//! all-must-hold special case.

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// All hold (an empty list: everything).
    All(Vec<Condition>),
    /// At least one holds (an empty list: nothing).
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Equal ignoring case; `*` and `?` are wildcards and `\` escapes them; a value
    /// that reads as a number also matches the number. `@source`, `@format`,
    /// `@parsed` and `@seq` address the store's own fields.
    Match {
        field: String,
        value: String,
    },
    /// A number in the range; each bound inclusive or not.
    Range {
        field: String,
        min: Option<(f64, bool)>,
        max: Option<(f64, bool)>,
    },
    /// An IP address (a string value) inside the network.
    Cidr {
        field: String,
        net: IpNet,
    },
    /// The event has the field, whatever its value.
    Exists {
        field: String,
    },
    /// Every word occurs in the record's text (its original, else its values).
    Text(String),
}
