//! A small pickle virtual machine for exactly what `torch.save` writes.
//!
//! It runs the opcodes of protocols 2 to 5 that PyTorch checkpoints use
//! (containers, numbers, strings, globals, `REDUCE`, `BUILD`, the memo and
//! persistent ids) and never imports or calls anything: globals stay names,
//! and what `REDUCE` and `BINPERSID` mean is decided by the caller's
//! [`Hooks`] (the torch-specific part lives in `pth`). Any other opcode is
//! an error naming it and its offset.
//!
//! Containers are values (shared by `Rc`, copied on write): a container
//! taken from the memo and then changed does not change the memo's copy.
//! `torch.save` never relies on that for a state_dict. Nesting is limited to
//! [`MAX_DEPTH`] and every length is checked against the bytes left, so a
//! hostile file gives an error, never a crash or a huge allocation.

use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting of containers accepted (a state_dict needs about 4).
pub const MAX_DEPTH: u16 = 200;

/// A value on the pickle stack.
#[derive(Clone, Debug)]
pub enum Value {
    /// Python's `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An `int` that fits in i64.
    Int(i64),
    /// An integer that does not fit in i64 (little-endian two's complement, as in `LONG1`).
    BigInt(Rc<[u8]>),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(Rc<str>),
    /// A `bytes` (or a Python 2 `str` that is not UTF-8).
    Bytes(Rc<[u8]>),
    /// A tuple and its nesting depth.
    Tuple(Rc<Vec<Value>>, u16),
    /// A list and its nesting depth.
    List(Rc<Vec<Value>>, u16),
    /// A dict (its pairs in insertion order) and its nesting depth.
    Dict(Rc<Vec<(Value, Value)>>, u16),
    /// `module.name`, never resolved.
    Global(Rc<str>, Rc<str>),
    /// The result of calling a global that [`Hooks::reduce`] did not handle.
    Object {
        /// The global's module.
        module: Rc<str>,
        /// The global's name.
        name: Rc<str>,
        /// The arguments it was called with (a tuple); a `BUILD` state is dropped.
        args: Rc<Value>,
        /// Nesting depth.
        depth: u16,
    },
    /// A value made by the hooks (a storage, a tensor), told apart by downcasting.
    Custom(Rc<dyn std::any::Any>),
}

impl Value {
    /// Nesting depth: 0 for scalars.
    pub fn depth(&self) -> u16 {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            Value::Object { depth, .. } => *depth,
            _ => 0,
        }
    }

    /// A short description for error messages (never the whole value).
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(b) => format!("bool {b}"),
            Value::Int(i) => format!("int {i}"),
            Value::BigInt(_) => "big int".into(),
            Value::Float(f) => format!("float {f}"),
            Value::Str(s) if s.len() <= 40 => format!("str {s:?}"),
            Value::Str(_) => "str".into(),
            Value::Bytes(b) => format!("bytes ({} bytes)", b.len()),
            Value::Tuple(t, _) => format!("tuple of {}", t.len()),
            Value::List(l, _) => format!("list of {}", l.len()),
            Value::Dict(d, _) => format!("dict of {}", d.len()),
            Value::Global(m, n) => format!("global {m}.{n}"),
            Value::Object { module, name, .. } => format!("{module}.{name}(...)"),
            Value::Custom(_) => "object".into(),
        }
    }

    /// The string of a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer of an [`Value::Int`] (or a [`Value::Bool`] as 0/1).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of a [`Value::Tuple`].
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(t, _) => Some(t),
            _ => None,
        }
    }
}

/// What the caller makes of persistent ids and calls.
pub trait Hooks {
    /// `BINPERSID`: the value a persistent id stands for.
    fn persistent_load(&mut self, pid: Value) -> Result<Value, String>;
    /// `REDUCE` / `NEWOBJ` of `module.name` with `args`: `Some(value)` when
    /// the caller knows the callable, `None` to keep it as an [`Value::Object`].
    fn reduce(&mut self, module: &str, name: &str, args: &Value) -> Result<Option<Value>, String>;
}

/// Container of `items` one level deeper than its deepest item.
fn nest<'a>(items: impl IntoIterator<Item = &'a Value>) -> Result<u16, String> {
    let d = items.into_iter().map(Value::depth).max().unwrap_or(0) + 1;
    if d > MAX_DEPTH {
        return Err(format!("containers nested deeper than {MAX_DEPTH}"));
    }
    Ok(d)
}

fn tuple(items: Vec<Value>) -> Result<Value, String> {
    let d = nest(&items)?;
    Ok(Value::Tuple(Rc::new(items), d))
}

struct Machine<'a, 'h> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<Vec<Value>>,
    memo: HashMap<u32, Value>,
    hooks: &'h mut dyn Hooks,
}

/// Runs one pickle starting at `start`; returns the value and the offset
/// just after its `STOP`.
pub fn load(data: &[u8], start: usize, hooks: &mut dyn Hooks) -> Result<(Value, usize), String> {
    let mut m = Machine { data, pos: start, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), hooks };
    let v = m.run()?;
    Ok((v, m.pos))
}

impl Machine<'_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            format!("pickle truncated: {n} byte(s) needed at offset {}, {} left", self.pos, self.data.len() - self.pos)
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&c| c == b'\n').ok_or("pickle truncated: unterminated line")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "pickle: a global's name is not UTF-8".to_string())?;
        self.pos += n + 1;
        Ok(s.to_string())
    }

    fn len_prefixed(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "pickle: length too large".to_string())?;
        self.take(n)
    }

    fn text(&mut self, n: u64) -> Result<Value, String> {
        let at = self.pos;
        let b = self.len_prefixed(n)?;
        let s = std::str::from_utf8(b).map_err(|_| format!("pickle: string at offset {at} is not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| format!("pickle: stack empty at offset {}", self.pos))
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        let pos = self.pos;
        self.stack.last_mut().ok_or_else(|| format!("pickle: stack empty at offset {pos}"))
    }

    /// The items pushed since the last `MARK`, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let outer = self.marks.pop().ok_or_else(|| format!("pickle: no MARK before offset {}", self.pos))?;
        Ok(std::mem::replace(&mut self.stack, outer))
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let v = self.stack.last().ok_or_else(|| format!("pickle: stack empty at offset {}", self.pos))?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let v = self.memo.get(&key).ok_or_else(|| format!("pickle: memo key {key} not set"))?.clone();
        self.stack.push(v);
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<(Value, Value)>) -> Result<(), String> {
        let top = self.top()?;
        let Value::Dict(d, depth) = top else {
            return Err(format!("pickle: SETITEM(S) on a {}", top.describe()));
        };
        let new_depth = nest(pairs.iter().flat_map(|(k, v)| [k, v]))?.max(*depth);
        Rc::make_mut(d).extend(pairs);
        *depth = new_depth;
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), String> {
        let top = self.top()?;
        let Value::List(l, depth) = top else {
            return Err(format!("pickle: APPEND(S) on a {}", top.describe()));
        };
        let new_depth = nest(&items)?.max(*depth);
        Rc::make_mut(l).extend(items);
        *depth = new_depth;
        Ok(())
    }

    fn call(&mut self, func: Value, args: Value) -> Result<Value, String> {
        let Value::Global(module, name) = func else {
            return Err(format!("pickle: call of a {}, not a global", func.describe()));
        };
        if let Some(v) = self.hooks.reduce(&module, &name, &args)? {
            return Ok(v);
        }
        let depth = nest([&args])?;
        Ok(Value::Object { module, name, args: Rc::new(args), depth })
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            match self.u8()? {
                b'.' => return self.pop(),
                op => self.step(op, at)?,
            }
        }
    }

    /// One opcode other than `STOP`, read at offset `at`, by its group.
    fn step(&mut self, op: u8, at: usize) -> Result<(), String> {
        match op {
            0x80 | 0x95 | b'(' | b'0' | b'1' | b'2' => self.control(op, at),
            b')' | b']' | b'}' | b't' | 0x85..=0x87 | b'l' | b'd' | b'a' | b'e' | b's' | b'u' => self.container(op, at),
            b'N' | 0x88 | 0x89 | b'J' | b'K' | b'M' | 0x8a | 0x8b | b'G' => {
                let v = self.number(op, at)?;
                self.stack.push(v);
                Ok(())
            }
            b'X' | 0x8c | 0x8d | b'T' | b'U' | b'B' | b'C' | 0x8e => {
                let v = self.string(op, at)?;
                self.stack.push(v);
                Ok(())
            }
            b'c' | 0x93 | b'R' | 0x81 | b'b' | b'Q' => self.object(op, at),
            b'q' | b'r' | 0x94 | b'h' | b'j' => self.memo(op, at),
            other => Err(unsupported(other, at)),
        }
    }

    /// `PROTO`, `FRAME`, `MARK`, `POP`, `POP_MARK`, `DUP`.
    fn control(&mut self, op: u8, at: usize) -> Result<(), String> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    return Err(format!("pickle protocol {proto} is not supported"));
                }
            }
            0x95 => {
                self.u64()?; // FRAME: only a hint for buffering
            }
            b'(' => {
                let inner = std::mem::take(&mut self.stack);
                self.marks.push(inner);
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.top()?.clone();
                self.stack.push(v);
            }
            other => return Err(unsupported(other, at)),
        }
        Ok(())
    }

    /// Empty and filled tuples, lists and dicts, and the items added to them.
    fn container(&mut self, op: u8, at: usize) -> Result<(), String> {
        match op {
            b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()), 1)),
            b']' => self.stack.push(Value::List(Rc::new(Vec::new()), 1)),
            b'}' => self.stack.push(Value::Dict(Rc::new(Vec::new()), 1)),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(tuple(items)?);
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if self.stack.len() < n {
                    return Err(format!("pickle: TUPLE{n} with {} item(s) on the stack", self.stack.len()));
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(tuple(items)?);
            }
            b'l' => {
                let items = self.pop_mark()?;
                let d = nest(&items)?;
                self.stack.push(Value::List(Rc::new(items), d));
            }
            b'd' => {
                let pairs = pairs(self.pop_mark()?)?;
                let d = nest(pairs.iter().flat_map(|(k, v)| [k, v]))?;
                self.stack.push(Value::Dict(Rc::new(pairs), d));
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![(k, v)])?;
            }
            b'u' => {
                let pairs = pairs(self.pop_mark()?)?;
                self.set_items(pairs)?;
            }
            other => return Err(unsupported(other, at)),
        }
        Ok(())
    }

    /// `None`, booleans, integers and floats.
    fn number(&mut self, op: u8, at: usize) -> Result<Value, String> {
        Ok(match op {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'J' => Value::Int(i64::from(self.u32()? as i32)),
            b'K' => Value::Int(i64::from(self.u8()?)),
            b'M' => Value::Int(i64::from(self.u16()?)),
            0x8a | 0x8b => {
                let n = if op == 0x8a { u64::from(self.u8()?) } else { u64::from(self.u32()?) };
                long(self.len_prefixed(n)?)
            }
            b'G' => Value::Float(f64::from_be_bytes(self.u64()?.to_le_bytes())),
            other => return Err(unsupported(other, at)),
        })
    }

    /// Text and bytes of every length prefix.
    fn string(&mut self, op: u8, at: usize) -> Result<Value, String> {
        Ok(match op {
            b'X' => {
                let n = u64::from(self.u32()?);
                self.text(n)?
            }
            0x8c => {
                let n = u64::from(self.u8()?);
                self.text(n)?
            }
            0x8d => {
                let n = self.u64()?;
                self.text(n)?
            }
            // Python 2 `str` (BINSTRING, SHORT_BINSTRING): text when UTF-8.
            b'T' | b'U' => {
                let n = if op == b'T' { u64::from(self.u32()?) } else { u64::from(self.u8()?) };
                let b = self.len_prefixed(n)?;
                match std::str::from_utf8(b) {
                    Ok(s) => Value::Str(Rc::from(s)),
                    Err(_) => Value::Bytes(Rc::from(b)),
                }
            }
            b'B' | b'C' | 0x8e => {
                let n = match op {
                    b'B' => u64::from(self.u32()?),
                    b'C' => u64::from(self.u8()?),
                    _ => self.u64()?,
                };
                Value::Bytes(Rc::from(self.len_prefixed(n)?))
            }
            other => return Err(unsupported(other, at)),
        })
    }

    /// Globals, calls (`REDUCE`, `NEWOBJ`), `BUILD` and persistent ids.
    fn object(&mut self, op: u8, at: usize) -> Result<(), String> {
        match op {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.stack.push(Value::Global(Rc::from(module), Rc::from(name)));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                    _ => return Err(format!("pickle: STACK_GLOBAL without two strings at offset {at}")),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let func = self.pop()?;
                let v = self.call(func, args)?;
                self.stack.push(v);
            }
            b'b' => {
                // The state of an object (an OrderedDict's `_metadata`):
                // nothing a tensor needs.
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = self.hooks.persistent_load(pid)?;
                self.stack.push(v);
            }
            other => return Err(unsupported(other, at)),
        }
        Ok(())
    }

    /// The memo: `PUT`, `BINPUT`, `LONG_BINPUT`, `MEMOIZE`, `BINGET`, `LONG_BINGET`.
    fn memo(&mut self, op: u8, at: usize) -> Result<(), String> {
        match op {
            b'q' => {
                let k = u32::from(self.u8()?);
                self.memo_put(k)
            }
            b'r' => {
                let k = self.u32()?;
                self.memo_put(k)
            }
            0x94 => {
                let k = u32::try_from(self.memo.len()).map_err(|_| "pickle: memo too large".to_string())?;
                self.memo_put(k)
            }
            b'h' => {
                let k = u32::from(self.u8()?);
                self.memo_get(k)
            }
            b'j' => {
                let k = self.u32()?;
                self.memo_get(k)
            }
            other => Err(unsupported(other, at)),
        }
    }
}

/// The error of an opcode this machine does not run.
fn unsupported(op: u8, at: usize) -> String {
    format!(
        "pickle opcode 0x{op:02x} ({:?}) at offset {at} is not supported (not written by torch.save for a state_dict)",
        char::from(op)
    )
}

/// `LONG1`/`LONG4` bytes (little-endian two's complement) as an int.
fn long(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() > 8 {
        return Value::BigInt(Rc::from(b));
    }
    let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut a = [fill; 8];
    a[..b.len()].copy_from_slice(b);
    Value::Int(i64::from_le_bytes(a))
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("pickle: odd number of items for a dict".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoHooks;
    impl Hooks for NoHooks {
        fn persistent_load(&mut self, pid: Value) -> Result<Value, String> {
            tuple(vec![Value::Str("pid".into()), pid])
        }
        fn reduce(&mut self, _: &str, _: &str, _: &Value) -> Result<Option<Value>, String> {
            Ok(None)
        }
    }

    fn run(bytes: &[u8]) -> Result<Value, String> {
        load(bytes, 0, &mut NoHooks).map(|(v, _)| v)
    }

    #[test]
    fn numbers_strings_containers_and_memo() {
        // {'a': (1, -2, 300, 70000), 'b': [True, None, 'xyz'], 'c': b'\x01', 'd': memo 1}: the
        // list as it was memoised (empty), since containers are values.
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a', b'(', b'K', 1];
        p.extend([b'J', 0xfe, 0xff, 0xff, 0xff, b'M', 0x2c, 0x01, 0x8a, 3, 0x70, 0x11, 0x01, b't']);
        p.extend([b'X', 1, 0, 0, 0, b'b', b']', b'q', 1, b'(', 0x88, b'N', b'X', 3, 0, 0, 0]);
        p.extend(b"xyz");
        p.extend([b'e', b'X', 1, 0, 0, 0, b'c', b'C', 1, 1, b'X', 1, 0, 0, 0, b'd', b'h', 1, b'u', b'.']);
        let v = run(&p).unwrap();
        let Value::Dict(d, depth) = v else { panic!("{v:?}") };
        assert_eq!(depth, 2);
        assert_eq!(d.len(), 4);
        assert!(matches!(&d[3].1, Value::List(l, 1) if l.is_empty()));
        let t = d[0].1.as_tuple().unwrap();
        let ints: Vec<i64> = t.iter().map(|v| v.as_int().unwrap()).collect();
        assert_eq!(ints, [1, -2, 300, 70000]);
        let Value::List(l, _) = &d[1].1 else { panic!() };
        assert_eq!(l[2].as_str(), Some("xyz"));
        assert!(matches!(&d[2].1, Value::Bytes(b) if b[..] == [1]));
    }

    #[test]
    fn every_opcode_group() {
        // FRAME, then a list (MARK ... LIST) of: 1.5 (BINFLOAT), 'é' (SHORT_BINUNICODE), b'xy'
        // (SHORT_BINBYTES), b'z' (BINBYTES8), 'ab' (BINUNICODE8), Python 2 strings (SHORT_BINSTRING
        // valid and invalid UTF-8, BINSTRING), a dict (MARK ... DICT) memoised by MEMOIZE and
        // LONG_BINPUT, fetched by LONG_BINGET, and DUP, POP, POP_MARK.
        let mut p = vec![0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0, b'(', b'G'];
        p.extend(1.5f64.to_be_bytes());
        p.extend([0x8c, 2, 0xc3, 0xa9, b'C', 2, b'x', b'y', 0x8e, 1, 0, 0, 0, 0, 0, 0, 0, b'z']);
        p.extend([0x8d, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', b'U', 1, b'q', b'U', 1, 0xff]);
        p.extend([b'T', 1, 0, 0, 0, b't', b'(', b'K', 1, b'K', 2, b'd', 0x94, b'r', 9, 0, 0, 0]);
        p.extend([b'j', 9, 0, 0, 0, b'2', b'0', b'(', b'N', b'1', b'l', b'.']);
        let v = run(&p).unwrap();
        let Value::List(l, 2) = v else { panic!("{v:?}") };
        assert!(matches!(l[0], Value::Float(f) if f == 1.5));
        assert_eq!(l[1].as_str(), Some("é"));
        assert!(matches!(&l[2], Value::Bytes(b) if b[..] == *b"xy"));
        assert!(matches!(&l[3], Value::Bytes(b) if b[..] == *b"z"));
        assert_eq!(l[4].as_str(), Some("ab"));
        assert_eq!(l[5].as_str(), Some("q"));
        assert!(matches!(&l[6], Value::Bytes(b) if b[..] == [0xff]));
        assert_eq!(l[7].as_str(), Some("t"));
        assert!(matches!(&l[8], Value::Dict(d, 1) if d.len() == 1 && d[0].1.as_int() == Some(2)));
        assert!(matches!(&l[9], Value::Dict(d, 1) if d.len() == 1));
        assert_eq!(l.len(), 10);
    }

    #[test]
    fn long1_negative_and_big() {
        let v = run(&[0x80, 2, 0x8a, 2, 0x00, 0xff, b'.']).unwrap();
        assert_eq!(v.as_int(), Some(-256));
        let v = run(&[0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.']).unwrap();
        assert!(matches!(v, Value::BigInt(b) if b.len() == 10));
    }

    #[test]
    fn errors_not_panics() {
        for (bytes, want) in [
            (&[0x80, 2][..], "truncated"),
            (&[0x80, 2, b'X', 0xff, 0xff, 0xff, 0x7f, b'a'][..], "truncated"),
            (&[0x80, 2, b'h', 7, b'.'][..], "memo key 7"),
            (&[0x80, 2, b'.'][..], "stack empty"),
            (&[0x80, 2, b't', b'.'][..], "no MARK"),
            (&[0x80, 2, b'i', b'.'][..], "opcode 0x69"),
            (&[0x80, 9, b'.'][..], "protocol 9"),
            (&[0x80, 2, b'K', 1, b's', b'.'][..], "stack empty"),
            (&[0x80, 2, b'K', 1, b'K', 1, b'K', 1, b's', b'.'][..], "SETITEM(S) on a int"),
            (&[0x80, 2, b'K', 1, b')', b'R', b'.'][..], "call of a int"),
            (&[0x80, 2, b'c', b'a'][..], "unterminated"),
        ] {
            let e = run(bytes).unwrap_err();
            assert!(e.contains(want), "{bytes:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let mut p = vec![0x80, 2, b')'];
        p.extend(std::iter::repeat_n(0x85, 100_000));
        p.push(b'.');
        assert!(run(&p).unwrap_err().contains("nested deeper"));
        // Lists filled through the memo cannot nest deeper either.
        let mut p = vec![0x80, 2, b']'];
        for _ in 0..1000 {
            p.extend([b'q', 0, b']', b'h', 0, b'a']);
        }
        p.push(b'.');
        assert!(run(&p).unwrap_err().contains("nested deeper"));
    }

    #[test]
    fn globals_reduce_and_persistent_ids() {
        // collections.OrderedDict() then BUILD with a state, and a persistent id.
        let mut p = vec![0x80, 2, b'c'];
        p.extend(b"collections\nOrderedDict\n");
        p.extend([b')', b'R', b'}', b'b', b'K', 5, b'Q', 0x86, b'.']);
        let v = run(&p).unwrap();
        let t = v.as_tuple().unwrap();
        assert!(
            matches!(&t[0], Value::Object { module, name, .. } if &**module == "collections" && &**name == "OrderedDict")
        );
        assert_eq!(t[1].as_tuple().unwrap()[1].as_int(), Some(5));
    }
}
