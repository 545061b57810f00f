//! How a setting is written: its flag, environment variable, config-file key, help and the shape
//! of its values, as plain data. The context values (`model::values`) and the run settings
//! (`cli::flags`) are rows of this type; the command line (clap) and the `--config` file are
//! derived from the rows, so a setting is declared once.

/// One setting as the user writes it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The `--config` key (the flag with `_` for `-`), also the clap id.
    pub key: &'static str,
    /// The flag, without dashes; errors about the value name it (`--flag: …`).
    pub flag: &'static str,
    /// The environment variable that stands in for the flag (`AMLPROBE_<KEY>`), if any.
    pub env: Option<&'static str>,
    /// The value's placeholder in `--help` (`<NAME>`); unused by switches.
    pub value_name: &'static str,
    /// The help line, as `--help` shows it.
    pub help: &'static str,
    /// What the values look like.
    pub kind: Kind,
    /// A setting this one cannot be given with on the command line.
    pub conflicts_with: Option<&'static str>,
}

/// The shape of a setting's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One word.
    Text,
    /// One file or directory; relative in `--config`, relative to that file.
    Path,
    /// A number of seconds (fractions allowed).
    Seconds,
    /// A whole number.
    Count,
    /// On when given (`--strict`); `true` or `false` in `--config`.
    Switch,
    /// Words, repeatable or comma-separated; an array in `--config`.
    Texts,
    /// Paths, as [`Kind::Texts`] and [`Kind::Path`].
    Paths,
    /// One of a few words.
    Choice(&'static Choices),
    /// Any of a few words, as [`Kind::Texts`].
    Choices(&'static Choices),
}

/// The words a choice takes, each with its help.
#[derive(Debug, PartialEq, Eq)]
pub struct Choices {
    /// What `--config` errors call the type (`enum Cloud`).
    pub type_name: &'static str,
    /// The words, as the flag and the config file take them.
    pub names: &'static [&'static str],
    /// What each word means, in `--help`.
    pub help: &'static [&'static str],
}

impl Choices {
    /// The index of `name` among the choices.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }
}

impl Setting {
    /// A setting whose values have no further rule (no conflict).
    pub const fn new(
        key: &'static str,
        flag: &'static str,
        env: &'static str,
        value_name: &'static str,
        help: &'static str,
        kind: Kind,
    ) -> Setting {
        Setting {
            key,
            flag,
            env: Some(env),
            value_name,
            help,
            kind,
            conflicts_with: None,
        }
    }

    /// An on/off setting: given means on.
    pub const fn switch(
        key: &'static str,
        flag: &'static str,
        env: Option<&'static str>,
        help: &'static str,
    ) -> Setting {
        Setting {
            key,
            flag,
            env,
            value_name: "",
            help,
            kind: Kind::Switch,
            conflicts_with: None,
        }
    }

    /// Whether the setting takes a list of values.
    pub fn is_list(&self) -> bool {
        matches!(self.kind, Kind::Texts | Kind::Paths | Kind::Choices(_))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every setting follows the naming rules the README states: flag = key with `-`, variable
    /// = `AMLPROBE_` + key in capitals, and choices have a help each.
    pub(crate) fn check_rows<'a>(rows: impl IntoIterator<Item = &'a Setting>) {
        let mut keys = std::collections::BTreeSet::new();
        for s in rows {
            assert!(keys.insert(s.key), "{} declared twice", s.key);
            assert_eq!(s.flag, s.key.replace('_', "-"), "{}", s.key);
            if let Some(env) = s.env {
                assert_eq!(env, format!("AMLPROBE_{}", s.key.to_ascii_uppercase()), "{}", s.key);
            }
            assert!(
                !s.help.is_empty() && !s.help.ends_with('.'),
                "{}: clap's help has no final period",
                s.key
            );
            if let Kind::Choice(c) | Kind::Choices(c) = s.kind {
                assert_eq!(c.names.len(), c.help.len(), "{}", s.key);
            }
        }
    }
}
