//! `roles`: the named sets of commands a user may send (never protocol plumbing, no
//! command twice, not even under another name).

use std::collections::BTreeMap;

use crate::ftp::command::Verb;
use crate::policy::file::{Object, RoleFile};
use crate::policy::locate::JsonPath;
use crate::policy::{Role, VerbSet};

use super::checker::Checker;

impl Checker<'_> {
    pub(super) fn roles(
        &mut self,
        raw: Option<&BTreeMap<String, Object<RoleFile>>>,
        path: &JsonPath,
    ) -> BTreeMap<String, Role> {
        let mut roles = BTreeMap::new();
        for (name, Object(raw)) in raw.into_iter().flatten() {
            let path = path.key(name);
            self.name(&path, name, "role");
            let mut allow = VerbSet::EMPTY;
            match &raw.allow {
                None => self.missing(
                    &path,
                    "allow",
                    " (the commands the role permits, e.g. [\"RETR\", \"LIST\"])",
                ),
                Some(list) => {
                    for (i, entry) in list.iter().enumerate() {
                        let path = path.key("allow").index(i);
                        self.allow_entry(entry, &path, &mut allow);
                    }
                }
            }
            roles.insert(
                name.clone(),
                Role {
                    name: name.clone(),
                    allow,
                },
            );
        }
        roles
    }

    fn allow_entry(&mut self, entry: &str, path: &JsonPath, allow: &mut VerbSet) {
        match Verb::from_name(entry.as_bytes()) {
            None => self.bad(
                path,
                format!("{entry:?} is not an FTP command ftpgate knows"),
            ),
            Some(verb) if verb.is_plumbing() => self.bad(
                path,
                format!(
                    "{} is protocol plumbing handled by ftpgate itself; remove it from the role",
                    verb.name()
                ),
            ),
            Some(verb) if allow.contains(verb) => {
                if entry.eq_ignore_ascii_case(verb.name()) {
                    self.bad(path, format!("{} is listed twice", verb.name()));
                } else {
                    self.bad(
                        path,
                        format!(
                            "{entry} is another name for {}, which is already listed",
                            verb.name()
                        ),
                    );
                }
            }
            Some(verb) => allow.insert(verb),
        }
    }
}
