//! Koban's hunting query language.
//!
//! ```text
//! EventID=4625 AND (TargetUserName=adm* OR IpAddress=10.0.0.0/8) -Status=0x0 "failed"
//!     earliest=-24h | stats count() by IpAddress | sort -count | head 20
//! ```

pub mod ast;

pub use ast::{Bound, Expr, Query, SortKey, Span, Stage, TimeBound};
