//! Errors raised when a building block is configured with inconsistent sizes.

/// A configuration error in a building block, naming the offending field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CoreError {
    /// A size that must divide another does not.
    #[error("{field} ({value}) must divide {other_field} ({other_value})")]
    NotDivisible {
        /// The divisor's field name.
        field: &'static str,
        /// The divisor.
        value: usize,
        /// The dividend's field name.
        other_field: &'static str,
        /// The dividend.
        other_value: usize,
    },
    /// A field is outside its allowed range.
    #[error("{field} ({value}) {requirement}")]
    OutOfRange {
        /// The field name.
        field: &'static str,
        /// The value as text.
        value: String,
        /// What the value must satisfy, e.g. "must be at least 1".
        requirement: &'static str,
    },
    /// A layer that the host decoder ([`crate::host`]) has no step for.
    #[error("the host decoder does not support {0}")]
    HostUnsupported(&'static str),
}
