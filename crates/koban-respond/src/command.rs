//! Commands the server sends an agent, signed so that nothing but the server can make
//! the agent act, and numbered so that none can be played twice.
//!
//! The server holds an Ed25519 key; an agent learns the public half when it enrols.
//! A command names its agent, carries a number the server raises by one for each
//! command to that agent, and a validity window. The agent accepts a command only if
//! the signature holds over the exact bytes it received, it is the named agent, the
//! number is above every number it accepted before (it keeps the last one on disk),
//! and the window contains its clock. A forged command fails the signature; a
//! captured one sent again fails the number; one held back too long fails the window.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::error::{KeyError, Refused};

/// Signed bytes start with this, so a signature made for anything else never passes.
const CONTEXT: &[u8] = b"koban-command-v1\n";

/// How far an agent's clock may be behind the server's before a fresh command looks
/// as if it came from the future.
pub const CLOCK_SKEW_MS: i64 = 5 * 60_000;

/// What the server asks one agent to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The agent's id, given at enrolment.
    pub agent: String,
    /// Raised by one per command to this agent; never reused.
    pub number: u64,
    /// The server's id of the action this carries out (for the result).
    pub action_id: i64,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub action: Action,
}

/// A command as sent: the JSON exactly as signed, and its signature (base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommand {
    pub payload: String,
    pub signature: String,
}

/// The server's signing key.
pub struct CommandSigner {
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for CommandSigner {
    // Never the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSigner")
            .field("public_key", &B64.encode(self.public_key()))
            .finish()
    }
}

impl CommandSigner {
    /// A new key, as PKCS#8 bytes to keep (the server stores them in its data dir).
    pub fn generate() -> Result<Vec<u8>, KeyError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError("the system random source failed".into()))
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<CommandSigner, KeyError> {
        Ed25519KeyPair::from_pkcs8(der)
            .map(|key| CommandSigner { key })
            .map_err(|e| KeyError(format!("not an Ed25519 PKCS#8 key: {e}")))
    }

    /// The 32-byte public key an agent verifies with.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    pub fn sign(&self, command: &Command) -> SignedCommand {
        // Serialising our own types cannot fail: no maps with non-string keys.
        let payload = serde_json::to_string(command).unwrap_or_default();
        let signature = self.key.sign(&signed_bytes(&payload));
        SignedCommand {
            payload,
            signature: B64.encode(signature.as_ref()),
        }
    }
}

/// The agent's side: the server's public key, its own id, and the last number it
/// accepted.
#[derive(Debug, Clone)]
pub struct CommandVerifier {
    public_key: Vec<u8>,
    agent: String,
    last_number: u64,
}

impl CommandVerifier {
    pub fn new(
        public_key: &[u8],
        agent: &str,
        last_number: u64,
    ) -> Result<CommandVerifier, KeyError> {
        if public_key.len() != 32 {
            return Err(KeyError(format!(
                "an Ed25519 public key is 32 bytes, not {}",
                public_key.len()
            )));
        }
        Ok(CommandVerifier {
            public_key: public_key.to_vec(),
            agent: agent.to_owned(),
            last_number,
        })
    }

    /// The number to keep on disk: commands at or below it are refused.
    pub fn last_number(&self) -> u64 {
        self.last_number
    }

    /// Checks a command and, when it passes, raises the last number to it. The agent
    /// must persist [`last_number`](Self::last_number) before it acts.
    pub fn accept(&mut self, signed: &SignedCommand, now_ms: i64) -> Result<Command, Refused> {
        let signature = B64
            .decode(signed.signature.trim())
            .map_err(|_| Refused::BadSignature)?;
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(&signed_bytes(&signed.payload), &signature)
            .map_err(|_| Refused::BadSignature)?;
        let command: Command =
            serde_json::from_str(&signed.payload).map_err(|e| Refused::Malformed(e.to_string()))?;
        if command.agent != self.agent {
            return Err(Refused::OtherAgent {
                named: command.agent,
            });
        }
        if command.number <= self.last_number {
            return Err(Refused::Replayed {
                number: command.number,
                last: self.last_number,
            });
        }
        if now_ms > command.expires_ms {
            return Err(Refused::Expired {
                expired_ms: command.expires_ms,
                now_ms,
            });
        }
        if command.issued_ms > now_ms + CLOCK_SKEW_MS {
            return Err(Refused::FromTheFuture {
                issued_ms: command.issued_ms,
                now_ms,
            });
        }
        command
            .action
            .validate()
            .map_err(|e| Refused::Malformed(e.to_string()))?;
        self.last_number = command.number;
        Ok(command)
    }
}

fn signed_bytes(payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + payload.len());
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(payload.as_bytes());
    out
}
