//! Reading the Windows registry: absent keys and values, and values of another type, are `None`
//! (every caller treats "not configured" and "unreadable" alike, and says so).

use windows_registry::{CURRENT_USER, Key, LOCAL_MACHINE, Type};

fn string(root: &Key, key: &str, name: &str) -> Option<String> {
    root.open(key).ok()?.get_string(name).ok()
}

fn number(root: &Key, key: &str, name: &str) -> Option<u32> {
    let key = root.open(key).ok()?;
    (key.get_type(name).ok()? == Type::U32).then(|| key.get_u32(name).ok())?
}

/// A `REG_SZ` (or `REG_EXPAND_SZ`, unexpanded) value under HKEY_LOCAL_MACHINE.
pub fn machine_string(key: &str, name: &str) -> Option<String> {
    string(LOCAL_MACHINE, key, name)
}

/// A `REG_DWORD` value under HKEY_LOCAL_MACHINE.
pub fn machine_u32(key: &str, name: &str) -> Option<u32> {
    number(LOCAL_MACHINE, key, name)
}

/// A `REG_BINARY` value under HKEY_LOCAL_MACHINE.
pub fn machine_bytes(key: &str, name: &str) -> Option<Vec<u8>> {
    let value = LOCAL_MACHINE.open(key).ok()?.get_value(name).ok()?;
    (value.ty() == Type::Bytes).then(|| value.to_vec())
}

/// A `REG_SZ` value under HKEY_CURRENT_USER.
pub fn user_string(key: &str, name: &str) -> Option<String> {
    string(CURRENT_USER, key, name)
}

/// A `REG_DWORD` value under HKEY_CURRENT_USER.
pub fn user_u32(key: &str, name: &str) -> Option<u32> {
    number(CURRENT_USER, key, name)
}

/// A `REG_BINARY` value under HKEY_CURRENT_USER.
pub fn user_bytes(key: &str, name: &str) -> Option<Vec<u8>> {
    let value = CURRENT_USER.open(key).ok()?.get_value(name).ok()?;
    (value.ty() == Type::Bytes).then(|| value.to_vec())
}
