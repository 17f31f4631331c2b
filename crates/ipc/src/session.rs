//! The session lifecycle as a finite-state machine (`rust-fsm`). Every
//! operation on a channel is an input; an input the current state has no
//! transition for is refused (`DENY_INVALID_TRANSITION`) and the session is
//! over. In particular nothing is sent or accepted after a failure or a close.
//!
//! ```text
//! Handshaking --Established--> Open --Send/Receive--> Open
//!      |                         |--Close--> Closed
//!      '--Fail--> Closed         '--Fail---> Closed      (Closed accepts nothing)
//! ```

use rust_fsm::*;

use crate::IpcError;

state_machine! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub lifecycle(Handshaking)

    Handshaking => {
        Established => Open,
        Fail => Closed,
    },
    Open => {
        Send => Open,
        Receive => Open,
        Close => Closed,
        Fail => Closed,
    },
}

pub use lifecycle::Input;
pub use lifecycle::State;

/// A session's lifecycle state.
#[derive(Debug)]
pub struct SessionState(lifecycle::StateMachine);

impl SessionState {
    pub fn new() -> Self {
        SessionState(lifecycle::StateMachine::new())
    }

    /// A session whose handshake just completed.
    pub(crate) fn established() -> Self {
        let mut s = Self::new();
        s.step(Input::Established).expect("Handshaking accepts Established");
        s
    }

    /// Applies `input`; an impossible transition closes the session.
    pub fn step(&mut self, input: Input) -> Result<(), IpcError> {
        if self.0.consume(&input).is_err() {
            // Force the machine into Closed: from Handshaking or Open, Fail
            // gets there; from Closed it already is.
            let _ = self.0.consume(&Input::Fail);
            return Err(IpcError::InvalidTransition);
        }
        Ok(())
    }

    pub fn state(&self) -> State {
        *self.0.state()
    }

    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }
}

impl Default for SessionState {
    fn default() -> Self {
        Self::new()
    }
}
