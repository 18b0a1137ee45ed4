//! A safe reader for Python pickles (protocols 2–5) that builds a tree of plain values
//! and never runs anything from the file.
//!
//! Python's own `pickle.load` imports whatever a `GLOBAL` names and calls it on `REDUCE`,
//! which is why loading an untrusted checkpoint with it can run arbitrary code. This
//! machine resolves `GLOBAL`/`STACK_GLOBAL` only against an allow-list that the caller
//! passes, refuses everything else with [`PickleError::Refused`], and records a call
//! (`REDUCE`, `NEWOBJ`) as a [`Value::Call`] node for the caller to interpret. The one
//! call it understands itself is `collections.OrderedDict()`, which becomes a plain
//! [`Value::Dict`]: pickle fills an `OrderedDict` with `SETITEMS` like a dict, and every
//! PyTorch `state_dict` is one.
//!
//! Hostile input is bounded: no length read from the file allocates more than the bytes
//! that remain, every stack, mark and memo access is checked, and the machine never
//! panics. Values live in a flat arena while the pickle runs (so the memo shares objects
//! the way Python does: a dict memoised before it is filled is seen filled later); the
//! tree handed back is built at the end under a depth and size limit, because memo
//! references let a few bytes describe a cyclic or exponentially large tree.
use std::collections::HashMap;

/// The globals a pickled numpy array refers to: for readers of pickled numpy data (for
/// example the CIFAR-10 python batches). Pass them to [`load`] with any others needed.
pub const NUMPY_ARRAY_GLOBALS: &[&str] = &[
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
];

/// How deep the returned tree may nest; a PyTorch checkpoint nests about ten levels.
const MAX_DEPTH: usize = 256;
/// The returned tree may hold at least this many nodes, whatever the pickle's size.
const MIN_NODE_BUDGET: usize = 1 << 20;
/// The returned tree may hold this many nodes per node the pickle built (shared subtrees
/// are copied into the tree, so legitimate files can exceed 1×).
const NODES_PER_PICKLED_NODE: usize = 8;
/// Strings and bytes in the tree may total this many bytes beyond 4× the pickle's size.
const BYTES_SLACK: usize = 1 << 20;
/// The widest integer this reader decodes (Python's are unbounded).
const MAX_INT_BYTES: usize = 16;

/// A value decoded from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer (Python's are unbounded; this reader reads up to 128 bits).
    Int(i128),
    /// A float.
    Float(f64),
    /// A text string (`str`).
    Str(String),
    /// A byte string: `bytes`, `bytearray`, or a Python 2 `str` (read as `encoding="bytes"`
    /// would: the bytes are kept, not decoded).
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict or `collections.OrderedDict`, its items in the order the pickle set them.
    Dict(Vec<(Value, Value)>),
    /// A set or frozenset, in pickle order.
    Set(Vec<Value>),
    /// An allowed global, `module.name`, referred to but not called.
    Global(String),
    /// A call of an allowed global (`REDUCE`, `NEWOBJ`) that was recorded, not made.
    Call {
        /// `module.name` of what would have been called.
        callee: String,
        /// The positional arguments.
        args: Vec<Value>,
        /// What a later `BUILD` would have passed to `__setstate__`, if any.
        state: Option<Box<Value>>,
    },
    /// A persistent id (`PERSID`, `BINPERSID`): a reference to data kept outside the
    /// pickle, which the caller resolves (PyTorch points at tensor storages this way).
    Persistent(Box<Value>),
}

impl Value {
    /// The value's Python type in words, for error messages: "an int", "a call to `x.y`".
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Set(_) => "a set".into(),
            Value::Global(name) => format!("the global `{name}`"),
            Value::Call { callee, .. } => format!("a call to `{callee}`"),
            Value::Persistent(_) => "a persistent id".into(),
        }
    }

    /// The text of a `str`, or of bytes that are valid UTF-8 (Python 2 strings).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            Value::Bytes(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The value of an int that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    /// The input ends before the pickle does.
    #[error("the pickle ends early: byte {offset} needs {what}")]
    Truncated {
        /// Where the missing bytes should start.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A byte that is not a pickle opcode this reader handles.
    #[error(
        "unknown or unsupported pickle opcode {shown} at byte {offset}",
        shown = show_opcode(*opcode)
    )]
    UnknownOpcode {
        /// The byte.
        opcode: u8,
        /// Where it is.
        offset: usize,
    },
    /// A `GLOBAL`/`STACK_GLOBAL` naming something outside the caller's allow-list.
    #[error("the pickle refers to `{global}` (byte {offset}), which is not on the allow-list")]
    Refused {
        /// `module.name` as found in the file.
        global: String,
        /// Where the opcode is.
        offset: usize,
    },
    /// Opcodes that do not fit together (stack underflow, a missing mark, an unknown memo
    /// key, a wrongly typed operand).
    #[error("malformed pickle at byte {offset}: {reason}")]
    Malformed {
        /// Where the opcode is.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The described value nests too deeply, is cyclic, or is too large once shared
    /// parts are expanded.
    #[error("the pickled value is {reason}")]
    TooLarge {
        /// What limit was hit.
        reason: String,
    },
}

fn show_opcode(opcode: u8) -> String {
    if opcode.is_ascii_graphic() {
        format!("0x{opcode:02x} ('{}')", opcode as char)
    } else {
        format!("0x{opcode:02x}")
    }
}

/// Reads one pickle from the start of `data`, resolving globals only against
/// `allowed_globals` (each `module.name`).
///
/// Returns the value and how many bytes the pickle occupied, up to and including its
/// `STOP`: PyTorch's legacy format stores several pickles back to back, followed by raw
/// data.
pub fn load(data: &[u8], allowed_globals: &[&str]) -> Result<(Value, usize), PickleError> {
    let mut machine = Machine::new(data, allowed_globals);
    let root = machine.run()?;
    let mut budget = Budget {
        nodes_left: MIN_NODE_BUDGET.max(machine.nodes.len().saturating_mul(NODES_PER_PICKLED_NODE)),
        bytes_left: data.len().saturating_mul(4).saturating_add(BYTES_SLACK),
    };
    let value = machine.materialize(root, 0, &mut budget)?;
    Ok((value, machine.pos))
}

type NodeId = usize;

/// A value in the arena: containers hold the ids of their items, so that the memo and
/// `DUP` share one object as Python does.
#[derive(Debug)]
enum Node {
    /// A value without children (none, bool, int, float, str, bytes, global).
    Leaf(Value),
    Tuple(Vec<NodeId>),
    List(Vec<NodeId>),
    Dict(Vec<(NodeId, NodeId)>),
    Set(Vec<NodeId>),
    Call {
        callee: String,
        /// The argument tuple's id (not a copy: a tuple reused by many calls stays one).
        args: NodeId,
        state: Option<NodeId>,
    },
    Persistent(NodeId),
}

/// What is left of the size allowance of the returned tree.
struct Budget {
    nodes_left: usize,
    bytes_left: usize,
}

/// The pickle virtual machine's state.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Where the opcode being run starts, for error messages.
    op_offset: usize,
    allowed: &'a [&'a str],
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    /// Stack heights at each open `MARK`; nothing may pop below the innermost one.
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
}

/// Pickle opcodes (also what [`super::torch_save`] writes).
pub(super) mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const PERSID: u8 = b'P';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const BINFLOAT: u8 = b'G';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const BYTEARRAY8: u8 = 0x96;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

type Step = Result<(), PickleError>;

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], allowed: &'a [&'a str]) -> Self {
        Machine {
            data,
            pos: 0,
            op_offset: 0,
            allowed,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// Runs opcodes up to `STOP` and returns the id of the pickled value.
    fn run(&mut self) -> Result<NodeId, PickleError> {
        loop {
            self.op_offset = self.pos;
            let opcode = self.byte("an opcode")?;
            if opcode == op::STOP {
                return self.pop();
            }
            self.step(opcode)?;
        }
    }

    fn step(&mut self, opcode: u8) -> Step {
        match opcode {
            op::PROTO => self.protocol(),
            op::FRAME => self.u64_le("a frame length").map(drop),
            op::MARK => {
                self.marks.push(self.stack.len());
                Ok(())
            }
            op::POP => self.pop_one(),
            op::POP_MARK => self.pop_mark().map(drop),
            op::DUP => {
                let top = self.top()?;
                self.stack.push(top);
                Ok(())
            }
            op::PERSID | op::BINPERSID => self.persistent_id(opcode),
            op::GLOBAL | op::STACK_GLOBAL => self.global(opcode),
            op::REDUCE | op::NEWOBJ | op::NEWOBJ_EX => self.call(opcode),
            op::BUILD => self.build(),
            op::BINPUT | op::LONG_BINPUT | op::MEMOIZE => self.memo_put(opcode),
            op::BINGET | op::LONG_BINGET => self.memo_get(opcode),
            op::NEXT_BUFFER | op::READONLY_BUFFER => {
                Err(self.malformed("out-of-band buffers (pickle protocol 5) are not supported"))
            }
            _ => self.scalar_or_container(opcode),
        }
    }

    /// Opcodes that push a scalar or build or fill a container.
    fn scalar_or_container(&mut self, opcode: u8) -> Step {
        match opcode {
            op::NONE => self.push_leaf(Value::None),
            op::NEWTRUE => self.push_leaf(Value::Bool(true)),
            op::NEWFALSE => self.push_leaf(Value::Bool(false)),
            op::BININT | op::BININT1 | op::BININT2 | op::LONG1 | op::LONG4 => self.int(opcode),
            op::BINFLOAT => {
                let bytes = self.array::<8>("a float")?;
                self.push_leaf(Value::Float(f64::from_be_bytes(bytes)))
            }
            op::BINUNICODE | op::SHORT_BINUNICODE | op::BINUNICODE8 => self.text(opcode),
            op::BINSTRING
            | op::SHORT_BINSTRING
            | op::BINBYTES
            | op::SHORT_BINBYTES
            | op::BINBYTES8
            | op::BYTEARRAY8 => self.bytes(opcode),
            op::EMPTY_TUPLE | op::TUPLE | op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                self.tuple(opcode)
            }
            op::EMPTY_LIST => self.push(Node::List(Vec::new())),
            op::LIST => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))
            }
            op::APPEND | op::APPENDS => self.append(opcode),
            op::EMPTY_DICT => self.push(Node::Dict(Vec::new())),
            op::DICT => {
                let pairs = self.pop_mark_pairs()?;
                self.push(Node::Dict(pairs))
            }
            op::SETITEM | op::SETITEMS => self.set_items(opcode),
            op::EMPTY_SET => self.push(Node::Set(Vec::new())),
            op::ADDITEMS => self.add_items(),
            op::FROZENSET => {
                let items = self.pop_mark()?;
                self.push(Node::Set(items))
            }
            _ => Err(PickleError::UnknownOpcode {
                opcode,
                offset: self.op_offset,
            }),
        }
    }

    // --- reading operands -------------------------------------------------------------

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], PickleError> {
        let data: &'a [u8] = self.data;
        let end = self.pos.checked_add(len).filter(|&end| end <= data.len());
        let Some(end) = end else {
            return Err(PickleError::Truncated {
                offset: self.pos,
                what,
            });
        };
        let bytes = &data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, PickleError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32_le(&mut self, what: &'static str) -> Result<u32, PickleError> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    fn u64_le(&mut self, what: &'static str) -> Result<u64, PickleError> {
        self.array::<8>(what).map(u64::from_le_bytes)
    }

    /// A signed 4-byte length, which must not be negative.
    fn i32_len(&mut self, what: &'static str) -> Result<u64, PickleError> {
        let len = self.array::<4>(what).map(i32::from_le_bytes)?;
        u64::try_from(len).map_err(|_| self.malformed(format!("negative length {len} of {what}")))
    }

    /// A length-prefixed payload; the length is checked against the bytes that remain
    /// before anything is allocated.
    fn payload(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], PickleError> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len, what)
    }

    /// A newline-terminated line (the operands of `GLOBAL` and `PERSID`).
    fn line(&mut self, what: &'static str) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::Truncated {
                offset: self.data.len(),
                what,
            });
        };
        let line = self.take(len, what)?;
        self.pos += 1; // the newline
        std::str::from_utf8(line).map_err(|_| self.malformed(format!("{what} is not UTF-8")))
    }

    // --- the stack --------------------------------------------------------------------

    fn malformed(&self, reason: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.op_offset,
            reason: reason.into(),
        }
    }

    fn push(&mut self, node: Node) -> Step {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
        Ok(())
    }

    fn push_leaf(&mut self, value: Value) -> Step {
        self.push(Node::Leaf(value))
    }

    /// The stack height below which the current opcode may not reach.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<NodeId, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn top(&self) -> Result<NodeId, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed("stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    /// `POP`: like Python, an empty section above a mark pops the mark instead.
    fn pop_one(&mut self) -> Step {
        if self.stack.len() > self.floor() {
            self.pop().map(drop)
        } else {
            self.pop_mark().map(drop)
        }
    }

    /// Removes the innermost mark and returns the items pushed since, in order.
    fn pop_mark(&mut self) -> Result<Vec<NodeId>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed("no MARK to pop to"))?;
        if mark > self.stack.len() {
            return Err(self.malformed("stack underflow below a MARK"));
        }
        Ok(self.stack.split_off(mark))
    }

    /// The items since the innermost mark, as key/value pairs.
    fn pop_mark_pairs(&mut self) -> Result<Vec<(NodeId, NodeId)>, PickleError> {
        let items = self.pop_mark()?;
        if items.len() % 2 != 0 {
            return Err(self.malformed(format!("{} items for key/value pairs", items.len())));
        }
        Ok(items
            .chunks_exact(2)
            .map(|pair| (pair[0], pair[1]))
            .collect())
    }

    fn kind(&self, id: NodeId) -> String {
        match &self.nodes[id] {
            Node::Leaf(value) => value.describe(),
            Node::Tuple(_) => "a tuple".into(),
            Node::List(_) => "a list".into(),
            Node::Dict(_) => "a dict".into(),
            Node::Set(_) => "a set".into(),
            Node::Call { callee, .. } => format!("a call to `{callee}`"),
            Node::Persistent(_) => "a persistent id".into(),
        }
    }

    // --- opcodes ----------------------------------------------------------------------

    fn protocol(&mut self) -> Step {
        let version = self.byte("the protocol version")?;
        if version > 5 {
            return Err(
                self.malformed(format!("pickle protocol {version} (this reader knows 2–5)"))
            );
        }
        Ok(())
    }

    fn int(&mut self, opcode: u8) -> Step {
        let value = match opcode {
            op::BININT => i128::from(self.array::<4>("an int").map(i32::from_le_bytes)?),
            op::BININT1 => i128::from(self.byte("an int")?),
            op::BININT2 => i128::from(self.array::<2>("an int").map(u16::from_le_bytes)?),
            op::LONG1 => {
                let len = self.byte("a long's length")?;
                self.long(u64::from(len))?
            }
            _ => {
                let len = self.i32_len("a long's length")?;
                self.long(len)?
            }
        };
        self.push_leaf(Value::Int(value))
    }

    /// A little-endian two's-complement integer of `len` bytes.
    fn long(&mut self, len: u64) -> Result<i128, PickleError> {
        let bytes = self.payload(len, "a long")?;
        if bytes.len() > MAX_INT_BYTES {
            return Err(self.malformed(format!(
                "an integer of {} bytes (this reader reads up to {MAX_INT_BYTES})",
                bytes.len()
            )));
        }
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut wide = [if negative { 0xff } else { 0 }; MAX_INT_BYTES];
        wide[..bytes.len()].copy_from_slice(bytes);
        Ok(i128::from_le_bytes(wide))
    }

    fn text(&mut self, opcode: u8) -> Step {
        let len = match opcode {
            op::SHORT_BINUNICODE => u64::from(self.byte("a string's length")?),
            op::BINUNICODE => u64::from(self.u32_le("a string's length")?),
            _ => self.u64_le("a string's length")?,
        };
        let bytes = self.payload(len, "a string")?;
        let text =
            std::str::from_utf8(bytes).map_err(|_| self.malformed("a str that is not UTF-8"))?;
        self.push_leaf(Value::Str(text.to_owned()))
    }

    fn bytes(&mut self, opcode: u8) -> Step {
        let len = match opcode {
            op::SHORT_BINSTRING | op::SHORT_BINBYTES => u64::from(self.byte("a length")?),
            op::BINSTRING => self.i32_len("a string's length")?,
            op::BINBYTES => u64::from(self.u32_le("a length")?),
            _ => self.u64_le("a length")?,
        };
        let bytes = self.payload(len, "bytes")?;
        self.push_leaf(Value::Bytes(bytes.to_vec()))
    }

    fn tuple(&mut self, opcode: u8) -> Step {
        let items = match opcode {
            op::EMPTY_TUPLE => Vec::new(),
            op::TUPLE => self.pop_mark()?,
            _ => {
                let count = usize::from(opcode - op::TUPLE1 + 1);
                let mut items = (0..count)
                    .map(|_| self.pop())
                    .collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                items
            }
        };
        self.push(Node::Tuple(items))
    }

    fn append(&mut self, opcode: u8) -> Step {
        let items = if opcode == op::APPEND {
            vec![self.pop()?]
        } else {
            self.pop_mark()?
        };
        let list = self.top()?;
        let kind = self.kind(list);
        match &mut self.nodes[list] {
            Node::List(existing) => {
                existing.extend(items);
                Ok(())
            }
            _ => Err(self.malformed(format!("APPEND to {kind}, not a list"))),
        }
    }

    fn set_items(&mut self, opcode: u8) -> Step {
        let pairs = if opcode == op::SETITEM {
            let value = self.pop()?;
            let key = self.pop()?;
            vec![(key, value)]
        } else {
            self.pop_mark_pairs()?
        };
        let dict = self.top()?;
        let kind = self.kind(dict);
        match &mut self.nodes[dict] {
            Node::Dict(existing) => {
                existing.extend(pairs);
                Ok(())
            }
            _ => Err(self.malformed(format!("SETITEM on {kind}, not a dict"))),
        }
    }

    fn add_items(&mut self) -> Step {
        let items = self.pop_mark()?;
        let set = self.top()?;
        let kind = self.kind(set);
        match &mut self.nodes[set] {
            Node::Set(existing) => {
                existing.extend(items);
                Ok(())
            }
            _ => Err(self.malformed(format!("ADDITEMS on {kind}, not a set"))),
        }
    }

    fn global(&mut self, opcode: u8) -> Step {
        let name = if opcode == op::GLOBAL {
            let module = self.line("a global's module")?;
            let name = self.line("a global's name")?;
            format!("{module}.{name}")
        } else {
            let name = self.pop()?;
            let module = self.pop()?;
            match (&self.nodes[module], &self.nodes[name]) {
                (Node::Leaf(Value::Str(module)), Node::Leaf(Value::Str(name))) => {
                    format!("{module}.{name}")
                }
                _ => return Err(self.malformed("STACK_GLOBAL operands are not two strings")),
            }
        };
        if !self.allowed.contains(&name.as_str()) {
            return Err(PickleError::Refused {
                global: name,
                offset: self.op_offset,
            });
        }
        self.push_leaf(Value::Global(name))
    }

    /// `REDUCE` (`f(*args)`), `NEWOBJ` (`cls.__new__(cls, *args)`) and `NEWOBJ_EX`
    /// (the same with keyword arguments, accepted only when there are none): recorded.
    fn call(&mut self, opcode: u8) -> Step {
        if opcode == op::NEWOBJ_EX {
            let kwargs = self.pop()?;
            if !matches!(&self.nodes[kwargs], Node::Dict(pairs) if pairs.is_empty()) {
                return Err(self.malformed("NEWOBJ_EX with keyword arguments is not supported"));
            }
        }
        let args = self.pop()?;
        let callable = self.pop()?;
        let Node::Leaf(Value::Global(callee)) = &self.nodes[callable] else {
            return Err(self.malformed(format!(
                "a call of {}, not of a global",
                self.kind(callable)
            )));
        };
        let Node::Tuple(arg_items) = &self.nodes[args] else {
            return Err(self.malformed(format!(
                "call arguments are {}, not a tuple",
                self.kind(args)
            )));
        };
        // An OrderedDict is filled afterwards by SETITEMS, exactly like a dict.
        if callee == "collections.OrderedDict" && arg_items.is_empty() {
            return self.push(Node::Dict(Vec::new()));
        }
        let callee = callee.clone();
        self.push(Node::Call {
            callee,
            args,
            state: None,
        })
    }

    /// `BUILD`: the state is recorded on a call; on a dict it is dropped, since it can
    /// only be an `OrderedDict`'s attributes (PyTorch's `_metadata`), not items.
    fn build(&mut self) -> Step {
        let state = self.pop()?;
        let object = self.top()?;
        let kind = self.kind(object);
        match &mut self.nodes[object] {
            Node::Call { state: slot, .. } => {
                *slot = Some(state);
                Ok(())
            }
            Node::Dict(_) => Ok(()),
            _ => Err(self.malformed(format!("BUILD on {kind}"))),
        }
    }

    fn persistent_id(&mut self, opcode: u8) -> Step {
        let pid = if opcode == op::BINPERSID {
            self.pop()?
        } else {
            let text = self.line("a persistent id")?.to_owned();
            self.nodes.push(Node::Leaf(Value::Str(text)));
            self.nodes.len() - 1
        };
        self.push(Node::Persistent(pid))
    }

    fn memo_put(&mut self, opcode: u8) -> Step {
        let key = match opcode {
            op::BINPUT => u64::from(self.byte("a memo key")?),
            op::LONG_BINPUT => u64::from(self.u32_le("a memo key")?),
            _ => self.memo.len() as u64,
        };
        let top = self.top()?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, opcode: u8) -> Step {
        let key = if opcode == op::BINGET {
            u64::from(self.byte("a memo key")?)
        } else {
            u64::from(self.u32_le("a memo key")?)
        };
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))?;
        self.stack.push(id);
        Ok(())
    }

    // --- building the tree ------------------------------------------------------------

    /// The tree under `id`, copying shared parts, within `budget` and [`MAX_DEPTH`].
    fn materialize(
        &self,
        id: NodeId,
        depth: usize,
        budget: &mut Budget,
    ) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError::TooLarge {
                reason: format!("nested more than {MAX_DEPTH} levels deep (or cyclic)"),
            });
        }
        budget.nodes_left =
            budget
                .nodes_left
                .checked_sub(1)
                .ok_or_else(|| PickleError::TooLarge {
                    reason: "too large once its shared parts are expanded".into(),
                })?;
        let depth = depth + 1;
        Ok(match &self.nodes[id] {
            Node::Leaf(value) => self.leaf(value, budget)?,
            Node::Tuple(items) => Value::Tuple(self.materialize_all(items, depth, budget)?),
            Node::List(items) => Value::List(self.materialize_all(items, depth, budget)?),
            Node::Set(items) => Value::Set(self.materialize_all(items, depth, budget)?),
            Node::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for &(key, value) in pairs {
                    out.push((
                        self.materialize(key, depth, budget)?,
                        self.materialize(value, depth, budget)?,
                    ));
                }
                Value::Dict(out)
            }
            Node::Call {
                callee,
                args,
                state,
            } => {
                let args = match self.materialize(*args, depth, budget)? {
                    Value::Tuple(items) => items,
                    _ => Vec::new(), // unreachable: `call` checked it is a tuple
                };
                let state = match state {
                    Some(state) => Some(Box::new(self.materialize(*state, depth, budget)?)),
                    None => None,
                };
                Value::Call {
                    callee: callee.clone(),
                    args,
                    state,
                }
            }
            Node::Persistent(pid) => {
                Value::Persistent(Box::new(self.materialize(*pid, depth, budget)?))
            }
        })
    }

    fn materialize_all(
        &self,
        ids: &[NodeId],
        depth: usize,
        budget: &mut Budget,
    ) -> Result<Vec<Value>, PickleError> {
        ids.iter()
            .map(|&id| self.materialize(id, depth, budget))
            .collect()
    }

    /// A copy of a leaf, charging its text or bytes to the budget.
    fn leaf(&self, value: &Value, budget: &mut Budget) -> Result<Value, PickleError> {
        let payload = match value {
            Value::Str(text) => text.len(),
            Value::Bytes(bytes) => bytes.len(),
            Value::Global(name) => name.len(),
            _ => 0,
        };
        budget.bytes_left =
            budget
                .bytes_left
                .checked_sub(payload)
                .ok_or_else(|| PickleError::TooLarge {
                    reason: "too large once its shared strings are expanded".into(),
                })?;
        Ok(value.clone())
    }
}
