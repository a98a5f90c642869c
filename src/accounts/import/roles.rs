//! `--group-role GROUP=ROLE`: which role a Django group gives.

use std::collections::HashMap;

use anyhow::{anyhow, bail};

use super::GroupRef;
use crate::accounts::rules::check_roles;
use crate::roles::RESERVED;

/// `--group-role GROUP=ROLE` mappings. GROUP is a Django group name (or id,
/// for dumps without names); an empty ROLE drops the group silently.
#[derive(Debug, Clone, Default)]
pub struct GroupRoles(HashMap<String, Option<String>>);

impl GroupRoles {
    pub fn parse(specs: &[String]) -> anyhow::Result<GroupRoles> {
        let mut map = HashMap::new();
        for spec in specs {
            // Role names cannot hold `=`; group names can.
            let Some((group, role)) = spec.rsplit_once('=') else {
                bail!("--group-role {spec:?}: expected GROUP=ROLE");
            };
            let role = role.trim();
            if group.is_empty() {
                bail!("--group-role {spec:?}: the group name is empty");
            }
            if !role.is_empty() {
                check_roles(&[role.to_owned()]).map_err(|e| anyhow!("--group-role {spec:?}: {}", e.message))?;
            }
            if map.insert(group.to_owned(), (!role.is_empty()).then(|| role.to_owned())).is_some() {
                bail!("--group-role maps {group:?} twice");
            }
        }
        Ok(GroupRoles(map))
    }

    /// The role a group gives, or the warning for a group dropped.
    pub(super) fn role_for(&self, group: &GroupRef) -> Result<Option<String>, String> {
        let key = match group {
            GroupRef::Name(name) => name.clone(),
            GroupRef::Id(id) => id.to_string(),
        };
        if let Some(mapped) = self.0.get(&key) {
            return Ok(mapped.clone());
        }
        match group {
            GroupRef::Name(name) => {
                let role = name.to_lowercase();
                // "Admin" or "Staff" in Django is just a group; in signet the
                // role carries powers, so only an explicit mapping grants it.
                if RESERVED.contains(&role.as_str()) {
                    return Err(format!(
                        "group {name:?} dropped: {role:?} is a role reserved by signet (grant it explicitly with \
                         --group-role {:?})",
                        format!("{name}={role}")
                    ));
                }
                match check_roles(std::slice::from_ref(&role)) {
                    Ok(_) => Ok(Some(role)),
                    Err(_) => Err(format!(
                        "group {name:?} dropped: not a valid role name (map it with --group-role {:?})",
                        format!("{name}=ROLE")
                    )),
                }
            }
            GroupRef::Id(id) => Err(format!(
                "group #{id} dropped: the file does not name it (dump auth.group too, use --natural-foreign, \
                 or map it with --group-role {id}=ROLE)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_role_mappings() {
        let specs = ["Support Team=support".to_owned(), "a=b=c".to_owned(), "Legacy=".to_owned(), "7=ops".to_owned()];
        let map = GroupRoles::parse(&specs).expect("mappings");
        let name = |n: &str| GroupRef::Name(n.into());
        assert_eq!(map.role_for(&name("Support Team")), Ok(Some("support".into())));
        assert_eq!(map.role_for(&name("a=b")), Ok(Some("c".into())));
        assert_eq!(map.role_for(&name("Legacy")), Ok(None));
        assert_eq!(map.role_for(&GroupRef::Id(7)), Ok(Some("ops".into())));
        assert_eq!(map.role_for(&name("Editors")), Ok(Some("editors".into())));
        assert!(map.role_for(&name("Sales Team")).expect_err("dropped").contains("--group-role"));
        assert!(map.role_for(&GroupRef::Id(8)).is_err());
        assert!(GroupRoles::parse(&["x=Admin".into()]).is_err());
        // Reserved roles only by an explicit mapping, never by a group's name.
        for reserved in ["Admin", "STAFF", "user"] {
            let warning = map.role_for(&name(reserved)).expect_err("reserved");
            assert!(warning.contains("reserved") && warning.contains("--group-role"), "{warning}");
        }
        let explicit = GroupRoles::parse(&["Admin=admin".into(), "Staff=staff".into()]).expect("mappings");
        assert_eq!(explicit.role_for(&name("Admin")), Ok(Some("admin".into())));
        assert_eq!(explicit.role_for(&name("Staff")), Ok(Some("staff".into())));
        assert!(GroupRoles::parse(&["noequals".into()]).is_err());
        assert!(GroupRoles::parse(&["=role".into()]).is_err());
        assert!(GroupRoles::parse(&["x=a".into(), "x=b".into()]).is_err());
    }
}
