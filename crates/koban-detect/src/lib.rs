//! Detection as the server runs it: rules loaded (and reloaded) from folders, every
//! event matched as it arrives with correlations kept per tenant, the entities an
//! alert is about, and the judgement of an incident — severity, impact and urgency with
//! reasons — and the lifecycle of the case it becomes.

pub mod assess;
pub mod case;
pub mod entities;
pub mod rules;
pub mod stream;

pub use assess::{assess, Assessment, Facts, Grade};
pub use case::{CaseState, Verdict};
pub use entities::Entities;
pub use stream::{Found, RuleRef, StreamDetector};
