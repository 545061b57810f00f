//! What the command line, the environment and `--config` gave, for every setting row (the
//! context values of `model::values`, the rest in `flags.rs`): the clap arguments are built from
//! the rows ([`Given`]), the config file is read by them ([`ConfigFile`]), and [`Layered`] puts
//! flags and environment over the file and says where each value came from.
//!
//! `--config` is read here rather than handed to clap as more arguments (ripgrep's way): its
//! values must rank below the environment's, which clap would rank below arguments; clap would
//! record them as `CommandLine`, not as the file's; and its errors must keep naming the file and
//! line, with TOML's own words for a value of the wrong type.

use crate::cli::flags;
use crate::cli::settings::ConfigError;
use crate::files;
use crate::model::context::ValueSource;
use crate::model::setting::{Choices, Kind, Setting};
use crate::model::values;
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgAction, ArgMatches, value_parser};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IntoDeserializer};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// A setting's value as given.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// [`Kind::Text`] and [`Kind::Choice`].
    Text(String),
    /// [`Kind::Path`].
    Path(PathBuf),
    /// [`Kind::Seconds`].
    Seconds(f64),
    /// [`Kind::Count`].
    Count(usize),
    /// [`Kind::Switch`].
    Switch(bool),
    /// [`Kind::Texts`] and [`Kind::Choices`].
    Texts(Vec<String>),
    /// [`Kind::Paths`].
    Paths(Vec<PathBuf>),
}

/// Settings that clap parses together, in `--help` order.
pub trait Group {
    /// The rows.
    fn rows() -> Vec<&'static Setting>;
}

/// The context values and suite selection (`run` and `suites`).
#[derive(Debug, Clone)]
pub struct Context;

impl Group for Context {
    fn rows() -> Vec<&'static Setting> {
        values::settings().chain(flags::SELECTION.iter().copied()).collect()
    }
}

/// How a run probes and reports.
#[derive(Debug, Clone)]
pub struct Run;

impl Group for Run {
    fn rows() -> Vec<&'static Setting> {
        flags::RUN.to_vec()
    }
}

/// Learning the workspace from ARM.
#[derive(Debug, Clone)]
pub struct Discovery;

impl Group for Discovery {
    fn rows() -> Vec<&'static Setting> {
        flags::DISCOVERY.to_vec()
    }
}

/// Every setting `--config` may carry, in `--help` order.
fn config_rows() -> &'static [&'static Setting] {
    static ROWS: LazyLock<Vec<&'static Setting>> =
        LazyLock::new(|| [Context::rows(), Run::rows(), Discovery::rows()].concat());
    &ROWS
}

/// The values a group's flags or their environment variables gave.
#[derive(Debug, Clone)]
pub struct Given<G> {
    values: BTreeMap<&'static str, Raw>,
    group: PhantomData<G>,
}

impl<G> Default for Given<G> {
    fn default() -> Self {
        Given {
            values: BTreeMap::new(),
            group: PhantomData,
        }
    }
}

/// The clap argument of a row.
fn argument(s: &'static Setting) -> Arg {
    let mut arg = Arg::new(s.key).long(s.flag).help(s.help);
    if let Some(env) = s.env {
        arg = arg.env(env);
    }
    if let Some(other) = s.conflicts_with {
        arg = arg.conflicts_with(other);
    }
    let possible = |c: &'static Choices| {
        PossibleValuesParser::new(
            c.names
                .iter()
                .zip(c.help)
                .map(|(name, help)| PossibleValue::new(*name).help(*help)),
        )
    };
    let (action, arg) = match s.kind {
        Kind::Switch => return arg.action(ArgAction::SetTrue),
        Kind::Text => (ArgAction::Set, arg.value_parser(value_parser!(String))),
        Kind::Path => (ArgAction::Set, arg.value_parser(value_parser!(PathBuf))),
        Kind::Seconds => (ArgAction::Set, arg.value_parser(value_parser!(f64))),
        Kind::Count => (ArgAction::Set, arg.value_parser(value_parser!(usize))),
        Kind::Choice(c) => (ArgAction::Set, arg.value_parser(possible(c))),
        Kind::Texts => (ArgAction::Append, arg.value_parser(value_parser!(String))),
        Kind::Paths => (ArgAction::Append, arg.value_parser(value_parser!(PathBuf))),
        Kind::Choices(c) => (ArgAction::Append, arg.value_parser(possible(c))),
    };
    let arg = arg.action(action).value_name(s.value_name);
    if s.is_list() { arg.value_delimiter(',') } else { arg }
}

/// The value clap parsed for a row, when the command line or the environment gave one.
fn from_matches(m: &ArgMatches, s: &Setting) -> Option<Raw> {
    use clap::parser::ValueSource as Clap;
    if !matches!(m.value_source(s.key), Some(Clap::CommandLine | Clap::EnvVariable)) {
        return None;
    }
    let many = |m: &ArgMatches| {
        m.get_many::<String>(s.key)
            .map(|v| v.cloned().collect())
            .unwrap_or_default()
    };
    Some(match s.kind {
        Kind::Switch => Raw::Switch(m.get_flag(s.key)),
        Kind::Text | Kind::Choice(_) => Raw::Text(m.get_one::<String>(s.key)?.clone()),
        Kind::Path => Raw::Path(m.get_one::<PathBuf>(s.key)?.clone()),
        Kind::Seconds => Raw::Seconds(*m.get_one::<f64>(s.key)?),
        Kind::Count => Raw::Count(*m.get_one::<usize>(s.key)?),
        Kind::Texts | Kind::Choices(_) => Raw::Texts(many(m)),
        Kind::Paths => Raw::Paths(
            m.get_many::<PathBuf>(s.key)
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
        ),
    })
}

impl<G> Given<G> {
    /// The values, by key.
    pub fn into_values(self) -> BTreeMap<&'static str, Raw> {
        self.values
    }
}

impl<G: Group> clap::Args for Given<G> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        G::rows().into_iter().fold(cmd, |cmd, s| cmd.arg(argument(s)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<G: Group> clap::FromArgMatches for Given<G> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let values = G::rows()
            .into_iter()
            .filter_map(|s| from_matches(m, s).map(|raw| (s.key, raw)))
            .collect();
        Ok(Given {
            values,
            group: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// The values a `--config` file gave, by key.
#[derive(Debug, Default)]
pub struct ConfigFile {
    values: BTreeMap<&'static str, Raw>,
}

/// Reads one choice as serde's derive reads a unit enum, so its errors read the same
/// ("unknown variant `mars`, expected one of `public`, `usgov`, `china`").
struct Choice(&'static Choices);

impl<'de> DeserializeSeed<'de> for Choice {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_enum(self.0.type_name, self.0.names, self)
    }
}

impl<'de> de::Visitor<'de> for Choice {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "enum {}", self.0.type_name)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<String, A::Error> {
        let (name, variant) = data.variant::<String>()?;
        if self.0.position(&name).is_none() {
            return Err(de::Error::unknown_variant(&name, self.0.names));
        }
        de::VariantAccess::unit_variant(variant)?;
        Ok(name)
    }
}

/// A list of [`Choice`]s, read as a `Vec` is.
struct ChoiceList(&'static Choices);

impl<'de> DeserializeSeed<'de> for ChoiceList {
    type Value = Vec<String>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> de::Visitor<'de> for ChoiceList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut names = Vec::new();
        while let Some(name) = seq.next_element_seed(Choice(self.0))? {
            names.push(name);
        }
        Ok(names)
    }
}

/// A row's value from the file, read as the row's type so errors use TOML's and serde's words.
fn from_toml<'de, D: de::Deserializer<'de>>(kind: Kind, d: D) -> Result<Raw, D::Error> {
    Ok(match kind {
        Kind::Text => Raw::Text(String::deserialize(d)?),
        Kind::Path => Raw::Path(PathBuf::deserialize(d)?),
        Kind::Seconds => Raw::Seconds(f64::deserialize(d)?),
        Kind::Count => Raw::Count(usize::deserialize(d)?),
        Kind::Switch => Raw::Switch(bool::deserialize(d)?),
        Kind::Texts => Raw::Texts(Vec::deserialize(d)?),
        Kind::Paths => Raw::Paths(Vec::deserialize(d)?),
        Kind::Choice(c) => Raw::Text(Choice(c).deserialize(d)?),
        Kind::Choices(c) => Raw::Texts(ChoiceList(c).deserialize(d)?),
    })
}

impl ConfigFile {
    /// Reads `path`: the keys are the rows' (any setting `run` takes, also for `suites`); a
    /// relative path in it is relative to the file, not to wherever amlprobe runs.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let file = path.display().to_string();
        let text = files::read_text(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        // Parsers quote the offending value whole: it is shown as validation errors show values.
        let at = |line: usize, message: String| ConfigError::File {
            file: file.clone(),
            line,
            message: crate::sanitize::parser_message(message.trim()),
        };
        let table = toml::de::DeTable::parse(&text)
            .map_err(|e| at(crate::model::suite::toml_error_line(&text, &e), e.message().to_string()))?
            .into_inner();
        // Document order, so the first mistake in the file is the one reported.
        let mut entries: Vec<_> = table.into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let base = path.parent().unwrap_or(Path::new("."));
        let mut values = BTreeMap::new();
        for (key, value) in entries {
            let line = crate::model::suite::line_of(&text, key.span().start);
            let Some(row) = config_rows().iter().find(|s| s.key == key.get_ref().as_ref()) else {
                let keys: &'static [&'static str] = {
                    static KEYS: LazyLock<Vec<&'static str>> =
                        LazyLock::new(|| config_rows().iter().map(|s| s.key).collect());
                    &KEYS
                };
                let e: toml::de::Error = de::Error::unknown_field(key.get_ref(), keys);
                return Err(at(line, e.message().to_string()));
            };
            // serde's words say what is wrong, not with which setting: the key comes first.
            let raw = from_toml(row.kind, value.into_deserializer()).map_err(|e: toml::de::Error| {
                at(
                    crate::model::suite::toml_error_line(&text, &e),
                    format!("{}: {}", row.key, e.message()),
                )
            })?;
            let relative = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
            let raw = match raw {
                Raw::Path(p) => Raw::Path(relative(p)),
                Raw::Paths(ps) => Raw::Paths(ps.into_iter().map(relative).collect()),
                other => other,
            };
            values.insert(row.key, raw);
        }
        Ok(ConfigFile { values })
    }
}

/// Every setting's value: flags and environment over `--config`, each with its source.
#[derive(Debug, Default)]
pub struct Layered {
    given: BTreeMap<&'static str, Raw>,
    file: BTreeMap<&'static str, Raw>,
}

impl Layered {
    /// The layers: what flags and variables gave (each group's), over the file's.
    pub fn new(given: impl IntoIterator<Item = BTreeMap<&'static str, Raw>>, file: ConfigFile) -> Layered {
        Layered {
            given: given.into_iter().flatten().collect(),
            file: file.values,
        }
    }

    /// The value in force and where it came from; a switch is on when either layer turns it
    /// on, and an empty list is no list.
    pub fn get(&self, s: &Setting) -> Option<(&Raw, ValueSource)> {
        let given = |raw: &Raw| match raw {
            Raw::Switch(on) => *on,
            Raw::Texts(v) => !v.is_empty(),
            Raw::Paths(v) => !v.is_empty(),
            _ => true,
        };
        let flag = self.given.get(s.key).filter(|r| given(r));
        let file = self.file.get(s.key).filter(|r| given(r));
        flag.map(|r| (r, ValueSource::FlagOrEnv))
            .or_else(|| file.map(|r| (r, ValueSource::Config)))
    }

    /// Where the value in force came from (`None`: nothing gave one).
    pub fn source(&self, s: &Setting) -> Option<ValueSource> {
        self.get(s).map(|(_, source)| source)
    }

    fn raw(&self, s: &Setting, kinds: &[fn(Kind) -> bool]) -> Option<&Raw> {
        debug_assert!(kinds.iter().any(|k| k(s.kind)), "{} read as another kind", s.key);
        self.get(s).map(|(raw, _)| raw)
    }

    /// A text or choice setting.
    pub fn text(&self, s: &Setting) -> Option<String> {
        match self.raw(s, &[|k| matches!(k, Kind::Text | Kind::Choice(_))]) {
            Some(Raw::Text(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// A path setting.
    pub fn path(&self, s: &Setting) -> Option<PathBuf> {
        match self.raw(s, &[|k| k == Kind::Path]) {
            Some(Raw::Path(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// A number of seconds.
    pub fn seconds(&self, s: &Setting) -> Option<f64> {
        match self.raw(s, &[|k| k == Kind::Seconds]) {
            Some(Raw::Seconds(v)) => Some(*v),
            _ => None,
        }
    }

    /// A count.
    pub fn count(&self, s: &Setting) -> Option<usize> {
        match self.raw(s, &[|k| k == Kind::Count]) {
            Some(Raw::Count(v)) => Some(*v),
            _ => None,
        }
    }

    /// A switch: on when the flag, its variable or the file turns it on.
    pub fn switch(&self, s: &Setting) -> bool {
        matches!(self.raw(s, &[|k| k == Kind::Switch]), Some(Raw::Switch(true)))
    }

    /// A list of words or choices (empty: none given).
    pub fn texts(&self, s: &Setting) -> Vec<String> {
        match self.raw(s, &[|k| matches!(k, Kind::Texts | Kind::Choices(_))]) {
            Some(Raw::Texts(v)) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// A list of paths (empty: none given).
    pub fn paths(&self, s: &Setting) -> Vec<PathBuf> {
        match self.raw(s, &[|k| k == Kind::Paths]) {
            Some(Raw::Paths(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_follows_the_naming_rules() {
        crate::model::setting::tests::check_rows(config_rows().iter().copied());
    }

    /// A value of the wrong shape is told in TOML's and serde's words, as the typed config
    /// struct these rows replaced told it, at the line it is on and after the key it is for.
    #[test]
    fn config_errors_read_as_the_types_tell_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let cases = [
            (
                "cloud = \"mars\"",
                "unknown variant `mars`, expected one of `public`, `usgov`, `china`",
            ),
            ("cloud = 5", "wanted string or table"),
            ("format = true", "wanted string or table"),
            (
                "public_resource = \"storage\"",
                "invalid type: string \"storage\", expected a sequence",
            ),
            (
                "public_resource = [\"nope\"]",
                "unknown variant `nope`, expected one of `workspace`, `storage`, `key_vault`, `container_registry`",
            ),
            ("region = 5", "invalid type: integer `5`, expected a string"),
            ("timeout = \"x\"", "invalid type: string \"x\", expected f64"),
            ("concurrency = -1", "invalid value: integer `-1`, expected usize"),
            ("strict = \"yes\"", "invalid type: string \"yes\", expected a boolean"),
            ("ca_file = [1]", "invalid type: integer `1`, expected path string"),
            ("suite = \"a\"", "invalid type: string \"a\", expected a sequence"),
            ("region = \"a\"\nregion = \"b\"", "duplicate key"),
            (
                "x = 1",
                "unknown field `x`, expected one of `cloud`, `region`, `workspace_id`",
            ),
        ];
        for (text, message) in cases {
            std::fs::write(&path, format!("# a comment\n{text}\n")).unwrap();
            let e = ConfigFile::read(&path).unwrap_err().to_string();
            // A value of the wrong shape names its key; a file TOML cannot read, or a key that
            // is no setting, is told as the parser tells it.
            let key = text.split(" = ").next().unwrap();
            let named = if message == "duplicate key" || message.starts_with("unknown field") {
                message.to_string()
            } else {
                format!("{key}: {message}")
            };
            let want = format!("{}:{}: {named}", path.display(), text.lines().count() + 1);
            assert!(e.starts_with(&want), "{text}: {e}\nwanted {want}");
        }
        // An absolute path as the platform writes one (on Windows `/abs.toml` has no drive).
        let absolute = if cfg!(windows) { r"C:\abs.toml" } else { "/abs.toml" };
        std::fs::write(
            &path,
            format!("timeout = 5\nsuite_file = [\"s.toml\", '{absolute}']\ncloud = \"usgov\"\n"),
        )
        .unwrap();
        let file = ConfigFile::read(&path).unwrap();
        assert_eq!(file.values["timeout"], Raw::Seconds(5.0), "an integer is seconds too");
        assert_eq!(
            file.values["suite_file"],
            Raw::Paths(vec![dir.path().join("s.toml"), PathBuf::from(absolute)]),
            "relative to the file"
        );
        assert_eq!(file.values["cloud"], Raw::Text("usgov".into()));
    }

    /// Flags and variables win over the file; switches are on when either turns them on.
    #[test]
    fn flags_win_and_switches_add_up() {
        let given = BTreeMap::from([
            ("region", Raw::Text("flag".into())),
            ("strict", Raw::Switch(false)),
            ("suite", Raw::Texts(vec![])),
        ]);
        let file = ConfigFile {
            values: BTreeMap::from([
                ("region", Raw::Text("file".into())),
                ("strict", Raw::Switch(true)),
                ("suite", Raw::Texts(vec!["compute".into()])),
                ("timeout", Raw::Seconds(2.0)),
            ]),
        };
        let layered = Layered::new([given], file);
        let region = values::settings().find(|s| s.key == "region").unwrap();
        assert_eq!(
            (layered.text(region), layered.source(region)),
            (Some("flag".into()), Some(ValueSource::FlagOrEnv))
        );
        assert!(
            layered.switch(&flags::STRICT),
            "AMLPROBE_STRICT=false does not undo the file's true"
        );
        assert_eq!(layered.source(&flags::STRICT), Some(ValueSource::Config));
        assert_eq!(layered.texts(&flags::SUITE), ["compute"], "an empty list is no list");
        assert_eq!(layered.seconds(&flags::TIMEOUT), Some(2.0));
        assert_eq!(layered.count(&flags::CONCURRENCY), None);
        assert_eq!(layered.source(&flags::CONCURRENCY), None);
    }
}
