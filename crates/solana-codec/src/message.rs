//! The v0 message: strict decoding and canonical encoding.
//!
//! Decoding is strict so that one message has exactly one byte form: the
//! prefix must be exactly `0x80`, every compact-u16 minimal, every index in
//! range, nothing may follow the last lookup, and the whole message is at
//! most [`PACKET_DATA_SIZE`] bytes. Then `decode(b).encode() == b` for
//! every accepted `b`, which lets [`crate::check_exact`] compare bytes.
//!
//! Legacy messages (no prefix) and versions other than 0 are rejected with
//! `SOL_MESSAGE_NOT_V0`: keyward never builds them, so it never signs them.

use crate::error::{CodecError, codes};
use crate::pubkey::Pubkey;
use crate::shortvec;

/// Solana's packet data limit; a whole wire transaction must fit.
pub const PACKET_DATA_SIZE: usize = 1232;

const VERSION_PREFIX: u8 = 0x80;
/// An instruction may reference at most 256 accounts (u8 indexes).
const MAX_ACCOUNTS: usize = 256;

/// A decoded v0 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageV0 {
    /// `[num_required_signatures, num_readonly_signed, num_readonly_unsigned]`.
    pub header: [u8; 3],
    /// Static account keys.
    pub keys: Vec<Pubkey>,
    /// The blockhash that bounds the transaction's lifetime.
    pub recent_blockhash: [u8; 32],
    /// Instructions in execution order.
    pub instructions: Vec<CompiledInstruction>,
    /// Address table lookups (keyward's own messages have none).
    pub lookups: Vec<AddressTableLookup>,
}

/// An instruction whose program and accounts are indexes into the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledInstruction {
    /// Index of the program id among the static keys.
    pub program_index: u8,
    /// Indexes of the instruction's accounts (static keys, then looked-up).
    pub accounts: Vec<u8>,
    /// Instruction data.
    pub data: Vec<u8>,
}

/// Accounts loaded from an address lookup table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressTableLookup {
    /// The lookup table account.
    pub table: Pubkey,
    /// Indexes of writable entries in the table.
    pub writable: Vec<u8>,
    /// Indexes of read-only entries in the table.
    pub readonly: Vec<u8>,
}

const fn malformed(detail: &'static str) -> CodecError {
    CodecError::new(codes::MESSAGE_MALFORMED, detail)
}

/// A bounds-checked cursor over the input.
#[derive(Debug)]
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(malformed("message truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn array32(&mut self) -> Result<[u8; 32], CodecError> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    fn count(&mut self) -> Result<usize, CodecError> {
        let (n, used) =
            shortvec::decode(&self.bytes[self.pos..]).map_err(|_| malformed("invalid compact-u16 length"))?;
        self.pos += used;
        Ok(usize::from(n))
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.count()?;
        Ok(self.take(n)?.to_vec())
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    let Ok(n) = u16::try_from(len) else {
        panic!("MessageV0::encode: a length exceeds u16::MAX");
    };
    shortvec::encode(n, out);
}

impl MessageV0 {
    /// Decodes a v0 message strictly (see the module docs).
    ///
    /// Errors: `SOL_MESSAGE_TOO_LARGE`, `SOL_MESSAGE_NOT_V0`,
    /// `SOL_MESSAGE_MALFORMED`.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > PACKET_DATA_SIZE {
            return Err(CodecError::new(codes::MESSAGE_TOO_LARGE, "message exceeds 1232 bytes"));
        }
        let mut r = Reader { bytes, pos: 0 };
        let prefix = r.byte()?;
        if prefix & VERSION_PREFIX == 0 {
            return Err(CodecError::new(codes::MESSAGE_NOT_V0, "legacy message without version prefix"));
        }
        if prefix != VERSION_PREFIX {
            return Err(CodecError::new(codes::MESSAGE_NOT_V0, "message version is not 0"));
        }
        let mut header = [0u8; 3];
        header.copy_from_slice(r.take(3)?);

        let nkeys = r.count()?;
        if nkeys > MAX_ACCOUNTS {
            return Err(malformed("more than 256 static keys"));
        }
        let mut keys = Vec::with_capacity(nkeys.min(bytes.len() / 32));
        for _ in 0..nkeys {
            keys.push(Pubkey(r.array32()?));
        }
        let [num_signed, readonly_signed, readonly_unsigned] = header.map(usize::from);
        if num_signed == 0 || readonly_signed >= num_signed {
            return Err(malformed("header needs a writable fee payer"));
        }
        if num_signed + readonly_unsigned > nkeys {
            return Err(malformed("header counts exceed the static keys"));
        }

        let recent_blockhash = r.array32()?;

        let nix = r.count()?;
        let mut instructions = Vec::with_capacity(nix.min(bytes.len()));
        for _ in 0..nix {
            let program_index = r.byte()?;
            let accounts = r.bytes()?;
            let data = r.bytes()?;
            instructions.push(CompiledInstruction { program_index, accounts, data });
        }

        let nlookups = r.count()?;
        let mut lookups = Vec::with_capacity(nlookups.min(bytes.len() / 32));
        for _ in 0..nlookups {
            let table = Pubkey(r.array32()?);
            let writable = r.bytes()?;
            let readonly = r.bytes()?;
            if writable.is_empty() && readonly.is_empty() {
                return Err(malformed("address table lookup loads no accounts"));
            }
            lookups.push(AddressTableLookup { table, writable, readonly });
        }
        if r.pos != bytes.len() {
            return Err(malformed("trailing bytes after message"));
        }

        let loaded: usize = lookups.iter().map(|l| l.writable.len() + l.readonly.len()).sum();
        let total = nkeys + loaded;
        if total > MAX_ACCOUNTS {
            return Err(malformed("more than 256 accounts"));
        }
        for ix in &instructions {
            let p = usize::from(ix.program_index);
            // Programs must be static keys and cannot be the fee payer.
            if p == 0 || p >= nkeys {
                return Err(malformed("program index out of range"));
            }
            if ix.accounts.iter().any(|&a| usize::from(a) >= total) {
                return Err(malformed("account index out of range"));
            }
        }
        Ok(Self { header, keys, recent_blockhash, instructions, lookups })
    }

    /// Encodes the message. For any message accepted by [`Self::decode`]
    /// this reproduces the input bytes exactly.
    ///
    /// # Panics
    /// If a list or data length exceeds `u16::MAX` (impossible for any
    /// message that fits a packet).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PACKET_DATA_SIZE);
        out.push(VERSION_PREFIX);
        out.extend_from_slice(&self.header);
        push_len(&mut out, self.keys.len());
        for k in &self.keys {
            out.extend_from_slice(&k.0);
        }
        out.extend_from_slice(&self.recent_blockhash);
        push_len(&mut out, self.instructions.len());
        for ix in &self.instructions {
            out.push(ix.program_index);
            push_len(&mut out, ix.accounts.len());
            out.extend_from_slice(&ix.accounts);
            push_len(&mut out, ix.data.len());
            out.extend_from_slice(&ix.data);
        }
        push_len(&mut out, self.lookups.len());
        for l in &self.lookups {
            out.extend_from_slice(&l.table.0);
            push_len(&mut out, l.writable.len());
            out.extend_from_slice(&l.writable);
            push_len(&mut out, l.readonly.len());
            out.extend_from_slice(&l.readonly);
        }
        out
    }
}
