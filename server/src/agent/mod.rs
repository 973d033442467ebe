//! The agent protocol (docs/agent-protocol.md): the messages the engine sends to an on-device
//! agent and the answers it gets. Shared by the SSH engine (client side) and the device simulator
//! (agent side) so both are held to one definition. No I/O here.

pub mod keys;
pub mod protocol;
